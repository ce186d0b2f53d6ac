package hashi

import (
	"io"
	"time"

	"github.com/hashicorp/raft"
)

// startGRPC: hashicorp/raft's row of S2g stays on its TCP transport (its
// gRPC transport, Jille's raft-grpc-transport, is not served here; that
// comparison is made from outside).
func startGRPC(*node) (raft.Transport, error) {
	return raft.NewTCPTransport("127.0.0.1:0", nil, 3, 10*time.Second, io.Discard)
}
