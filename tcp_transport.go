package raft

import (
	"io"
	"net"
	"time"

	"github.com/hashicorp/go-hclog"
)

// TCPStreamLayer is a StreamLayer over plain TCP.
type TCPStreamLayer struct {
	advertise net.Addr
	listener  *net.TCPListener
}

// NewTCPTransport listens on bindAddr and returns a NetworkTransport over
// TCP. advertise is the address peers are told to dial (the listener's
// when nil; it must not be unspecified like 0.0.0.0).
func NewTCPTransport(bindAddr string, advertise net.Addr, maxPool int, timeout time.Duration, logOutput io.Writer) (*NetworkTransport, error) {
	return newTCPTransport(bindAddr, advertise, func(stream StreamLayer) *NetworkTransport {
		return NewNetworkTransport(stream, maxPool, timeout, logOutput)
	})
}

// NewTCPTransportWithLogger is NewTCPTransport with a logger.
func NewTCPTransportWithLogger(bindAddr string, advertise net.Addr, maxPool int, timeout time.Duration, logger hclog.Logger) (*NetworkTransport, error) {
	return newTCPTransport(bindAddr, advertise, func(stream StreamLayer) *NetworkTransport {
		return NewNetworkTransportWithLogger(stream, maxPool, timeout, logger)
	})
}

// NewTCPTransportWithConfig is NewTCPTransport with a full
// NetworkTransportConfig; its Stream is set to the TCP listener.
func NewTCPTransportWithConfig(bindAddr string, advertise net.Addr, config *NetworkTransportConfig) (*NetworkTransport, error) {
	return newTCPTransport(bindAddr, advertise, func(stream StreamLayer) *NetworkTransport {
		config.Stream = stream
		return NewNetworkTransportWithConfig(config)
	})
}

func newTCPTransport(bindAddr string, advertise net.Addr,
	transportCreator func(stream StreamLayer) *NetworkTransport) (*NetworkTransport, error) {
	list, err := net.Listen("tcp", bindAddr)
	if err != nil {
		return nil, err
	}
	stream := &TCPStreamLayer{advertise: advertise, listener: list.(*net.TCPListener)}
	if err := checkAdvertisable(stream.Addr()); err != nil {
		list.Close()
		return nil, err
	}
	return transportCreator(stream), nil
}

// Dial is part of StreamLayer.
func (t *TCPStreamLayer) Dial(address ServerAddress, timeout time.Duration) (net.Conn, error) {
	return net.DialTimeout("tcp", string(address), timeout)
}

// Accept is part of net.Listener.
func (t *TCPStreamLayer) Accept() (c net.Conn, err error) {
	return t.listener.Accept()
}

// Close is part of net.Listener.
func (t *TCPStreamLayer) Close() (err error) {
	return t.listener.Close()
}

// Addr implements the net.Listener interface: the advertise address if one
// was given.
func (t *TCPStreamLayer) Addr() net.Addr {
	if t.advertise != nil {
		return t.advertise
	}
	return t.listener.Addr()
}

// checkAdvertisable reports whether addr, the address a stream layer gives
// its peers, is a TCP address they can reach (not 0.0.0.0 or ::).
func checkAdvertisable(addr net.Addr) error {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return errNotTCP
	}
	if tcp.IP == nil || tcp.IP.IsUnspecified() {
		return errNotAdvertisable
	}
	return nil
}
