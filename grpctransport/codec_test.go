package transport

import (
	"bytes"
	"context"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bufbuild/protocompile"
	"github.com/seed48a2b68f/raft"
	"github.com/seed48a2b68f/raft/internal/wirecaps"
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/proto"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
)

var hdr = raft.RPCHeader{ProtocolVersion: 3, ID: []byte("a"), Addr: []byte("b")}

// Golden bytes, written out by hand from the field numbers of the
// reference (grpc-transport.md): tag = number<<3 | wire type.
func TestGoldenEncodings(t *testing.T) {
	// rpc_header (1, bytes): protocol_version 3, id "a", addr "b".
	const header = "0a08" + "0803" + "120161" + "1a0162"
	cases := []struct {
		name string
		got  func() ([]byte, error)
		want string
	}{
		{"AppendEntriesRequest", func() ([]byte, error) {
			return marshalAppendEntriesRequest(&raft.AppendEntriesRequest{RPCHeader: hdr, Term: 5, Leader: []byte("L"),
				PrevLogEntry: 7, PrevLogTerm: 4, LeaderCommitIndex: 6,
				Entries: []*raft.Log{{Index: 8, Term: 5, Type: raft.LogCommand, Data: []byte("x"), AppendedAt: time.Unix(1, 0)}}})
		}, header + "1005" + "1a014c" + "2007" + "2804" +
			// entries (6): index 8, term 5, type 0 (absent), data "x", appended_at (6) {seconds 1}
			"320b" + "0808" + "1005" + "220178" + "32020801" +
			"3806"},
		{"AppendEntriesResponse", func() ([]byte, error) {
			return marshalAppendEntriesResponse(&raft.AppendEntriesResponse{RPCHeader: hdr, Term: 5, LastLog: 9, Success: true, NoRetryBackoff: true}), nil
		}, header + "1005" + "1809" + "2001" + "2801"},
		{"RequestVoteRequest", func() ([]byte, error) {
			return marshalRequestVoteRequest(&raft.RequestVoteRequest{RPCHeader: hdr, Term: 5, Candidate: []byte("c"),
				LastLogIndex: 300, LastLogTerm: 4, LeadershipTransfer: true}), nil
		}, header + "1005" + "1a0163" + "20ac02" + "2804" + "3001"},
		{"RequestVoteResponse", func() ([]byte, error) {
			return marshalRequestVoteResponse(&raft.RequestVoteResponse{RPCHeader: hdr, Term: 5, Peers: []byte("p"), Granted: true}), nil
		}, header + "1005" + "1a0170" + "2001"},
		{"TimeoutNowRequest", func() ([]byte, error) { return marshalHeaderOnly(&hdr), nil }, header},
		{"InstallSnapshotRequest", func() ([]byte, error) {
			return marshalInstallSnapshotRequest(&raft.InstallSnapshotRequest{RPCHeader: hdr, SnapshotVersion: 1, Term: 5,
				Leader: []byte("L"), LastLogIndex: 20, LastLogTerm: 4, Peers: []byte("p"), Configuration: []byte("c"),
				ConfigurationIndex: 3, Size: 2}, []byte("zz")), nil
		}, header + "1005" + "1a014c" + "2014" + "2804" + "320170" + "3a0163" + "4003" + "4802" + "52027a7a" +
			// snapshot_version (11, varint): tag 0x58
			"5801"},
		{"InstallSnapshot chunk", func() ([]byte, error) { return marshalSnapshotChunk([]byte("zz")), nil }, "52027a7a"},
		{"InstallSnapshotResponse", func() ([]byte, error) {
			return marshalInstallSnapshotResponse(&raft.InstallSnapshotResponse{RPCHeader: hdr, Term: 5, Success: true}), nil
		}, header + "1005" + "1801"},
		{"RequestPreVoteRequest", func() ([]byte, error) {
			return marshalRequestPreVoteRequest(&raft.RequestPreVoteRequest{RPCHeader: hdr, Term: 5, LastLogIndex: 9, LastLogTerm: 4}), nil
		}, header + "1005" + "1809" + "2004"},
		{"RequestPreVoteResponse", func() ([]byte, error) {
			return marshalRequestPreVoteResponse(&raft.RequestPreVoteResponse{RPCHeader: hdr, Term: 5, Granted: true}), nil
		}, header + "1005" + "1801"},
		{"empty header", func() ([]byte, error) { return marshalHeaderOnly(&raft.RPCHeader{}), nil }, "0a00"},
	}
	for _, tc := range cases {
		got, err := tc.got()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if h := hex.EncodeToString(got); h != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, h, tc.want)
		}
	}
}

