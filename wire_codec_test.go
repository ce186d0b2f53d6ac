package raft

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/rand"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-msgpack/v2/codec"
)

// refEncode encodes v with go-msgpack/v2 and hashicorp/raft's handle.
func refEncode(t testing.TB, v interface{}, newTime bool) []byte {
	t.Helper()
	h := &codec.MsgpackHandle{}
	h.TimeNotBuiltin = !newTime
	var out []byte
	if err := codec.NewEncoderBytes(&out, h).Encode(v); err != nil {
		t.Fatal(err)
	}
	return out
}

// refDecode decodes b with go-msgpack/v2's default handle, as hashicorp/raft
// does; a decoder panic is an error.
func refDecode(b []byte, v interface{}) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return codec.NewDecoderBytes(b, &codec.MsgpackHandle{}).Decode(v)
}

// sameTime reports whether two times are the same instant in the same zone
// offset (locations from FixedZone are distinct pointers, so DeepEqual
// cannot compare them).
func sameTime(a, b time.Time) bool {
	an, ao := a.Zone()
	bn, bo := b.Zone()
	return a.Equal(b) && ao == bo && an == bn && (a.Location() == time.UTC) == (b.Location() == time.UTC)
}

// sameRequest compares two decoded requests field by field, nil and empty
// slices being different (go-msgpack keeps them apart, and so do we).
func sameRequest(a, b *AppendEntriesRequest) error {
	if a.ProtocolVersion != b.ProtocolVersion || a.Term != b.Term || a.PrevLogEntry != b.PrevLogEntry ||
		a.PrevLogTerm != b.PrevLogTerm || a.LeaderCommitIndex != b.LeaderCommitIndex {
		return fmt.Errorf("scalars differ: %+v vs %+v", *a, *b)
	}
	for _, p := range [][2][]byte{{a.ID, b.ID}, {a.Addr, b.Addr}, {a.Leader, b.Leader}} {
		if !sameBytes(p[0], p[1]) {
			return fmt.Errorf("header bytes differ: %q/%v vs %q/%v", p[0], p[0] == nil, p[1], p[1] == nil)
		}
	}
	if (a.Entries == nil) != (b.Entries == nil) || len(a.Entries) != len(b.Entries) {
		return fmt.Errorf("entries differ: %d (nil %v) vs %d (nil %v)", len(a.Entries), a.Entries == nil, len(b.Entries), b.Entries == nil)
	}
	for i := range a.Entries {
		x, y := a.Entries[i], b.Entries[i]
		if (x == nil) != (y == nil) {
			return fmt.Errorf("entry %d: nil %v vs %v", i, x == nil, y == nil)
		}
		if x == nil {
			continue
		}
		if x.Index != y.Index || x.Term != y.Term || x.Type != y.Type || !sameBytes(x.Data, y.Data) ||
			!sameBytes(x.Extensions, y.Extensions) || !sameTime(x.AppendedAt, y.AppendedAt) {
			return fmt.Errorf("entry %d differs: %+v vs %+v", i, *x, *y)
		}
	}
	return nil
}

func sameBytes(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }

// randomRequest builds a request that exercises every encoding branch: nil
// and empty slices, every integer width, long strings, many entries, times
// in UTC, Local, fixed zones and the zero time.
func randomRequest(rng *rand.Rand, huge bool) *AppendEntriesRequest {
	req := &AppendEntriesRequest{
		RPCHeader: RPCHeader{
			ProtocolVersion: ProtocolVersion(randInt(rng)),
			ID:              randBytes(rng),
			Addr:            randBytes(rng),
		},
		Term: randUint(rng), Leader: randBytes(rng), PrevLogEntry: randUint(rng),
		PrevLogTerm: randUint(rng), LeaderCommitIndex: randUint(rng),
	}
	kind := rng.Intn(5)
	if huge {
		kind = 2
	}
	switch kind {
	case 0:
	case 1:
		req.Entries = []*Log{}
	default:
		n := rng.Intn(40)
		if huge {
			n = maxEntriesPerMessage // array32
		}
		req.Entries = make([]*Log, n)
		for i := range req.Entries {
			req.Entries[i] = &Log{Index: randUint(rng), Term: randUint(rng), Type: LogType(rng.Intn(256)),
				Data: randBytes(rng), Extensions: randBytes(rng), AppendedAt: randTime(rng)}
		}
	}
	return req
}

