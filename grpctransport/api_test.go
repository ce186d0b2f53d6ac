package transport_test

import (
	"time"

	"github.com/seed48a2b68f/raft"
	transport "github.com/seed48a2b68f/raft/grpctransport"
	"google.golang.org/grpc"
)

// The API of github.com/Jille/raft-grpc-transport's newest release, name
// by name with its signatures (grpc-transport.md): a program using it
// builds here by changing its import path. This file fails to build if
// any of them changes.
var (
	_ func(raft.ServerAddress, []grpc.DialOption, ...transport.Option) *transport.Manager = transport.New
	_ func(*transport.Manager, grpc.ServiceRegistrar)                                     = (*transport.Manager).Register
	_ func(*transport.Manager) raft.Transport                                             = (*transport.Manager).Transport
	_ func(*transport.Manager) error                                                      = (*transport.Manager).Close
	_ func(time.Duration) transport.Option                                                = transport.WithHeartbeatTimeout
	_ transport.Option                                                                    = func(*transport.Manager) {}

	// What its Transport implements beyond raft.Transport.
	_ raft.WithClose   = transport.New("", nil).Transport().(raft.WithClose)
	_ raft.WithPreVote = transport.New("", nil).Transport().(raft.WithPreVote)
)