// compiled returns the message descriptors of proto/transport.proto.
func compiled(t testing.TB) map[string]protoreflect.MessageDescriptor {
	t.Helper()
	c := protocompile.Compiler{Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{
		Accessor: func(path string) (io.ReadCloser, error) { return os.Open("proto/" + path) },
	})}
	files, err := c.Compile(context.Background(), "transport.proto")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]protoreflect.MessageDescriptor{}
	msgs := files[0].Messages()
	for i := 0; i < msgs.Len(); i++ {
		out[string(msgs.Get(i).Name())] = msgs.Get(i)
	}
	return out
}

// Differential: random values encoded by hand here and by protobuf-go's
// dynamic messages from proto/transport.proto are the same bytes, and each
// side decodes the other's.
func TestCodecMatchesProtobufGo(t *testing.T) {
	descs := compiled(t)
	rng := rand.New(rand.NewPCG(1, 2))
	blob := func() []byte {
		if rng.IntN(3) == 0 {
			return nil
		}
		b := make([]byte, rng.IntN(40)+1)
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		return b
	}
	u := func() uint64 {
		switch rng.IntN(4) {
		case 0:
			return 0
		case 1:
			return rng.Uint64()
		}
		return rng.Uint64N(1000)
	}
	header := func() raft.RPCHeader {
		return raft.RPCHeader{ProtocolVersion: raft.ProtocolVersion(rng.IntN(4)), ID: blob(), Addr: blob()}
	}
	for i := 0; i < 500; i++ {
		var entries []*raft.Log
		for j := rng.IntN(4); j > 0; j-- {
			at := time.Time{}
			if rng.IntN(2) == 0 {
				at = time.Unix(rng.Int64N(1<<34), rng.Int64N(1e9)).UTC()
			}
			entries = append(entries, &raft.Log{Index: u(), Term: u(), Type: raft.LogType(rng.IntN(6)), Data: blob(),
				Extensions: blob(), AppendedAt: at})
		}
		ae := &raft.AppendEntriesRequest{RPCHeader: header(), Term: u(), Leader: blob(), PrevLogEntry: u(), PrevLogTerm: u(),
			Entries: entries, LeaderCommitIndex: u()}
		*wirecaps.Request(ae) = u()
		roundTrip(t, descs["AppendEntriesRequest"], &appendEntriesRequest{ae}, &appendEntriesRequest{&raft.AppendEntriesRequest{}})
		aer := &raft.AppendEntriesResponse{RPCHeader: header(), Term: u(), LastLog: u(), Success: rng.IntN(2) == 0,
			NoRetryBackoff: rng.IntN(2) == 0}
		*wirecaps.Response(aer) = u()
		roundTrip(t, descs["AppendEntriesResponse"], &appendEntriesResponse{aer}, &appendEntriesResponse{&raft.AppendEntriesResponse{}})
		roundTrip(t, descs["ReadIndexRequest"], &readIndexRequest{&raft.ReadIndexRequest{RPCHeader: header(), Term: u(),
			Reads: u(), Consistency: raft.ReadConsistency(rng.IntN(3))}}, &readIndexRequest{&raft.ReadIndexRequest{}})
		roundTrip(t, descs["ReadIndexResponse"], &readIndexResponse{&raft.ReadIndexResponse{RPCHeader: header(), Term: u(),
			Index: u()}}, &readIndexResponse{&raft.ReadIndexResponse{}})
		roundTrip(t, descs["RequestVoteRequest"], &requestVoteRequest{&raft.RequestVoteRequest{RPCHeader: header(), Term: u(),
			Candidate: blob(), LastLogIndex: u(), LastLogTerm: u(), LeadershipTransfer: rng.IntN(2) == 0}},
			&requestVoteRequest{&raft.RequestVoteRequest{}})
		roundTrip(t, descs["RequestVoteResponse"], &requestVoteResponse{&raft.RequestVoteResponse{RPCHeader: header(), Term: u(),
			Peers: blob(), Granted: rng.IntN(2) == 0}}, &requestVoteResponse{&raft.RequestVoteResponse{}})
		roundTrip(t, descs["TimeoutNowRequest"], &timeoutNowRequest{&raft.TimeoutNowRequest{RPCHeader: header()}},
			&timeoutNowRequest{&raft.TimeoutNowRequest{}})
		roundTrip(t, descs["InstallSnapshotResponse"], &installSnapshotResponse{&raft.InstallSnapshotResponse{RPCHeader: header(),
			Term: u(), Success: rng.IntN(2) == 0}}, &installSnapshotResponse{&raft.InstallSnapshotResponse{}})
		roundTrip(t, descs["RequestPreVoteRequest"], &requestPreVoteRequest{&raft.RequestPreVoteRequest{RPCHeader: header(),
			Term: u(), LastLogIndex: u(), LastLogTerm: u()}}, &requestPreVoteRequest{&raft.RequestPreVoteRequest{}})
		roundTrip(t, descs["RequestPreVoteResponse"], &requestPreVoteResponse{&raft.RequestPreVoteResponse{RPCHeader: header(),
			Term: u(), Granted: rng.IntN(2) == 0}}, &requestPreVoteResponse{&raft.RequestPreVoteResponse{}})
		is := &raft.InstallSnapshotRequest{RPCHeader: header(), SnapshotVersion: raft.SnapshotVersion(rng.IntN(2)), Term: u(),
			Leader: blob(), LastLogIndex: u(), LastLogTerm: u(), Peers: blob(), Configuration: blob(),
			ConfigurationIndex: u(), Size: int64(rng.IntN(1 << 20))}
		roundTrip(t, descs["InstallSnapshotRequest"], &installSnapshotRequest{req: is, first: true, data: blob()},
			&installSnapshotRequest{req: &raft.InstallSnapshotRequest{}, first: true})
	}
}