func randUint(rng *rand.Rand) uint64 {
	switch rng.Intn(6) {
	case 0:
		return uint64(rng.Intn(128))
	case 1:
		return uint64(128 + rng.Intn(128))
	case 2:
		return uint64(rng.Intn(math.MaxUint16 + 1))
	case 3:
		return uint64(rng.Uint32())
	case 4:
		return math.MaxUint64 - uint64(rng.Intn(3))
	default:
		return rng.Uint64()
	}
}

func randInt(rng *rand.Rand) int64 {
	switch rng.Intn(6) {
	case 0:
		return int64(rng.Intn(160) - 32)
	case 1:
		return int64(rng.Intn(256) - 128)
	case 2:
		return int64(rng.Intn(math.MaxUint16+1) - 32768)
	case 3:
		return int64(int32(rng.Uint32()))
	case 4:
		return math.MinInt64 + int64(rng.Intn(2))
	default:
		return int64(rng.Uint64())
	}
}

func randBytes(rng *rand.Rand) []byte {
	switch rng.Intn(8) {
	case 0:
		return nil
	case 1:
		return []byte{}
	case 2:
		return bytes.Repeat([]byte{byte(rng.Intn(256))}, 32+rng.Intn(300))
	case 3:
		if rng.Intn(10) == 0 {
			return bytes.Repeat([]byte{'z'}, 70000) // str32
		}
		fallthrough
	default:
		b := make([]byte, rng.Intn(32))
		rng.Read(b)
		return b
	}
}

func randTime(rng *rand.Rand) time.Time {
	sec := rng.Int63n(1 << 35)
	if rng.Intn(5) == 0 {
		sec = -rng.Int63n(1 << 40)
	}
	t := time.Unix(sec, int64(rng.Intn(1e9)))
	switch rng.Intn(6) {
	case 0:
		return time.Time{}
	case 1:
		return t.UTC()
	case 2:
		return t.In(time.FixedZone("", (rng.Intn(48)-24)*1800))
	case 3:
		return t.In(time.FixedZone("odd", rng.Intn(3600*14)+1)) // seconds in the offset: version 2
	case 4:
		return time.Unix(rng.Int63n(1<<32), 0).UTC() // timestamp32
	default:
		return t.Local()
	}
}

// The hand-written encoder writes exactly go-msgpack/v2's bytes, in both
// time formats, and each decoder reads the other's output to the same value.
func TestWireCodecMatchesGoMsgpack(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	for i := 0; i < 400; i++ {
		req := randomRequest(rng, i == 0)
		for _, newTime := range []bool{false, true} {
			want := refEncode(t, req, newTime)
			got := appendAppendEntriesRequest(nil, req, newTime)
			if !bytes.Equal(got, want) {
				t.Fatalf("case %d newTime=%v: encodings differ\n ours %x\n  ref %x", i, newTime, got, want)
			}
			var ours, ref AppendEntriesRequest
			if err := decodeAppendEntriesRequest(want, &ours); err != nil {
				t.Fatalf("case %d: our decoder: %v", i, err)
			}
			if err := refDecode(want, &ref); err != nil {
				t.Fatalf("case %d: reference decoder: %v", i, err)
			}
			if err := sameRequest(&ours, &ref); err != nil {
				t.Fatalf("case %d newTime=%v: %v", i, newTime, err)
			}
		}

		resp := &AppendEntriesResponse{RPCHeader: req.RPCHeader, Term: randUint(rng), LastLog: randUint(rng),
			Success: rng.Intn(2) == 0, NoRetryBackoff: rng.Intn(2) == 0}
		want := refEncode(t, resp, false)
		if got := appendAppendEntriesResponse(nil, resp); !bytes.Equal(got, want) {
			t.Fatalf("case %d: response encodings differ\n ours %x\n  ref %x", i, got, want)
		}
		var ours, ref AppendEntriesResponse
		if err := decodeAppendEntriesResponse(want, &ours); err != nil {
			t.Fatal(err)
		}
		if err := refDecode(want, &ref); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(ours, ref) {
			t.Fatalf("case %d: responses differ: %+v vs %+v", i, ours, ref)
		}
	}
}

