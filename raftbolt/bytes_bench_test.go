package raftboltdb

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/seed48a2b68f/raft"
)

// processWriteBytes is what this process has caused to be written to
// storage (Linux's /proc/self/io), or -1 where that is not known.
func processWriteBytes() int64 {
	f, err := os.Open("/proc/self/io")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "write_bytes: "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return -1
			}
			return n
		}
	}
	return -1
}

// BenchmarkStoreLogsDiskBytes stores 1 KiB entries in batches of 256 and
// reports the bytes written to the disk per entry (disk-B/entry, from
// /proc/self/io: entries, bbolt's pages, and the file system's own) and
// the database's size per entry (db-B/entry, after Close). The journal
// case uses a ring of two 8 MiB files, so most entries are checkpointed
// into the database during the run, as when a log outgrows the ring:
//
//	go test -run XXX -bench StoreLogsDiskBytes -benchtime 400000x ./raftbolt
func BenchmarkStoreLogsDiskBytes(b *testing.B) {
	for _, c := range []struct {
		name string
		opts Options
	}{
		{"plain", Options{}},
		{"journal", Options{Journal: true, JournalFiles: 2, JournalSize: 8 << 20}},
	} {
		b.Run(c.name, func(b *testing.B) {
			opts := c.opts
			opts.Path = filepath.Join(b.TempDir(), "raft.db")
			s, err := New(opts)
			if err != nil {
				b.Fatal(err)
			}
			data := make([]byte, 1024)
			const batch = 256
			logs := make([]*raft.Log, batch)
			for i := range logs {
				logs[i] = &raft.Log{Term: 1, Type: raft.LogCommand, Data: data, AppendedAt: time.Now()}
			}
			before := processWriteBytes()
			b.ResetTimer()
			next := uint64(1)
			for done := 0; done < b.N; done += batch {
				n := min(batch, b.N-done)
				for _, l := range logs[:n] {
					l.Index = next
					next++
				}
				if err := s.StoreLogs(logs[:n]); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			written := processWriteBytes() - before
			if err := s.Close(); err != nil {
				b.Fatal(err)
			}
			if before >= 0 {
				b.ReportMetric(float64(written)/float64(b.N), "disk-B/entry")
			}
			if st, err := os.Stat(opts.Path); err == nil {
				b.ReportMetric(float64(st.Size())/float64(b.N), "db-B/entry")
			}
		})
	}
}
