package ours

import (
	"net"

	"github.com/seed48a2b68f/raft"
	transport "github.com/seed48a2b68f/raft/grpctransport"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// startGRPC serves a grpctransport Manager for nd on a loopback gRPC
// server (message limit raised for AppendEntries batches) and returns its
// transport; nd's closers stop both.
func startGRPC(nd *node) (raft.Transport, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	m := transport.New(raft.ServerAddress(l.Addr().String()),
		[]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())})
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(64 << 20))
	m.Register(srv)
	go srv.Serve(l)
	nd.closer = append(nd.closer, func() error { srv.Stop(); return m.Close() })
	return m.Transport(), nil
}