// The §2.14 captures through the hand-written codec.
func TestWireCodecGoldenCaptures(t *testing.T) {
	hdr := RPCHeader{ProtocolVersion: 3, ID: []byte("s1"), Addr: []byte("a1")}
	at := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	cases := []struct {
		req  *AppendEntriesRequest
		want string
	}{
		{&AppendEntriesRequest{RPCHeader: hdr, Term: 2, Leader: []byte("a1")},
			"89a441646472a26131a7456e7472696573c0a24944a27331a64c6561646572a26131b14c6561646572436f6d6d6974496e64657800ac507265764c6f67456e74727900ab507265764c6f675465726d00af50726f746f636f6c56657273696f6e03a45465726d02"},
		{&AppendEntriesRequest{RPCHeader: hdr, Term: 2, Leader: []byte("a1"), PrevLogEntry: 4, PrevLogTerm: 1,
			LeaderCommitIndex: 4, Entries: []*Log{{Index: 5, Term: 2, Type: LogCommand, Data: []byte("x"), AppendedAt: at}}},
			"89a441646472a26131a7456e74726965739186aa417070656e6465644174af010000000eddca78d9075bcd15ffffa444617461a178aa457874656e73696f6e73c0a5496e64657805a45465726d02a45479706500a24944a27331a64c6561646572a26131b14c6561646572436f6d6d6974496e64657804ac507265764c6f67456e74727904ab507265764c6f675465726d01af50726f746f636f6c56657273696f6e03a45465726d02"},
	}
	for i, c := range cases {
		if got := hex.EncodeToString(appendAppendEntriesRequest(nil, c.req, false)); got != c.want {
			t.Errorf("case %d:\n got %s\nwant %s", i, got, c.want)
		}
		raw, _ := hex.DecodeString(c.want)
		var back AppendEntriesRequest
		if err := decodeAppendEntriesRequest(raw, &back); err != nil {
			t.Fatal(err)
		}
		if err := sameRequest(&back, c.req); err != nil {
			t.Errorf("case %d: %v", i, err)
		}
	}
	resp := &AppendEntriesResponse{RPCHeader: RPCHeader{ProtocolVersion: 3, ID: []byte("s2"), Addr: []byte("a2")},
		Term: 2, LastLog: 5, Success: true}
	const want = "87a441646472a26132a24944a27332a74c6173744c6f6705ae4e6f52657472794261636b6f6666c2af50726f746f636f6c56657273696f6e03a753756363657373c3a45465726d02"
	if got := hex.EncodeToString(appendAppendEntriesResponse(nil, resp)); got != want {
		t.Errorf("response:\n got %s\nwant %s", got, want)
	}
}

// mp is a tiny msgpack writer for hand-made test inputs.
type mp []byte

func (m mp) key(k string) mp      { return append(append(m, 0xa0|byte(len(k))), k...) }
func (m mp) raw(b ...byte) mp     { return append(m, b...) }
func (m mp) str8(s string) mp     { return append(append(m, mpStr8, byte(len(s))), s...) }
func (m mp) bin8(s string) mp     { return append(append(m, mpBin8, byte(len(s))), s...) }
func (m mp) bin16key(k string) mp { return append(append(m, mpBin16, 0, byte(len(k))), k...) }
func (m mp) fixstr(b []byte) mp   { return append(append(m, 0xa0|byte(len(b))), b...) }
func (m mp) entries(n byte) mp    { return append(m.key("Entries"), 0x90|n) }
func (m mp) logMap(pairs byte) mp { return append(m, 0x80|pairs) }
func (m mp) reqMap(pairs byte) mp { return append(m, 0x80|pairs) }
func (m mp) uint16v(v uint16) mp  { return append(m, mpUint16, byte(v>>8), byte(v)) }
func (m mp) timeLegacy(t time.Time) mp {
	b, _ := t.MarshalBinary()
	return m.fixstr(b)
}

