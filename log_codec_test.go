package raft

import (
	"bytes"
	"testing"
	"time"
)

// FuzzDecodeLog: decodeLog (what raftbolt reads stored entries with) never
// panics, and an entry it accepts encodes and decodes to the same entry.
func FuzzDecodeLog(f *testing.F) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	for _, l := range []*Log{
		{Index: 1, Term: 1, Type: LogCommand, Data: []byte("x"), AppendedAt: at},
		{Index: 1 << 40, Term: 9, Type: LogConfiguration, Extensions: []byte{1}},
	} {
		f.Add(appendLog(nil, l, false))
		f.Add(appendLog(nil, l, true))
	}
	f.Add([]byte{0xc0})
	f.Add([]byte{0x96, 1, 1, 0, 0xc4, 1, 'x', 0xc0, 0xc0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var l Log
		if err := decodeLog(b, &l); err != nil {
			return
		}
		var again Log
		if err := decodeLog(appendLog(nil, &l, false), &again); err != nil {
			t.Fatalf("re-decoding %+v: %v", l, err)
		}
		if again.Index != l.Index || again.Term != l.Term || again.Type != l.Type ||
			!bytes.Equal(again.Data, l.Data) || !bytes.Equal(again.Extensions, l.Extensions) ||
			!again.AppendedAt.Equal(l.AppendedAt) {
			t.Fatalf("round trip changed %+v into %+v", l, again)
		}
	})
}
