package raft

import (
	"reflect"
	"testing"
)

// FuzzDecodeConfiguration feeds arbitrary bytes to the configuration decoder
// used on RPCs and log entries: it must return an error or a configuration
// that survives a round trip, and never panic or hang.
func FuzzDecodeConfiguration(f *testing.F) {
	f.Add(EncodeConfiguration(Configuration{Servers: []Server{{Voter, "a", "b"}, {Nonvoter, "c", "d"}}}))
	f.Add([]byte{0x81, 0xa7, 'S', 'e', 'r', 'v', 'e', 'r', 's', 0xdd, 0x0f, 0xff, 0xff, 0xff})
	f.Add([]byte{0xc0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeConfiguration(b)
		if err != nil {
			return
		}
		back, err := decodeConfiguration(EncodeConfiguration(c))
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if len(c.Servers) == 0 && len(back.Servers) == 0 {
			return
		}
		if !reflect.DeepEqual(c, back) {
			t.Fatalf("round trip changed %v into %v", c, back)
		}
	})
}

// FuzzDecodePeers does the same for the legacy peers format.
func FuzzDecodePeers(f *testing.F) {
	f.Add(encodePeers(Configuration{Servers: []Server{{Voter, "x", "10.0.0.1:8300"}}}, &InmemTransport{}))
	f.Add([]byte{0x91, 0xdb, 0x0f, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = decodePeers(b, &InmemTransport{})
	})
}