// What go-msgpack/v2 accepts from real peers, we accept too, to the same
// value: keys as str8/bin, integers in other widths, bools as 0/1, nil for
// zero values, unknown keys with nested values, structs as positional arrays,
// and the five time forms.
func TestWireCodecToleratedForms(t *testing.T) {
	at := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	legacyV2 := time.Date(2024, 5, 6, 7, 8, 9, 5, time.FixedZone("", 3600+7))
	ts32, _ := hex.DecodeString("663881d9")
	ts64, _ := hex.DecodeString("1d6f3454663881d9")
	ts96 := append(binaryUint32(123456789), binaryUint64(uint64(at.Unix()))...)

	withTime := func(tv mp) []byte {
		return mp{}.reqMap(1).entries(1).logMap(1).key("AppendedAt").raw(tv...)
	}
	inputs := map[string][]byte{
		"time legacy fixstr":     withTime(mp{}.timeLegacy(at)),
		"time legacy version 2":  withTime(mp{}.timeLegacy(legacyV2)),
		"time nil":               withTime(mp{mpNil}),
		"time str 4":             withTime(mp{}.fixstr(ts32)),
		"time str 8":             withTime(mp{}.fixstr(ts64)),
		"time str 12":            withTime(mp{}.fixstr(ts96)),
		"time str8 8":            withTime(append(mp{mpStr8, 8}, ts64...)),
		"time bin 8":             withTime(append(mp{mpBin8, 8}, ts64...)),
		"time bin 12":            withTime(append(mp{mpBin8, 12}, ts96...)),
		"time ext fixext4":       withTime(append(mp{mpFixExt4, 0xff}, ts32...)),
		"time ext fixext8":       withTime(append(mp{mpFixExt8, 0xff}, ts64...)),
		"time ext ext8 12":       withTime(append(mp{mpExt8, 12, 0xff}, ts96...)),
		"keys as str8 and bin":   mp{}.reqMap(2).str8("Term").raw(5).bin16key("Leader").bin8("l1"),
		"int widths":             mp{}.reqMap(3).key("Term").raw(mpUint64, 0, 0, 0, 0, 0, 0, 0, 7).key("PrevLogEntry").raw(mpInt16, 0, 9).key("ProtocolVersion").raw(mpUint8, 3),
		"negative version":       mp{}.reqMap(1).key("ProtocolVersion").raw(0xff),
		"nil values":             mp{}.reqMap(4).key("Term").raw(mpNil).key("ID").raw(mpNil).key("Entries").raw(mpNil).key("ProtocolVersion").raw(mpNil),
		"nil struct":             mp{mpNil},
		"nil entry":              mp{}.reqMap(1).entries(1).raw(mpNil),
		"empty entries":          mp{}.reqMap(1).entries(0),
		"unknown nested key":     mp{}.reqMap(2).key("Zzz").raw(0x92, 0x81, 0xa1, 'k', 0x91, 0xc3, 0xd4, 1, 2).key("Term").raw(4),
		"lowercase key ignored":  mp{}.reqMap(2).key("term").raw(4).key("Term").raw(5),
		"duplicate key last":     mp{}.reqMap(2).key("Term").raw(4).key("Term").raw(5),
		"positional request":     mp{0x99, 3, 0xa2, 's', '1', 0xa2, 'a', '1', 2, 0xa2, 'a', '1', 4, 1, 0x91, 0x93, 5, 2, 0, 4},
		"positional long log":    mp{}.reqMap(1).entries(1).raw(0x97, 5, 2, 1, 0xa1, 'x', mpNil, mpNil, 0xc3),
		"log keys any order":     mp{}.reqMap(1).entries(1).logMap(3).key("Type").raw(5).key("Data").bin8("cfg").key("Index").uint16v(300),
		"bool fields in request": mp{}.reqMap(1).key("Unrelated").raw(mpTrue),
	}
	for name, in := range inputs {
		var ours, ref AppendEntriesRequest
		refErr := refDecode(in, &ref)
		if refErr != nil {
			t.Fatalf("%s: the reference rejects the input (bad test): %v", name, refErr)
		}
		if err := decodeAppendEntriesRequest(in, &ours); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if err := sameRequest(&ours, &ref); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}

	respInputs := map[string][]byte{
		"bools as ints":  mp{}.reqMap(2).key("Success").raw(1).key("NoRetryBackoff").raw(0),
		"nil bool":       mp{}.reqMap(1).key("Success").raw(mpNil),
		"positional":     mp{0x97, 3, 0xa2, 's', '2', 0xa2, 'a', '2', 2, 5, mpTrue, mpFalse},
		"unknown fields": mp{}.reqMap(2).key("Peers").raw(0xa3, 1, 2, 3).key("LastLog").raw(mpUint32, 0, 1, 0, 0),
	}
	for name, in := range respInputs {
		var ours, ref AppendEntriesResponse
		if err := refDecode(in, &ref); err != nil {
			t.Fatalf("%s: the reference rejects the input (bad test): %v", name, err)
		}
		if err := decodeAppendEntriesResponse(in, &ours); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !reflect.DeepEqual(ours, ref) {
			t.Errorf("%s: %+v vs %+v", name, ours, ref)
		}
	}
}

