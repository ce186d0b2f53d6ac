package raft

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/hashicorp/go-hclog"
)

// TLSStreamLayer is a StreamLayer over TLS on TCP, for NetworkTransport. It
// speaks exactly the protocol of the TCP transport inside the TLS session,
// so only nodes configured for TLS can talk to it. (Not in hashicorp/raft.)
//
// Mutual TLS comes from the *tls.Config: give it Certificates (this node's
// certificate, presented both as server and as client), RootCAs (to verify
// the peers it dials), ClientCAs with ClientAuth set to
// tls.RequireAndVerifyClientCert (to verify the peers that dial it). A peer
// without an accepted certificate then cannot complete a single RPC.
type TLSStreamLayer struct {
	advertise net.Addr
	listener  net.Listener
	config    *tls.Config
}

// errNoTLSConfig is returned when a TLS transport is created without a
// configuration.
var errNoTLSConfig = errors.New("raft: TLS transport needs a *tls.Config")

// NewTLSStreamLayer listens on bindAddr for TLS connections with the given
// configuration. advertise, when not nil, is the address peers use to reach
// this node and must be a routable TCP address, as with NewTCPTransport.
func NewTLSStreamLayer(bindAddr string, advertise net.Addr, config *tls.Config) (*TLSStreamLayer, error) {
	if config == nil {
		return nil, errNoTLSConfig
	}
	list, err := net.Listen("tcp", bindAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", bindAddr, err)
	}
	stream := &TLSStreamLayer{advertise: advertise, listener: tls.NewListener(list, config), config: config}
	if err := checkAdvertisable(stream.Addr()); err != nil {
		list.Close()
		return nil, err
	}
	return stream, nil
}

// NewTLSTransport returns a NetworkTransport over TLS, the TLS counterpart
// of NewTCPTransport.
func NewTLSTransport(bindAddr string, advertise net.Addr, config *tls.Config, maxPool int, timeout time.Duration, logOutput io.Writer) (*NetworkTransport, error) {
	stream, err := NewTLSStreamLayer(bindAddr, advertise, config)
	if err != nil {
		return nil, err
	}
	return NewNetworkTransport(stream, maxPool, timeout, logOutput), nil
}

// NewTLSTransportWithLogger is NewTLSTransport with a logger.
func NewTLSTransportWithLogger(bindAddr string, advertise net.Addr, config *tls.Config, maxPool int, timeout time.Duration, logger hclog.Logger) (*NetworkTransport, error) {
	stream, err := NewTLSStreamLayer(bindAddr, advertise, config)
	if err != nil {
		return nil, err
	}
	return NewNetworkTransportWithLogger(stream, maxPool, timeout, logger), nil
}

// NewTLSTransportWithConfig is NewTLSTransport with a NetworkTransportConfig,
// whose Stream is set here.
func NewTLSTransportWithConfig(bindAddr string, advertise net.Addr, tlsConfig *tls.Config, config *NetworkTransportConfig) (*NetworkTransport, error) {
	stream, err := NewTLSStreamLayer(bindAddr, advertise, tlsConfig)
	if err != nil {
		return nil, err
	}
	config.Stream = stream
	return NewNetworkTransportWithConfig(config), nil
}

// Dial implements the StreamLayer interface: it connects and completes the
// TLS handshake (verifying the peer's certificate) within timeout.
func (t *TLSStreamLayer) Dial(address ServerAddress, timeout time.Duration) (net.Conn, error) {
	dialer := &tls.Dialer{NetDialer: &net.Dialer{Timeout: timeout}, Config: t.config}
	ctx := context.Background()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	conn, err := dialer.DialContext(ctx, "tcp", string(address))
	if err != nil {
		return nil, fmt.Errorf("tls dial %s: %w", address, err)
	}
	return conn, nil
}

// Accept implements the net.Listener interface. The handshake happens on the
// connection's handler, under the transport's read timeout.
func (t *TLSStreamLayer) Accept() (net.Conn, error) {
	return t.listener.Accept()
}

// Close is part of net.Listener.
func (t *TLSStreamLayer) Close() error {
	return t.listener.Close()
}

// Addr implements the net.Listener interface: the advertise address if one
// was given.
func (t *TLSStreamLayer) Addr() net.Addr {
	if t.advertise != nil {
		return t.advertise
	}
	return t.listener.Addr()
}