type wireMessage interface {
	Marshal() ([]byte, error)
	Unmarshal([]byte) error
}

func roundTrip(t *testing.T, d protoreflect.MessageDescriptor, in, out wireMessage) {
	t.Helper()
	ours, err := in.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	dyn := dynamicpb.NewMessage(d)
	if err := proto.Unmarshal(ours, dyn); err != nil {
		t.Fatalf("%s: protobuf-go cannot decode our bytes %x: %v", d.Name(), ours, err)
	}
	theirs, err := proto.MarshalOptions{Deterministic: true}.Marshal(dyn)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ours, theirs) {
		t.Fatalf("%s: our bytes\n%x\nprotobuf-go re-encodes them as\n%x", d.Name(), ours, theirs)
	}
	if err := out.Unmarshal(theirs); err != nil {
		t.Fatalf("%s: we cannot decode protobuf-go's bytes: %v", d.Name(), err)
	}
	if !reflect.DeepEqual(normalize(in), normalize(out)) {
		t.Fatalf("%s: decoded\n%+v\nwant\n%+v", d.Name(), out, in)
	}
}

// normalize makes empty byte slices nil, so that values compare after a
// round trip (the wire does not tell nil from empty).
func normalize(v any) any {
	rv := reflect.ValueOf(v)
	cp := reflect.New(rv.Elem().Type())
	cp.Elem().Set(rv.Elem())
	var walk func(reflect.Value)
	walk = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.Pointer:
			if !v.IsNil() {
				n := reflect.New(v.Elem().Type())
				n.Elem().Set(v.Elem())
				v.Set(n)
				walk(v.Elem())
			}
		case reflect.Struct:
			if v.Type() == reflect.TypeOf(time.Time{}) {
				if t := v.Interface().(time.Time); t.IsZero() {
					v.Set(reflect.ValueOf(time.Time{}))
				} else {
					v.Set(reflect.ValueOf(t.UTC()))
				}
				return
			}
			for i := 0; i < v.NumField(); i++ {
				if v.Field(i).CanSet() {
					walk(v.Field(i))
				}
			}
		case reflect.Slice:
			if v.Type().Elem().Kind() == reflect.Uint8 {
				if v.Len() == 0 {
					v.Set(reflect.Zero(v.Type()))
				}
				return
			}
			n := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
			reflect.Copy(n, v)
			v.Set(n)
			for i := 0; i < v.Len(); i++ {
				walk(v.Index(i))
			}
		}
	}
	walk(cp.Elem())
	return cp.Interface()
}