func binaryUint32(v uint32) []byte {
	return []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
}
func binaryUint64(v uint64) []byte {
	return append(binaryUint32(uint32(v>>32)), binaryUint32(uint32(v))...)
}

// Inputs our decoder rejects with an error (never a panic), each of which is
// either malformed or something no raft peer writes.
func TestWireCodecRejects(t *testing.T) {
	inputs := map[string][]byte{
		"empty":                {},
		"truncated map":        mp{}.reqMap(2).key("Term").raw(4),
		"truncated string":     mp{}.reqMap(1).key("ID").raw(0xa5, 's'),
		"trailing bytes":       mp{}.reqMap(1).key("Term").raw(4, 4),
		"negative term":        mp{}.reqMap(1).key("Term").raw(0xff),
		"term as string":       mp{}.reqMap(1).key("Term").raw(0xa1, '1'),
		"bad descriptor":       mp{}.reqMap(1).key("Zzz").raw(0xc1),
		"nil key":              mp{}.reqMap(1).raw(mpNil, 4),
		"integer key":          mp{}.reqMap(1).raw(4, 4),
		"entries as map":       mp{}.reqMap(1).key("Entries").raw(0x80),
		"huge entry count":     mp{}.reqMap(1).key("Entries").raw(mpArray32, 0xff, 0xff, 0xff, 0xff, 0xc0),
		"type out of range":    mp{}.reqMap(1).entries(1).logMap(1).key("Type").uint16v(300),
		"time of 5 bytes":      mp{}.reqMap(1).entries(1).logMap(1).key("AppendedAt").raw(0xa5, 1, 2, 3, 4, 5),
		"time wrong ext type":  mp{}.reqMap(1).entries(1).logMap(1).key("AppendedAt").raw(mpFixExt4, 0x01, 0, 0, 0, 0),
		"bool from 2":          mp{}.reqMap(1).key("Entries").raw(0x91, 0x81, 0xa4, 'D', 'a', 't', 'a', 0x02),
		"struct as string":     mp{0xa1, 'x'},
		"string length 4GiB":   mp{}.reqMap(1).key("ID").raw(mpStr32, 0xff, 0xff, 0xff, 0xff),
		"nested skip overflow": mp{}.reqMap(1).key("Zzz").raw(mpMap32, 0xff, 0xff, 0xff, 0xff),
	}
	for name, in := range inputs {
		var req AppendEntriesRequest
		if err := decodeAppendEntriesRequest(in, &req); err == nil {
			t.Errorf("%s: accepted %x as %+v", name, in, req)
		}
	}
	var resp AppendEntriesResponse
	if err := decodeAppendEntriesResponse(mp{}.reqMap(1).key("Success").raw(2), &resp); err == nil {
		t.Error("a bool of 2 was accepted")
	}
}

