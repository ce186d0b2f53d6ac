package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// writeCerts makes a CA and one certificate for 127.0.0.1 signed by it, as
// PEM files in dir.
func writeCerts(t *testing.T, dir, name string) (cert, key, ca string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name + " CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	nodeKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	nodeTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "node"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	nodeDER, err := x509.CreateCertificate(rand.Reader, nodeTmpl, caCert, &nodeKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(nodeKey)
	write := func(file, typ string, der []byte) string {
		path := filepath.Join(dir, file)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	return write(name+".crt", "CERTIFICATE", nodeDER), write(name+".key", "EC PRIVATE KEY", keyDER), write(name+"-ca.crt", "CERTIFICATE", caDER)
}

// Nodes started with -tls-* form a cluster over mutual TLS; a node whose
// certificate comes from another CA cannot join it.
func TestTLSCluster(t *testing.T) {
	dir := t.TempDir()
	cert, key, ca := writeCerts(t, dir, "good")
	tlsNode := func(id string, bootstrap bool, join string, cert, key, ca string) *node {
		return testNodeWith(t, nodeConfig{id: id, raftAddr: "127.0.0.1:0", httpAddr: "127.0.0.1:0", dataDir: t.TempDir(),
			bootstrap: bootstrap, join: join, tlsCert: cert, tlsKey: key, tlsCA: ca})
	}
	n1 := tlsNode("n1", true, "", cert, key, ca)
	waitLeader(t, n1)
	n2 := tlsNode("n2", false, n1.cfg.httpAddr, cert, key, ca)
	c := newKVClient()
	if _, err := c.waitReady(15*time.Second, []*proc{{id: "n1", httpAddr: n1.cfg.httpAddr}, {id: "n2", httpAddr: n2.cfg.httpAddr}}); err != nil {
		t.Fatal(err)
	}
	if err := c.put(n2.cfg.httpAddr, "k", []byte("over TLS")); err != nil {
		t.Fatal(err)
	}
	if err := waitFor(10*time.Second, "n2 to apply the write", func() bool {
		v, _ := n2.fsm.get("k")
		return string(v) == "over TLS"
	}); err != nil {
		t.Fatal(err)
	}

	// A stranger: its own CA. Its join is accepted by the leader (the
	// HTTP API is not authenticated), but the leader cannot reach it, so
	// it never receives a single entry.
	badCert, badKey, badCA := writeCerts(t, dir, "bad")
	n3 := tlsNode("n3", false, n1.cfg.httpAddr, badCert, badKey, badCA)
	time.Sleep(2 * time.Second)
	if v, ok := n3.fsm.get("k"); ok {
		t.Fatalf("a node with a foreign certificate received state: %q", v)
	}
	if n3.raft.LastIndex() != 0 {
		t.Fatalf("a node with a foreign certificate has %d entries", n3.raft.LastIndex())
	}
}
