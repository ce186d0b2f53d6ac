package raft

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"hash/crc64"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

func testFileStore(t *testing.T, retain int) (*FileSnapshotStore, string) {
	t.Helper()
	base := t.TempDir()
	s, err := NewFileSnapshotStoreWithLogger(base, retain, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	return s, base
}

var testSnapConfig = Configuration{Servers: []Server{
	{Suffrage: Voter, ID: "node1", Address: "10.0.0.1:8300"},
	{Suffrage: Nonvoter, ID: "node2", Address: "10.0.0.2:8300"},
}}

func writeSnap(t *testing.T, s *FileSnapshotStore, term, index uint64, data string) string {
	t.Helper()
	_, trans := NewInmemTransport("")
	sink, err := s.Create(1, index, term, testSnapConfig, 7, trans)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sink.Write([]byte(data)); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	return sink.ID()
}

func readSnap(t *testing.T, s *FileSnapshotStore, id string) (*SnapshotMeta, string) {
	t.Helper()
	meta, rc, err := s.Open(id)
	if err != nil {
		t.Fatalf("Open(%s): %v", id, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return meta, string(b)
}

// TestFileSnapshotLayout checks the files against reference §3.1: the
// directory name, state.bin holding exactly the FSM's bytes, and meta.json
// with hashicorp's keys in hashicorp's order, Suffrage as a number and the
// CRC-64/ECMA of the state as 8 bytes big-endian in base64.
func TestFileSnapshotLayout(t *testing.T) {
	s, base := testFileStore(t, 2)
	id := writeSnap(t, s, 3, 42, "the fsm's bytes")
	if !strings.HasPrefix(id, "3-42-") {
		t.Fatalf("ID %q does not start with term-index", id)
	}
	dir := filepath.Join(base, "snapshots", id)
	state, err := os.ReadFile(filepath.Join(dir, "state.bin"))
	if err != nil || string(state) != "the fsm's bytes" {
		t.Fatalf("state.bin = %q, %v", state, err)
	}
	meta, err := os.ReadFile(filepath.Join(dir, "meta.json"))
	if err != nil {
		t.Fatal(err)
	}
	crc := binary.BigEndian.AppendUint64(nil, crc64.Checksum(state, crc64.MakeTable(crc64.ECMA)))
	_, trans := NewInmemTransport("")
	peers := base64.StdEncoding.EncodeToString(encodePeers(testSnapConfig, trans))
	want := `{"Version":1,"ID":"` + id + `","Index":42,"Term":3,"Peers":"` + peers + `",` +
		`"Configuration":{"Servers":[{"Suffrage":0,"ID":"node1","Address":"10.0.0.1:8300"},{"Suffrage":1,"ID":"node2","Address":"10.0.0.2:8300"}]},` +
		`"ConfigurationIndex":7,"Size":15,"CRC":"` + base64.StdEncoding.EncodeToString(crc) + `"}` + "\n"
	if string(meta) != want {
		t.Fatalf("meta.json =\n%s\nwant\n%s", meta, want)
	}
	// A nil transport (allowed to callers outside the library) writes the
	// same legacy peers, never a panic.
	if got := encodePeers(testSnapConfig, nil); !bytes.Equal(got, encodePeers(testSnapConfig, trans)) {
		t.Fatalf("peers with a nil transport = %x; want %x", got, encodePeers(testSnapConfig, trans))
	}
	// The CRC of the reference's check string, to pin the table.
	if got := crc64.Checksum([]byte("123456789"), crcTable); got != 0x995dc9bbdf1939fa {
		t.Fatalf("CRC-64/ECMA check value = %x", got)
	}
	if _, err := os.Stat(filepath.Join(base, "snapshots", "permTest")); !os.IsNotExist(err) {
		t.Fatalf("permTest left behind: %v", err)
	}
}

func TestFileSnapshotRoundTripAndRetain(t *testing.T) {
	s, base := testFileStore(t, 2)
	ids := []string{
		writeSnap(t, s, 1, 10, "a"),
		writeSnap(t, s, 1, 20, "bb"),
		writeSnap(t, s, 2, 15, "ccc"), // a higher term sorts first whatever the index
	}
	list, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != ids[2] || list[1].ID != ids[1] {
		t.Fatalf("List = %v; want [%s %s]", metaIDs(list), ids[2], ids[1])
	}
	meta, data := readSnap(t, s, ids[2])
	if data != "ccc" || meta.Index != 15 || meta.Term != 2 || meta.Size != 3 ||
		meta.ConfigurationIndex != 7 || len(meta.Configuration.Servers) != 2 || meta.Configuration.Servers[1].Suffrage != Nonvoter {
		t.Fatalf("Open = %+v, %q", meta, data)
	}
	entries, _ := os.ReadDir(filepath.Join(base, "snapshots"))
	if len(entries) != 2 {
		t.Fatalf("%d directories after reaping; want 2", len(entries))
	}
}

func metaIDs(ms []*SnapshotMeta) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}

// TestFileSnapshotCorruption: a flipped byte, a truncated state file and a
// torn meta.json give errors (never a reader of bad data), and List skips
// what it cannot read.
func TestFileSnapshotCorruption(t *testing.T) {
	s, base := testFileStore(t, 5)
	good := writeSnap(t, s, 1, 10, "good state")
	flipped := writeSnap(t, s, 1, 20, "flipped state")
	short := writeSnap(t, s, 1, 30, "truncated state")
	torn := writeSnap(t, s, 1, 40, "torn meta")
	snapDir := filepath.Join(base, "snapshots")

	path := filepath.Join(snapDir, flipped, "state.bin")
	b, _ := os.ReadFile(path)
	b[3] ^= 0x40
	os.WriteFile(path, b, 0o644)
	if _, _, err := s.Open(flipped); err == nil || !strings.Contains(err.Error(), "CRC mismatch") {
		t.Fatalf("Open of a flipped byte = %v; want CRC mismatch", err)
	}

	path = filepath.Join(snapDir, short, "state.bin")
	os.WriteFile(path, []byte("trunc"), 0o644)
	if _, _, err := s.Open(short); err == nil || !strings.Contains(err.Error(), "size") {
		t.Fatalf("Open of a truncated state = %v; want a size error", err)
	}

	path = filepath.Join(snapDir, torn, "meta.json")
	m, _ := os.ReadFile(path)
	os.WriteFile(path, m[:len(m)/2], 0o644)
	if _, _, err := s.Open(torn); err == nil {
		t.Fatal("Open with a torn meta.json succeeded")
	}
	list, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	if ids := metaIDs(list); len(ids) != 3 || ids[2] != good {
		t.Fatalf("List = %v; want the three with readable metadata", ids)
	}
	if _, data := readSnap(t, s, good); data != "good state" {
		t.Fatalf("good snapshot reads %q", data)
	}
	// Reaping leaves the unreadable one for a human.
	if err := s.ReapSnapshots(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(snapDir, torn)); err != nil {
		t.Fatalf("reaping removed a snapshot it could not read: %v", err)
	}

	for _, id := range []string{"", "../x", good + ".tmp", "nope"} {
		if _, _, err := s.Open(id); err == nil {
			t.Fatalf("Open(%q) succeeded", id)
		}
	}
}

// TestFileSnapshotTornWrite: the temporary directory of a write that never
// completed (a crash before the rename) is invisible to List and Open, and
// reaped; one being written is left alone.
func TestFileSnapshotTornWrite(t *testing.T) {
	s, base := testFileStore(t, 2)
	good := writeSnap(t, s, 1, 10, "good")
	snapDir := filepath.Join(base, "snapshots")
	crashed := filepath.Join(snapDir, "2-20-1.tmp")
	os.MkdirAll(crashed, 0o755)
	os.WriteFile(filepath.Join(crashed, "meta.json"), []byte(`{"Version":1,"ID":"2-20-1"`), 0o644)
	os.WriteFile(filepath.Join(crashed, "state.bin"), []byte("half"), 0o644)

	_, trans := NewInmemTransport("")
	open, err := s.Create(1, 30, 3, testSnapConfig, 7, trans)
	if err != nil {
		t.Fatal(err)
	}
	list, _ := s.List()
	if ids := metaIDs(list); len(ids) != 1 || ids[0] != good {
		t.Fatalf("List = %v; want only %s", ids, good)
	}
	if err := s.ReapSnapshots(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(crashed); !os.IsNotExist(err) {
		t.Fatalf("crashed temporary directory not reaped: %v", err)
	}
	if _, err := os.Stat(filepath.Join(snapDir, open.ID()+".tmp")); err != nil {
		t.Fatalf("the open sink's directory was reaped: %v", err)
	}
	open.Write([]byte("new"))
	if err := open.Close(); err != nil {
		t.Fatal(err)
	}
	if _, data := readSnap(t, s, open.ID()); data != "new" {
		t.Fatalf("read %q", data)
	}
}

func TestFileSnapshotCancelAndErrors(t *testing.T) {
	s, base := testFileStore(t, 2)
	_, trans := NewInmemTransport("")
	sink, err := s.Create(1, 5, 1, testSnapConfig, 1, trans)
	if err != nil {
		t.Fatal(err)
	}
	sink.Write([]byte("x"))
	if err := sink.Cancel(); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil { // after Cancel: nothing
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(filepath.Join(base, "snapshots")); len(entries) != 0 {
		t.Fatalf("Cancel left %d entries", len(entries))
	}
	if list, _ := s.List(); len(list) != 0 {
		t.Fatalf("List after Cancel = %v", metaIDs(list))
	}
	if _, err := s.Create(2, 5, 1, testSnapConfig, 1, trans); err == nil || err.Error() != "unsupported snapshot version 2" {
		t.Fatalf("Create version 2: %v", err)
	}
	if _, err := NewFileSnapshotStore(t.TempDir(), 0, io.Discard); err == nil {
		t.Fatal("retain 0 accepted")
	}
	// Creating the store where a file is in the way fails with an error.
	blocker := filepath.Join(t.TempDir(), "f")
	os.WriteFile(blocker, nil, 0o644)
	if _, err := NewFileSnapshotStore(blocker, 1, io.Discard); err == nil {
		t.Fatal("store under a plain file accepted")
	}
}