// The decoded request aliases the message, each byte field with its own
// capacity: appending to one entry's data never overwrites the next one.
func TestWireCodecDecodedFieldsDoNotOverlap(t *testing.T) {
	req := &AppendEntriesRequest{RPCHeader: RPCHeader{ID: []byte("id"), Addr: []byte("addr")}, Term: 3,
		Entries: []*Log{{Index: 1, Data: []byte("one")}, {Index: 2, Data: []byte("two"), Extensions: []byte("e")}}}
	buf := appendAppendEntriesRequest(nil, req, false)
	var got AppendEntriesRequest
	if err := decodeAppendEntriesRequest(buf, &got); err != nil {
		t.Fatal(err)
	}
	if err := sameRequest(&got, req); err != nil {
		t.Fatal(err)
	}
	// Appending to one entry's data must not overwrite the next one's.
	_ = append(got.Entries[0].Data, "!!!"...)
	if string(got.Entries[1].Data) != "two" {
		t.Fatalf("entries share capacity: %q", got.Entries[1].Data)
	}
}

// readMsgpackValue takes exactly one value off the stream and enforces the
// size limit before allocating.
func TestReadMsgpackValue(t *testing.T) {
	req := &AppendEntriesRequest{Term: 9, Entries: []*Log{{Index: 1, Data: bytes.Repeat([]byte("d"), 200000)}}}
	one := appendAppendEntriesRequest(nil, req, false)
	stream := append(append([]byte{}, one...), 0x07)
	r := bufio.NewReader(bytes.NewReader(stream))
	got, err := readMsgpackValue(r, nil, len(one), nil)
	if err != nil || !bytes.Equal(got, one) {
		t.Fatalf("framing: err %v, %d of %d bytes", err, len(got), len(one))
	}
	if b, _ := r.ReadByte(); b != 0x07 {
		t.Fatalf("read past the value: next byte %x", b)
	}
	if _, err := readMsgpackValue(bufio.NewReader(bytes.NewReader(one)), nil, len(one)-1, nil); !errors.Is(err, errMsgTooLarge) {
		t.Fatalf("one byte over the limit: %v", err)
	}
	if _, err := readMsgpackValue(bufio.NewReader(bytes.NewReader(one[:len(one)/2])), nil, 1<<30, nil); !errors.Is(err, errMsgTruncated) {
		t.Fatalf("truncated: %v", err)
	}
	// A declared length of 4 GiB fails at once against a 1 MiB limit.
	hostile := []byte{0x81, 0xa2, 'I', 'D', mpStr32, 0xff, 0xff, 0xff, 0xff}
	if _, err := readMsgpackValue(bufio.NewReader(bytes.NewReader(hostile)), nil, 1<<20, nil); !errors.Is(err, errMsgTooLarge) {
		t.Fatalf("4 GiB string: %v", err)
	}
	// So does an array claiming 4G elements, and deep nesting costs no stack.
	hostile = []byte{mpArray32, 0xff, 0xff, 0xff, 0xff}
	if _, err := readMsgpackValue(bufio.NewReader(bytes.NewReader(hostile)), nil, 1<<20, nil); !errors.Is(err, errMsgTooLarge) {
		t.Fatalf("4G elements: %v", err)
	}
	deep := append(bytes.Repeat([]byte{0x91}, 500000), 0xc0)
	if got, err := readMsgpackValue(bufio.NewReader(bytes.NewReader(deep)), nil, 1<<20, nil); err != nil || len(got) != len(deep) {
		t.Fatalf("deep nesting: %v", err)
	}
	r2 := msgReader{b: deep}
	if r2.skip(); r2.err != nil || r2.off != len(deep) {
		t.Fatalf("skip deep nesting: %v at %d", r2.err, r2.off)
	}
	if _, err := readMsgpackValue(bufio.NewReader(strings.NewReader("")), nil, 10, nil); err == nil {
		t.Fatal("empty stream gave no error")
	}
}