// gRPC's own proto codec uses our Marshal and Unmarshal: the messages need
// no generated code.
func TestGRPCProtoCodecUsesOurMethods(t *testing.T) {
	c := encoding.GetCodecV2("proto")
	in := &requestVoteRequest{&raft.RequestVoteRequest{RPCHeader: hdr, Term: 9, Candidate: []byte("c")}}
	buf, err := c.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := in.Marshal()
	if got := buf.Materialize(); !bytes.Equal(got, want) {
		t.Fatalf("gRPC's codec wrote %x, our Marshal %x", got, want)
	}
	out := &requestVoteRequest{&raft.RequestVoteRequest{}}
	if err := c.Unmarshal(buf, out); err != nil || out.Term != 9 || string(out.Candidate) != "c" {
		t.Fatalf("gRPC's codec decoded %+v (%v)", out.RequestVoteRequest, err)
	}
}

// Hostile bytes get an error, never a panic; unknown fields are skipped.
func TestDecodeHostileInput(t *testing.T) {
	bad := []string{
		"0a",                    // truncated header
		"0aff",                  // header length past the end
		"0a02ffff",              // a bad tag inside the header
		"1080",                  // truncated varint
		"32",                    // entries with no length
		"3202" + "1806",         // log type 6: not in the enum
		"1205",                  // term with the bytes wire type
		"320218ff" + "ffffffff", // log type far beyond the enum
		"3204320218ff",          // a timestamp with a truncated varint
	}
	for _, h := range bad {
		b, err := hex.DecodeString(h)
		if err != nil {
			t.Fatalf("bad test hex %q", h)
		}
		if err := unmarshalAppendEntriesRequest(b, &raft.AppendEntriesRequest{}); err == nil {
			t.Errorf("%s decoded without error", h)
		} else if !strings.Contains(err.Error(), "grpctransport") {
			t.Errorf("%s: error %v does not say where it comes from", h, err)
		}
	}
	// An unknown field (field 100, varint) is skipped.
	b, _ := hex.DecodeString("a006011005")
	var r raft.AppendEntriesRequest
	if err := unmarshalAppendEntriesRequest(b, &r); err != nil || r.Term != 5 {
		t.Fatalf("unknown field: %v, term %d", err, r.Term)
	}
}

// FuzzDecodeAppendEntriesRequest: no input panics.
func FuzzDecodeAppendEntriesRequest(f *testing.F) {
	seed, _ := marshalAppendEntriesRequest(&raft.AppendEntriesRequest{RPCHeader: hdr, Term: 5,
		Entries: []*raft.Log{{Index: 1, Term: 1, Data: []byte("x")}}})
	f.Add(seed)
	f.Fuzz(func(t *testing.T, b []byte) {
		var r raft.AppendEntriesRequest
		if unmarshalAppendEntriesRequest(b, &r) == nil {
			if _, err := marshalAppendEntriesRequest(&r); err != nil {
				t.Fatalf("decoded a request that cannot be encoded again: %v", err)
			}
		}
		var is raft.InstallSnapshotRequest
		_, _ = unmarshalInstallSnapshotRequest(b, &is)
	})
}

// BenchmarkDecodeAppendEntries decodes a request of 64 entries of 16
// bytes, the shape of a batch under many clients.
func BenchmarkDecodeAppendEntries(b *testing.B) {
	req := &raft.AppendEntriesRequest{RPCHeader: hdr, Term: 5, Leader: []byte("leader"), PrevLogEntry: 100, PrevLogTerm: 5, LeaderCommitIndex: 99}
	for i := 0; i < 64; i++ {
		req.Entries = append(req.Entries, &raft.Log{Index: uint64(101 + i), Term: 5, Data: make([]byte, 16), AppendedAt: time.Unix(1700000000, 5)})
	}
	buf, err := marshalAppendEntriesRequest(req)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	var out raft.AppendEntriesRequest
	for b.Loop() {
		if err := unmarshalAppendEntriesRequest(buf, &out); err != nil {
			b.Fatal(err)
		}
	}
}