// FuzzWireDecodeAppendEntries: our decoder never panics, and whatever it
// accepts, go-msgpack/v2 accepts to the same value. Framing agrees with the
// decoder on where the value ends.
func FuzzWireDecodeAppendEntries(f *testing.F) {
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 8; i++ {
		req := randomRequest(rng, false)
		f.Add(appendAppendEntriesRequest(nil, req, i%2 == 0))
	}
	f.Add([]byte{mpNil})
	f.Add([]byte{0x99, 3, 0xa2, 's', '1', 0xa2, 'a', '1', 2, 0xa2, 'a', '1', 4, 1, 0x91, 0x93, 5, 2, 0, 4})
	f.Fuzz(func(t *testing.T, in []byte) {
		var ours AppendEntriesRequest
		err := decodeAppendEntriesRequest(in, &ours)
		framed, ferr := readMsgpackValue(bufio.NewReader(bytes.NewReader(in)), nil, len(in)+1, nil)
		if err == nil && (ferr != nil || len(framed) != len(in)) {
			t.Fatalf("decoder accepted %x but framing says %v after %d bytes", in, ferr, len(framed))
		}
		var resp AppendEntriesResponse
		if rerr := decodeAppendEntriesResponse(in, &resp); rerr == nil {
			var ref AppendEntriesResponse
			if err := refDecode(in, &ref); err != nil {
				t.Fatalf("we accept response %x, go-msgpack does not: %v", in, err)
			}
			if !reflect.DeepEqual(resp, ref) {
				t.Fatalf("response %x: ours %+v, reference %+v", in, resp, ref)
			}
		}
		if err != nil {
			return
		}
		var ref AppendEntriesRequest
		if rerr := refDecode(in, &ref); rerr != nil {
			t.Fatalf("we accept %x, go-msgpack does not: %v", in, rerr)
		}
		if d := sameRequest(&ours, &ref); d != nil {
			t.Fatalf("%x: %v", in, d)
		}
	})
}

// FuzzWireEncodeAppendEntries: for requests built from fuzz input, both
// encoders write the same bytes.
func FuzzWireEncodeAppendEntries(f *testing.F) {
	f.Add(int64(1), uint64(3), []byte("id"), []byte("x"), int64(0), false)
	f.Add(int64(-300), uint64(1<<40), []byte(nil), []byte{}, int64(1<<40), true)
	f.Fuzz(func(t *testing.T, pv int64, term uint64, id, data []byte, sec int64, newTime bool) {
		req := &AppendEntriesRequest{RPCHeader: RPCHeader{ProtocolVersion: ProtocolVersion(pv), ID: id, Addr: data},
			Term: term, PrevLogEntry: term >> 3, LeaderCommitIndex: term >> 7,
			Entries: []*Log{{Index: term, Term: term >> 1, Type: LogType(term), Data: data, Extensions: id,
				AppendedAt: time.Unix(sec%(1<<40), sec%1e9).In(time.FixedZone("", int(sec%50000)))}}}
		if _, err := req.Entries[0].AppendedAt.MarshalBinary(); err != nil {
			t.Skip("go-msgpack writes nothing for a time MarshalBinary rejects")
		}
		want := refEncode(t, req, newTime)
		if got := appendAppendEntriesRequest(nil, req, newTime); !bytes.Equal(got, want) {
			t.Fatalf("ours %x\n ref %x", got, want)
		}
	})
}

// benchRequest is the benchmark message: 64 entries of size bytes.
func benchRequest(size int) *AppendEntriesRequest {
	req := &AppendEntriesRequest{RPCHeader: RPCHeader{ProtocolVersion: 3, ID: []byte("node-1"), Addr: []byte("10.0.0.1:8300")},
		Term: 42, Leader: []byte("10.0.0.1:8300"), PrevLogEntry: 100000, PrevLogTerm: 42, LeaderCommitIndex: 99990}
	now := time.Now()
	for i := 0; i < 64; i++ {
		req.Entries = append(req.Entries, &Log{Index: uint64(100001 + i), Term: 42, Type: LogCommand,
			Data: bytes.Repeat([]byte{byte(i)}, size), AppendedAt: now})
	}
	return req
}

func BenchmarkWireEncodeAppendEntries(b *testing.B) {
	for _, size := range []int{16, 1024} {
		req := benchRequest(size)
		b.Run(fmt.Sprintf("ours/%dB", size), func(b *testing.B) {
			var buf []byte
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				buf = appendAppendEntriesRequest(buf[:0], req, false)
			}
			b.SetBytes(int64(len(buf)))
		})
		b.Run(fmt.Sprintf("gomsgpack/%dB", size), func(b *testing.B) {
			h := &codec.MsgpackHandle{}
			h.TimeNotBuiltin = true
			var buf bytes.Buffer
			enc := codec.NewEncoder(&buf, h)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				buf.Reset()
				if err := enc.Encode(req); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(buf.Len()))
		})
	}
}

func BenchmarkWireDecodeAppendEntries(b *testing.B) {
	for _, size := range []int{16, 1024} {
		msg := appendAppendEntriesRequest(nil, benchRequest(size), false)
		b.Run(fmt.Sprintf("ours/%dB", size), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			for i := 0; i < b.N; i++ {
				// The result aliases msg; reusing msg here is fine because
				// the benchmark drops the result.
				var req AppendEntriesRequest
				if err := decodeAppendEntriesRequest(msg, &req); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("gomsgpack/%dB", size), func(b *testing.B) {
			h := &codec.MsgpackHandle{}
			dec := codec.NewDecoderBytes(msg, h)
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			for i := 0; i < b.N; i++ {
				var req AppendEntriesRequest
				dec.ResetBytes(msg)
				if err := dec.Decode(&req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkWireReadAppendEntries measures what the transport does per
// request: from bytes in a bufio.Reader to a decoded request that owns its
// memory. Ours frames the value into a reused buffer, copies it once into
// the message's own buffer and decodes in place; go-msgpack decodes from the
// reader.
func BenchmarkWireReadAppendEntries(b *testing.B) {
	for _, size := range []int{16, 1024} {
		msg := appendAppendEntriesRequest(nil, benchRequest(size), false)
		src := bytes.NewReader(msg)
		b.Run(fmt.Sprintf("ours/%dB", size), func(b *testing.B) {
			r := bufio.NewReaderSize(src, connReceiveBufferSize)
			var scratch []byte
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			for i := 0; i < b.N; i++ {
				src.Reset(msg)
				r.Reset(src)
				var (
					m   []byte
					err error
				)
				m, scratch, err = readMessage(r, scratch, 1<<26, nil)
				if err != nil {
					b.Fatal(err)
				}
				var req AppendEntriesRequest
				if err := decodeAppendEntriesRequest(m, &req); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("gomsgpack/%dB", size), func(b *testing.B) {
			r := bufio.NewReaderSize(src, connReceiveBufferSize)
			dec := codec.NewDecoder(r, &codec.MsgpackHandle{})
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			for i := 0; i < b.N; i++ {
				src.Reset(msg)
				r.Reset(src)
				dec.Reset(r)
				var req AppendEntriesRequest
				if err := dec.Decode(&req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// A follower's capabilities ride in its AppendEntriesResponse as the same
// extra key a leader's ride in its request: our decoder reads them back,
// go-msgpack (what hashicorp/raft decodes with) skips them and reads the
// rest, and without capabilities the bytes are go-msgpack's own.
func TestWireAppendEntriesResponseCapabilities(t *testing.T) {
	resp := AppendEntriesResponse{RPCHeader: RPCHeader{ProtocolVersion: 3, ID: []byte("b"), Addr: []byte("addr-b")},
		Term: 7, LastLog: 42, Success: true, capabilities: capReadIndex}
	b := appendAppendEntriesResponse(nil, &resp)
	var got AppendEntriesResponse
	if err := decodeAppendEntriesResponse(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.capabilities != capReadIndex || got.Term != 7 || got.LastLog != 42 || !got.Success || string(got.ID) != "b" {
		t.Fatalf("decoded %+v", got)
	}
	var theirs AppendEntriesResponse
	if err := refDecode(b, &theirs); err != nil {
		t.Fatalf("go-msgpack on a response with capabilities: %v", err)
	}
	if theirs.Term != 7 || theirs.LastLog != 42 || !theirs.Success || string(theirs.Addr) != "addr-b" {
		t.Fatalf("go-msgpack read %+v", theirs)
	}
	resp.capabilities = 0
	if b, want := appendAppendEntriesResponse(nil, &resp), refEncode(t, &resp, true); !bytes.Equal(b, want) {
		t.Fatalf("without capabilities:\n ours %x\n want %x", b, want)
	}
}
