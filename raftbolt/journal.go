package raftboltdb

// The journal (Options.Journal) is where the log lives while the store is
// open: a ring of files beside the database, path + ".journal", path +
// ".journal2", path + ".journal3" and so on, used oldest first. Every
// StoreLogs is one record appended to the newest file with one fdatasync,
// where a bbolt commit costs two fdatasyncs plus page writes. Memory holds
// only where each entry's encoding sits in its file; GetLog reads it from
// there (the page cache, in practice).
//
// When the newest file is full the writer moves on to the oldest file if
// nothing in it is alive any more (its entries deleted by compaction, or
// already in the database), else to a new file while there are fewer than
// Options.JournalFiles. Only when every file is in use does a background
// goroutine move the oldest file's live entries into the database, one
// file ahead of the writer. A log that snapshots keep shorter than the ring
// therefore never reaches the database before Close, which moves
// everything there and removes the files, so that raft.db is again a
// complete raft-boltdb file. While the ring may grow, the next new file is
// prepared in the background, written full of zeros and without a header
// (see startSpare); a crash may leave it, and a replay finds nothing in it.
//
// Layout of a file, all integers big-endian:
//
//	header (32 bytes): magic "raftjnl\x01", generation u64, crc32c of the
//	                   first 16 bytes u32, zero padding
//	record:            payload length u32, crc32c(generation, payload) u32,
//	                   generation u64, payload
//	payload:           flags u8, then
//	  entries:         [commit index u64 if flags bit 0], count u32,
//	                   count × (index u64, length u32, msgpack raft.Log)
//	  deletion:        (flags bit 1) first index u64, last index u64
//
// Files are preallocated and written in place, so an fdatasync has no file
// size to record. A file starts over by getting a header with a new
// generation, higher than any other file's: records of earlier generations
// that remain in it then fail their generation check and end its replay.
// The first record that does not check (a torn final write, a stale
// generation, zeros) ends a file; a write is acknowledged only after its
// fdatasync, so only an unacknowledged write can be torn. Replay reads the
// files in the order of their generations.
//
// Crash safety of the steps:
//   - A DeleteRange that could touch anything a journal file still holds
//     first appends a deletion record, so that a replay deletes those
//     entries again (a suffix of the log removed for a conflict must not
//     come back), and then deletes the range from the database.
//   - Files start over strictly oldest first, so a file's records stay on
//     disk as long as any older file's do: a replay always sees every
//     change after the oldest record it finds, in order, and the database
//     holds the effect of everything before it.
//   - A checkpoint commits a file's live entries to the database (fsynced)
//     before the file may start over; a crash in between replays records
//     whose entries are already there, writing the same values again.
//   - A close checkpoints, removes the files and fsyncs the directory, so
//     a removed journal cannot come back and replay over newer state; a new
//     file is made durable in its directory before a record goes into it.

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/seed48a2b68f/raft"
	"github.com/seed48a2b68f/raft/internal/logcodec"
)

const (
	journalSuffix     = ".journal"
	journalMagic      = "raftjnl\x01"
	journalHeaderSize = 32
	recordHeaderSize  = 16

	// defaultJournalSize is the preallocated size of each journal file when
	// Options.JournalSize is 0.
	defaultJournalSize = 8 << 20

	// defaultJournalFiles is the most journal files when
	// Options.JournalFiles is 0: with the default size, 256 MiB of log.
	defaultJournalFiles = 32

	// maxRecordPayload bounds one record; a larger StoreLogs is refused
	// (raft never sends batches near this).
	maxRecordPayload = 1 << 30

	// maxJournalSize bounds Options.JournalSize, and maxJournalFile the
	// size of a journal file that load reads: a file then ends before
	// 4 GiB, the reach of pendingEntry's offsets.
	maxJournalSize = 1 << 30
	maxJournalFile = 3 << 30

	flagCommitIndex = 1
	flagDelete      = 2

	// checkpointChunkBytes is about how many bytes of entries one
	// checkpoint transaction writes. Every transaction also rewrites the
	// last leaf, the branch pages above it, the freelist and a meta page
	// (16 KiB each in journal mode): at 256 KiB that was a third more
	// bytes again, at 1 MiB under a tenth, while one commit's sync stays
	// a couple of milliseconds of the disk.
	checkpointChunkBytes = 1 << 20

	// zeroChunk is how many zeros writeZeros writes at once, and a spare
	// file's preparation between two fdatasyncs.
	zeroChunk = 256 << 10
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// errJournalBroken marks every write after a failed journal write, fdatasync
// or checkpoint: after a failed fdatasync the kernel may have dropped the
// unwritten pages, so nothing later could be trusted to be durable. The
// store must be closed and opened again (which replays what is durable).
var errJournalBroken = errors.New("raftbolt: journal failed earlier; reopen the store")

// span is an inclusive range of log indexes.
type span struct{ min, max uint64 }

// pendingEntry locates one journaled entry's encoding in its file: n
// bytes from offset off. Sixteen bytes per entry: a file never reaches
// 4 GiB (JournalSize is at most maxJournalSize, a record at most
// maxRecordPayload, and load refuses larger files).
type pendingEntry struct {
	index uint64
	off   uint32
	n     uint32
}

// end is the offset just past the entry's encoding.
func (e pendingEntry) end() int64 { return int64(e.off) + int64(e.n) }

// pendingSet is the live entries (and the newest commit index) of one
// journal file: entries not deleted since and not yet in the database.
type pendingSet struct {
	ents []pendingEntry
	// While dense, ents holds indexes first..last in order, each once, and
	// the position of index i is i-first; the first entry that breaks
	// this (a gap, an index written again, a deletion inside the range)
	// builds latest, which maps every live index to the position of its
	// newest value from then on.
	dense     bool
	latest    map[uint64]int
	first     uint64 // lowest and highest live index, 0 when none
	last      uint64
	commit    uint64
	hasCommit bool
}

func newPendingSet() *pendingSet { return &pendingSet{latest: map[uint64]int{}, dense: true} }

// live is the number of live entries.
func (p *pendingSet) live() int {
	if p.dense {
		return len(p.ents)
	}
	return len(p.latest)
}

// lookup returns the position in ents of idx's newest value.
func (p *pendingSet) lookup(idx uint64) (int, bool) {
	if p.dense {
		if len(p.ents) == 0 || idx < p.first || idx > p.last {
			return 0, false
		}
		return int(idx - p.first), true
	}
	pos, ok := p.latest[idx]
	return pos, ok
}

// newest reports whether position pos holds a live index's newest value.
func (p *pendingSet) newest(pos int) bool {
	if p.dense {
		return true
	}
	q, ok := p.latest[p.ents[pos].index]
	return ok && q == pos
}

// add records one entries payload (checked by parseRecord, or built by
// encodeRecord) found at file offset base.
func (p *pendingSet) add(payload []byte, base int64) {
	b := payload
	flags := b[0]
	b = b[1:]
	if flags&flagCommitIndex != 0 {
		p.commit, p.hasCommit = binary.BigEndian.Uint64(b), true
		b = b[8:]
	}
	count := binary.BigEndian.Uint32(b)
	b = b[4:]
	for range count {
		idx := binary.BigEndian.Uint64(b)
		n := int(binary.BigEndian.Uint32(b[8:]))
		b = b[12:]
		off := base + int64(len(payload)-len(b))
		p.put(idx, off, off+int64(n))
		b = b[n:]
	}
}

// put adds one entry whose encoding is at off..end in the file.
func (p *pendingSet) put(idx uint64, off, end int64) {
	if p.dense && len(p.ents) > 0 && idx != p.last+1 {
		p.undense()
	}
	if !p.dense {
		p.latest[idx] = len(p.ents)
	}
	p.ents = append(p.ents, pendingEntry{index: idx, off: uint32(off), n: uint32(end - off)})
	if p.first == 0 || idx < p.first {
		p.first = idx
	}
	if idx > p.last {
		p.last = idx
	}
}

func (p *pendingSet) undense() {
	p.dense = false
	for i, e := range p.ents {
		p.latest[e.index] = i
	}
}

// deleteRange drops the live entries from lo to hi.
func (p *pendingSet) deleteRange(lo, hi uint64) {
	if p.live() == 0 || hi < p.first || lo > p.last {
		return
	}
	if lo <= p.first && hi >= p.last {
		p.ents = p.ents[:0]
		clear(p.latest)
		p.dense = true
		p.first, p.last = 0, 0
		return
	}
	if p.dense {
		switch {
		case lo <= p.first: // a prefix: compaction
			p.ents = p.ents[hi-p.first+1:]
			p.first = hi + 1
			return
		case hi >= p.last: // a suffix: a conflict
			p.ents = p.ents[:lo-p.first]
			p.last = lo - 1
			return
		}
		p.undense()
	}
	lo, hi = max(lo, p.first), min(hi, p.last)
	if hi-lo < uint64(len(p.latest)) {
		for i := lo; ; i++ {
			delete(p.latest, i)
			if i == hi {
				break
			}
		}
	} else {
		for k := range p.latest {
			if k >= lo && k <= hi {
				delete(p.latest, k)
			}
		}
	}
	p.first, p.last = 0, 0
	for k := range p.latest {
		if p.first == 0 || k < p.first {
			p.first = k
		}
		p.last = max(p.last, k)
	}
	if len(p.latest) == 0 {
		p.ents = p.ents[:0]
		p.dense = true
	}
}

// reset empties the set, keeping its memory for the next entries.
func (p *pendingSet) reset() {
	if cap(p.ents) > 1<<20 {
		p.ents = nil
	}
	p.ents = p.ents[:0]
	clear(p.latest)
	p.dense = true
	p.first, p.last = 0, 0
	p.commit, p.hasCommit = 0, false
}

// jfile is one journal file.
type jfile struct {
	num  int // 1 for path.journal, n for path.journaln
	path string
	f    *os.File // nil when closed
	gen  uint64
	off  int64 // end of its valid records: where the next record goes
	set  *pendingSet
}

// used reports whether the file holds records of its current generation.
func (jf *jfile) used() bool { return jf.off > journalHeaderSize }

// journal is the state of Options.Journal. The files' contents, the write
// buffer and the checkpoint handle belong to whoever holds wmu. The ring
// and the pending sets are changed under mu (exclusive) by the holder of
// wmu, and read under mu (shared); the background checkpoint reads its
// file's set without mu, since nothing changes it until the checkpoint
// ends (a deletion waits for it).
type journal struct {
	wmu      sync.Mutex
	dbPath   string
	size     int64
	maxFiles int
	fill     int64 // where the newest file counts as full: see nextFill
	noSync   bool
	readOnly bool
	buf      []byte
	rbuf     []byte // a checkpoint's copy of its file
	broken   error
	closed   bool
	nextGen  uint64

	// ckptDone is closed when the background checkpoint of ckptFile ends,
	// with its error in ckptErr; nil when none runs.
	ckptDone chan struct{}
	ckptFile *jfile
	ckptErr  error

	// spareDone is closed when the background preparation of preparing,
	// the next new file, ends; both are nil when none runs. The goroutine
	// touches only preparing's file handle, set when it succeeded. spare
	// is a prepared file: written full of zeros and durable in its
	// directory, without a header. spareNum is the number of the file
	// prepared or being prepared, reserved until it joins the ring.
	spareDone chan struct{}
	preparing *jfile
	spare     *jfile
	spareNum  int

	mu   sync.RWMutex
	ring []*jfile // oldest first; the last is written
	// hidden is, for a read-only store, the ranges that replayed deletion
	// records removed and that the database may still hold. Set at open,
	// read without mu.
	hidden []span
}

func newJournal(o Options) *journal {
	size := o.JournalSize
	if size <= 0 {
		size = defaultJournalSize
	}
	size = min(size, maxJournalSize)
	files := o.JournalFiles
	if files <= 0 {
		files = defaultJournalFiles
	}
	return &journal{
		dbPath:   o.Path,
		size:     size,
		maxFiles: max(files, 2),
		noSync:   o.NoSync,
		readOnly: o.readOnly(),
		nextGen:  1,
	}
}

// filePath is the name of journal file num.
func (j *journal) filePath(num int) string {
	if num == 1 {
		return j.dbPath + journalSuffix
	}
	return j.dbPath + journalSuffix + strconv.Itoa(num)
}

// active is the file being written. The caller holds wmu or mu.
func (j *journal) active() *jfile { return j.ring[len(j.ring)-1] }

// get returns a copy of the pending encoding of idx, or nil when no file
// holds it. Newer files win.
func (j *journal) get(idx uint64) ([]byte, error) {
	j.mu.RLock()
	defer j.mu.RUnlock()
	for i := len(j.ring) - 1; i >= 0; i-- {
		jf := j.ring[i]
		if pos, ok := jf.set.lookup(idx); ok {
			e := jf.set.ents[pos]
			val := make([]byte, e.n)
			if _, err := jf.f.ReadAt(val, int64(e.off)); err != nil {
				return nil, fmt.Errorf("raftbolt: read entry %d from journal %s: %w", idx, jf.path, err)
			}
			return val, nil
		}
	}
	return nil, nil
}

// isHidden reports whether idx lies in a range that a replayed deletion
// removed from a read-only store, and that range. hidden is set before the
// store is returned and never changes, so no lock is needed.
func (j *journal) isHidden(idx uint64) (span, bool) {
	for _, s := range j.hidden {
		if idx >= s.min && idx <= s.max {
			return s, true
		}
	}
	return span{}, false
}

// bounds returns the lowest and highest pending index (0, 0 when none).
func (j *journal) bounds() (uint64, uint64) {
	j.mu.RLock()
	defer j.mu.RUnlock()
	var first, last uint64
	for _, jf := range j.ring {
		if s := jf.set; s.first != 0 {
			if first == 0 || s.first < first {
				first = s.first
			}
			last = max(last, s.last)
		}
	}
	return first, last
}

// pendingCommit returns the newest journaled commit index.
func (j *journal) pendingCommit() (uint64, bool) {
	j.mu.RLock()
	defer j.mu.RUnlock()
	for i := len(j.ring) - 1; i >= 0; i-- {
		if s := j.ring[i].set; s.hasCommit {
			return s.commit, true
		}
	}
	return 0, false
}

// deleteAll drops lo..hi from every file's live entries. The caller holds
// wmu and no checkpoint runs.
func (j *journal) deleteAll(lo, hi uint64) {
	j.mu.Lock()
	for _, jf := range j.ring {
		jf.set.deleteRange(lo, hi)
	}
	j.mu.Unlock()
}

// dead reports whether nothing in jf is needed any more: no live entries,
// and no commit index that a newer file does not supersede. The caller
// holds wmu.
func (j *journal) dead(jf *jfile) bool {
	if jf.set.live() > 0 {
		return false
	}
	if !jf.set.hasCommit {
		return true
	}
	for i := len(j.ring) - 1; i >= 0 && j.ring[i] != jf; i-- {
		if j.ring[i].set.hasCommit {
			return true
		}
	}
	return false
}

// encodeRecord builds the record of logs (and a staged commit index) in
// j.buf for generation gen.
func (j *journal) encodeRecord(gen uint64, logs []*raft.Log, commit uint64, hasCommit, newTime bool) ([]byte, error) {
	buf := append(j.buf[:0], make([]byte, recordHeaderSize)...)
	var flags byte
	if hasCommit {
		flags |= flagCommitIndex
	}
	buf = append(buf, flags)
	if hasCommit {
		buf = binary.BigEndian.AppendUint64(buf, commit)
	}
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(logs)))
	for _, l := range logs {
		buf = binary.BigEndian.AppendUint64(buf, l.Index)
		at := len(buf)
		buf = append(buf, 0, 0, 0, 0)
		buf = logcodec.Encode(buf, l, newTime)
		binary.BigEndian.PutUint32(buf[at:], uint32(len(buf)-at-4))
	}
	j.buf = buf
	payload := buf[recordHeaderSize:]
	if len(payload) > maxRecordPayload {
		return nil, fmt.Errorf("raftbolt: a batch of %d entries encodes to %d bytes, more than %d", len(logs), len(payload), maxRecordPayload)
	}
	binary.BigEndian.PutUint32(buf[0:], uint32(len(payload)))
	stampRecord(buf, gen)
	return buf, nil
}

// encodeDelete builds the record of a deletion of lo..hi in j.buf for
// generation gen.
func (j *journal) encodeDelete(gen, lo, hi uint64) []byte {
	buf := append(j.buf[:0], make([]byte, recordHeaderSize)...)
	buf = append(buf, flagDelete)
	buf = binary.BigEndian.AppendUint64(buf, lo)
	buf = binary.BigEndian.AppendUint64(buf, hi)
	j.buf = buf
	binary.BigEndian.PutUint32(buf[0:], uint32(len(buf)-recordHeaderSize))
	stampRecord(buf, gen)
	return buf
}

// stampRecord writes generation gen, and the checksum that goes with it,
// into an encoded record's header.
func stampRecord(rec []byte, gen uint64) {
	binary.BigEndian.PutUint64(rec[8:], gen)
	binary.BigEndian.PutUint32(rec[4:], recordCRC(rec[8:16], rec[recordHeaderSize:]))
}

// recordCRC is a record's checksum: crc32c of the 8 bytes of its
// generation (as in its header), then of its payload.
func recordCRC(genBytes, payload []byte) uint32 {
	return crc32.Update(crc32.Update(0, crcTable, genBytes), crcTable, payload)
}

// parseRecord reads the record at the start of b. ok is false at the end
// of the journal: too short, another generation, a bad checksum. err is set
// for a record whose checksum holds but whose payload is malformed, which
// only a bug or deliberate tampering produces.
func parseRecord(b []byte, gen uint64) (payload []byte, n int, ok bool, err error) {
	if len(b) < recordHeaderSize {
		return nil, 0, false, nil
	}
	length := binary.BigEndian.Uint32(b[0:])
	if binary.BigEndian.Uint64(b[8:]) != gen || length == 0 || uint64(length) > uint64(len(b)-recordHeaderSize) {
		return nil, 0, false, nil
	}
	payload = b[recordHeaderSize : recordHeaderSize+int(length)]
	if recordCRC(b[8:16], payload) != binary.BigEndian.Uint32(b[4:]) {
		return nil, 0, false, nil
	}
	if err := checkPayload(payload); err != nil {
		return nil, 0, false, err
	}
	return payload, recordHeaderSize + int(length), true, nil
}

// checkPayload verifies that every length in a payload stays inside it and
// that each entry decodes, so addRecord and a checkpoint can trust it.
func checkPayload(p []byte) error {
	flags := p[0]
	p = p[1:]
	if flags == flagDelete {
		if len(p) != 16 {
			return fmt.Errorf("deletion record of %d bytes, want 16", len(p))
		}
		lo, hi := binary.BigEndian.Uint64(p), binary.BigEndian.Uint64(p[8:])
		if lo == 0 || lo > hi {
			return fmt.Errorf("deletion of %d..%d", lo, hi)
		}
		return nil
	}
	if flags&^flagCommitIndex != 0 {
		return fmt.Errorf("unknown record flags %#x", flags)
	}
	if flags&flagCommitIndex != 0 {
		if len(p) < 8 {
			return errors.New("record ends inside its commit index")
		}
		p = p[8:]
	}
	if len(p) < 4 {
		return errors.New("record ends inside its entry count")
	}
	count := binary.BigEndian.Uint32(p)
	p = p[4:]
	if uint64(count)*12 > uint64(len(p)) {
		return fmt.Errorf("record claims %d entries in %d bytes", count, len(p))
	}
	for i := range count {
		if len(p) < 12 {
			return fmt.Errorf("record ends inside entry %d of %d", i, count)
		}
		idx := binary.BigEndian.Uint64(p)
		n := uint64(binary.BigEndian.Uint32(p[8:]))
		p = p[12:]
		if idx == 0 {
			return errors.New("entry with index 0")
		}
		if n > uint64(len(p)) {
			return fmt.Errorf("entry %d claims %d bytes, %d remain", idx, n, len(p))
		}
		var l raft.Log
		if err := logcodec.Decode(p[:n], &l); err != nil {
			return fmt.Errorf("entry %d: %w", idx, err)
		}
		if l.Index != idx {
			return fmt.Errorf("entry filed under index %d holds index %d", idx, l.Index)
		}
		p = p[n:]
	}
	if len(p) != 0 {
		return fmt.Errorf("%d bytes after the last entry", len(p))
	}
	return nil
}

// encodeHeader returns the journal header for gen.
func encodeHeader(gen uint64) []byte {
	h := make([]byte, journalHeaderSize)
	copy(h, journalMagic)
	binary.BigEndian.PutUint64(h[8:], gen)
	binary.BigEndian.PutUint32(h[16:], crc32.Checksum(h[:16], crcTable))
	return h
}

// headerGen returns the generation of a journal file that starts with b,
// and false when b does not start with a header that checks.
func headerGen(b []byte) (uint64, bool) {
	if len(b) < journalHeaderSize || string(b[:8]) != journalMagic ||
		crc32.Checksum(b[:16], crcTable) != binary.BigEndian.Uint32(b[16:]) {
		return 0, false
	}
	return binary.BigEndian.Uint64(b[8:]), true
}

// journalNum returns the number of a journal file's name (the database's
// base name, ".journal", then nothing for 1 or a number from 2 up), or 0
// for any other name.
func journalNum(name, dbBase string) int {
	rest, ok := strings.CutPrefix(name, dbBase+journalSuffix)
	if !ok {
		return 0
	}
	if rest == "" {
		return 1
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 2 || strconv.Itoa(n) != rest {
		return 0
	}
	return n
}

// readJournalFile reads file jf, opened in f, and replays its records of
// its generation into its set; deletion records drop entries from every
// set in done (the older files, already replayed) and from jf's, and are
// appended to dels. A header that does not check means the file holds
// nothing: a header is rewritten only when nothing in the file is needed.
func readJournalFile(jf *jfile, done []*jfile, dels []span) ([]span, error) {
	st, err := jf.f.Stat()
	if err != nil {
		return nil, fmt.Errorf("raftbolt: stat journal %s: %w", jf.path, err)
	}
	if st.Size() > maxJournalFile {
		return nil, fmt.Errorf("raftbolt: journal %s is %d bytes, more than this package ever writes (%d)", jf.path, st.Size(), int64(maxJournalFile))
	}
	data := make([]byte, st.Size())
	if _, err := jf.f.ReadAt(data, 0); err != nil {
		return nil, fmt.Errorf("raftbolt: read journal %s: %w", jf.path, err)
	}
	jf.off = journalHeaderSize
	gen, ok := headerGen(data)
	if !ok {
		return dels, nil
	}
	jf.gen = gen
	off := journalHeaderSize
	for {
		payload, n, ok, err := parseRecord(data[off:], jf.gen)
		if err != nil {
			return nil, fmt.Errorf("raftbolt: journal %s: record at offset %d: %w", jf.path, off, err)
		}
		if !ok {
			break
		}
		if payload[0] == flagDelete {
			lo, hi := binary.BigEndian.Uint64(payload[1:]), binary.BigEndian.Uint64(payload[9:])
			for _, older := range done {
				older.set.deleteRange(lo, hi)
			}
			jf.set.deleteRange(lo, hi)
			dels = append(dels, span{lo, hi})
		} else {
			jf.set.add(payload, int64(off+recordHeaderSize))
		}
		off += n
	}
	jf.off = int64(off)
	return dels, nil
}

// load opens and replays every journal file beside the database, oldest
// generation first, into j.ring. It returns the ranges that deletion
// records removed, in order.
func (j *journal) load() ([]span, error) {
	dir, base := filepath.Split(j.dbPath)
	if dir == "" {
		dir = "."
	}
	names, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("raftbolt: list journal files in %s: %w", dir, err)
	}
	flag := os.O_RDWR
	if j.readOnly {
		flag = os.O_RDONLY
	}
	var files []*jfile
	for _, de := range names {
		num := journalNum(de.Name(), base)
		if num == 0 || de.IsDir() {
			continue
		}
		jf := &jfile{num: num, path: j.filePath(num), set: newPendingSet()}
		if jf.f, err = os.OpenFile(jf.path, flag, 0); err != nil {
			closeAll(files)
			return nil, fmt.Errorf("raftbolt: open journal: %w", err)
		}
		files = append(files, jf)
	}
	// Read every header first: the order of replay is the generations'.
	for _, jf := range files {
		var h [journalHeaderSize]byte
		n, _ := jf.f.ReadAt(h[:], 0)
		jf.gen, _ = headerGen(h[:n])
	}
	slices.SortFunc(files, func(a, b *jfile) int { return cmp.Compare(a.gen, b.gen) })
	var dels []span
	for i, jf := range files {
		if dels, err = readJournalFile(jf, files[:i], dels); err != nil {
			closeAll(files)
			return nil, err
		}
		if i > 0 && jf.used() && files[i-1].used() && files[i-1].gen == jf.gen {
			closeAll(files)
			return nil, fmt.Errorf("raftbolt: journal files %s and %s both hold records of generation %d", files[i-1].path, jf.path, jf.gen)
		}
		j.nextGen = max(j.nextGen, jf.gen+1)
	}
	j.ring = files
	return dels, nil
}

func closeAll(files []*jfile) {
	for _, jf := range files {
		if jf.f != nil {
			jf.f.Close()
			jf.f = nil
		}
	}
}

// createFile makes a new journal file under the lowest free number,
// preallocated, with a header of the next generation, durable in its
// directory. The caller holds wmu and adds it to the ring.
func (j *journal) createFile() (*jfile, error) {
	num := j.freeNum()
	jf := &jfile{num: num, path: j.filePath(num), set: newPendingSet()}
	f, err := os.OpenFile(jf.path, os.O_RDWR|os.O_CREATE, dbFileMode)
	if err != nil {
		return nil, fmt.Errorf("raftbolt: create journal: %w", err)
	}
	jf.f = f
	if st, err := f.Stat(); err != nil || st.Size() < j.size {
		if err := preallocate(f, j.size); err != nil {
			f.Close()
			return nil, fmt.Errorf("raftbolt: preallocate journal %s: %w", jf.path, err)
		}
	}
	if err := j.writeHeader(jf); err != nil {
		f.Close()
		return nil, err
	}
	if err := syncDir(filepath.Dir(jf.path)); err != nil {
		f.Close()
		return nil, err
	}
	return jf, nil
}

// freeNum is the lowest file number that neither a file of the ring nor
// the spare has. The caller holds wmu.
func (j *journal) freeNum() int {
	num := 1
	for num == j.spareNum || slices.ContainsFunc(j.ring, func(jf *jfile) bool { return jf.num == num }) {
		num++
	}
	return num
}

// A file that was only preallocated makes every fdatasync of its first use
// also commit file system metadata: ext4 and xfs record on disk which
// preallocated blocks have been written, and a write into a block not yet
// written changes that record. Over blocks written before, an fdatasync
// flushes only data. On this project's test machine that halved the sync
// of a 4 KiB record (85 to 44 µs) and of a 64 KiB one (141 to 84 µs). Files
// that the ring reuses have been written, but new files have not, and
// every open starts with new files; so while the ring may still grow, the
// next new file is written full of zeros in the background, ahead of need.
// Without syncs (Options.NoSync) there is nothing to gain and nothing is
// prepared.

// startSpare begins preparing the next new file in the background when
// the ring may still grow and no spare exists or is being made. The
// caller holds wmu.
func (j *journal) startSpare() {
	if j.noSync || j.readOnly || j.closed || j.spare != nil || j.spareDone != nil || len(j.ring) >= j.maxFiles {
		return
	}
	num := j.freeNum()
	j.spareNum = num
	done := make(chan struct{})
	j.spareDone = done
	jf := &jfile{num: num, path: j.filePath(num), set: newPendingSet()}
	j.preparing = jf
	go func() {
		defer close(done)
		// A failure is not fatal: new files are then preallocated only.
		_ = j.prepareFile(jf)
	}()
}

// prepareFile creates jf's file written full of zeros (j.size bytes) and
// makes it durable in its directory. On failure it leaves no file behind.
func (j *journal) prepareFile(jf *jfile) error {
	f, err := os.OpenFile(jf.path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, dbFileMode)
	if err != nil {
		return err
	}
	if err = writeZeros(f, j.size, true); err == nil {
		err = syncDir(filepath.Dir(jf.path))
	}
	if err != nil {
		f.Close()
		os.Remove(jf.path)
		return err
	}
	jf.f = f
	return nil
}

// waitSpare waits for a running preparation to end and keeps the file it
// made as the spare (trimmed if the ring is full by now). The caller holds
// wmu.
func (j *journal) waitSpare() {
	if j.spareDone == nil {
		return
	}
	<-j.spareDone
	jf := j.preparing
	j.spareDone, j.preparing = nil, nil
	if jf.f == nil {
		j.spareNum = 0
		return
	}
	j.spare = jf
	j.trimSpare()
}

// trimSpare removes the spare once the ring is full: the ring takes no
// new file any more. The spare holds nothing, and an open would remove it
// too, so an error removing it is let go. The caller holds wmu.
func (j *journal) trimSpare() {
	if len(j.ring) >= j.maxFiles && j.spare != nil {
		_ = j.dropSpare()
	}
}

// pollSpare notes the end of a running preparation without waiting. The
// caller holds wmu.
func (j *journal) pollSpare() {
	select {
	case <-j.spareDone: // a nil channel is never ready
		j.waitSpare()
	default:
	}
}

// newFile is a file to add to the ring, with a header of the next
// generation: the prepared spare when its preparation has ended well, else
// one created now and preallocated only (the writer does not wait for a
// preparation; that goes on and serves a later file). The caller holds
// wmu.
func (j *journal) newFile() (*jfile, error) {
	j.pollSpare()
	if jf := j.spare; jf != nil {
		j.spare, j.spareNum = nil, 0
		if err := j.writeHeader(jf); err != nil {
			jf.f.Close()
			return nil, err
		}
		return jf, nil
	}
	return j.createFile()
}

// dropSpare closes the spare, once its preparation has ended, and removes
// its file. The caller holds wmu.
func (j *journal) dropSpare() error {
	j.waitSpare()
	jf := j.spare
	if jf == nil {
		return nil
	}
	j.spare, j.spareNum = nil, 0
	jf.f.Close()
	if err := os.Remove(jf.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("raftbolt: remove spare journal file: %w", err)
	}
	return nil
}

// writeHeader gives jf the next generation, written and synced; the file
// is then empty.
func (j *journal) writeHeader(jf *jfile) error {
	gen := j.nextGen
	if _, err := jf.f.WriteAt(encodeHeader(gen), 0); err != nil {
		return fmt.Errorf("raftbolt: write journal header %s: %w", jf.path, err)
	}
	if err := j.sync(jf); err != nil {
		return fmt.Errorf("raftbolt: sync journal header %s: %w", jf.path, err)
	}
	j.nextGen++
	jf.gen, jf.off = gen, journalHeaderSize
	return nil
}

func (j *journal) sync(jf *jfile) error {
	if j.noSync {
		return nil
	}
	return fdatasync(jf.f)
}

// nextFill picks where the next active file counts as full: at random
// between two thirds and all of it. Nodes of one cluster write the same
// records, so with a fixed point they all switched files, and began the
// CPU-heavy checkpoint, at the same moment; on machines shared by several
// nodes (tests, benchmarks, small deployments) those checkpoints then took
// every processor at once and stalled replication for 10-20 ms.
func (j *journal) nextFill() int64 {
	return j.size - rand.Int64N(j.size/3+1)
}

// append writes one encoded record at the end of the active file and syncs
// it, returning where it starts. The caller holds wmu and has made room.
func (j *journal) append(rec []byte) (int64, error) {
	jf := j.active()
	at := jf.off
	if _, err := jf.f.WriteAt(rec, at); err != nil {
		j.broken = fmt.Errorf("raftbolt: write journal %s: %w", jf.path, err)
		return 0, j.broken
	}
	if err := j.sync(jf); err != nil {
		j.broken = fmt.Errorf("raftbolt: sync journal %s: %w", jf.path, err)
		return 0, j.broken
	}
	jf.off += int64(len(rec))
	return at, nil
}

// waitCheckpoint waits for a background checkpoint to end. The caller
// holds wmu.
func (j *journal) waitCheckpoint() error {
	if j.ckptDone != nil {
		<-j.ckptDone
		j.ckptDone, j.ckptFile = nil, nil
		if j.ckptErr != nil && j.broken == nil {
			j.broken = j.ckptErr
		}
	}
	return j.broken
}

// pollCheckpoint notes the end of a background checkpoint without
// waiting. The caller holds wmu.
func (j *journal) pollCheckpoint() {
	if j.ckptDone == nil {
		return
	}
	select {
	case <-j.ckptDone:
		_ = j.waitCheckpoint()
	default:
	}
}

// rotate makes a new file the one written: the oldest file when nothing
// in it is needed, else a new file while the ring has room, else the
// oldest once its live entries are in the database. When that leaves the
// ring full it starts moving the (new) oldest file's entries into the
// database in the background, so the next rotation need not wait. The
// caller holds wmu.
func (b *BoltStore) rotate() error {
	j := b.j
	j.pollCheckpoint()
	if j.broken != nil {
		return j.broken
	}
	oldest := j.ring[0]
	switch {
	case len(j.ring) > 1 && j.ckptFile != oldest && j.dead(oldest):
		if err := j.reuse(oldest); err != nil {
			return err
		}
	case len(j.ring) < j.maxFiles:
		jf, err := j.newFile()
		if err != nil {
			j.broken = err
			return err
		}
		j.mu.Lock()
		j.ring = append(j.ring, jf)
		j.mu.Unlock()
	default:
		if j.ckptFile != oldest {
			if err := j.waitCheckpoint(); err != nil {
				return err
			}
			if err := b.checkpointFile(oldest); err != nil {
				j.broken = err
				return err
			}
			j.mu.Lock()
			oldest.set.reset()
			j.mu.Unlock()
		}
		if err := j.waitCheckpoint(); err != nil {
			return err
		}
		if err := j.reuse(oldest); err != nil {
			return err
		}
	}
	j.fill = j.nextFill()
	if next := j.ring[0]; len(j.ring) >= j.maxFiles && j.ckptDone == nil && !j.dead(next) {
		b.startCheckpoint(next)
	}
	j.pollSpare()
	j.trimSpare()
	j.startSpare()
	return nil
}

// reuse starts the oldest file over as the newest. The caller holds wmu.
func (j *journal) reuse(jf *jfile) error {
	if err := j.writeHeader(jf); err != nil {
		j.broken = err
		return err
	}
	j.mu.Lock()
	jf.set.reset()
	j.ring = append(slices.Delete(j.ring, 0, 1), jf)
	j.mu.Unlock()
	return nil
}

// startCheckpoint moves jf's live entries into the database in the
// background. The caller holds wmu.
func (b *BoltStore) startCheckpoint(jf *jfile) {
	j := b.j
	done := make(chan struct{})
	j.ckptDone, j.ckptFile = done, jf
	go func() {
		err := b.checkpointFile(jf)
		if err == nil {
			j.mu.Lock()
			jf.set.reset()
			j.mu.Unlock()
		}
		j.ckptErr = err
		close(done)
	}()
}

// checkpointFile writes a file's live entries and commit index to the
// database, in transactions of about checkpointChunkBytes of entries each
// (the commit index with the last), so that no single commit writes and
// syncs a burst of pages long enough to hold up other writers to the same
// disk. Nothing changes the set or the file's records meanwhile. Until the
// file starts over, a crash between two transactions replays it.
func (b *BoltStore) checkpointFile(jf *jfile) (err error) {
	defer catchCorrupt(b.path, &err)
	p := jf.set
	if p.live() == 0 && !p.hasCommit {
		return nil
	}
	j := b.j
	if int64(cap(j.rbuf)) < jf.off || cap(j.rbuf) > 4*int(j.size) {
		j.rbuf = make([]byte, jf.off)
	}
	data := j.rbuf[:jf.off]
	if _, err := jf.f.ReadAt(data, 0); err != nil {
		return fmt.Errorf("raftbolt: %s: read journal %s for a checkpoint: %w", b.path, jf.path, err)
	}
	keys := make([]byte, 0, 8*len(p.ents))
	pos := 0
	for {
		tx, bk, err := b.beginLogs()
		if err != nil {
			return err
		}
		// Entries come in index order, so a page once split is never
		// inserted into again: fill pages completely (15 entries of 1 KiB
		// per 16 KiB page, where 0.9 left room for 13 and bbolt's default
		// 0.5 for 7).
		bk.FillPercent = 1.0
		bytes := 0
		for ; pos < len(p.ents) && bytes < checkpointChunkBytes; pos++ {
			e := p.ents[pos]
			if !p.newest(pos) {
				continue // replaced by a later record, or deleted
			}
			at := len(keys)
			keys = binary.BigEndian.AppendUint64(keys, e.index)
			if err := bk.Put(keys[at:at+8:at+8], data[e.off:e.end()]); err != nil {
				tx.Rollback()
				return fmt.Errorf("raftbolt: %s: checkpoint entry %d: %w", b.path, e.index, err)
			}
			bytes += int(e.n) + 8
		}
		if pos == len(p.ents) && p.hasCommit {
			var v [8]byte
			binary.BigEndian.PutUint64(v[:], p.commit)
			if err := tx.Bucket(dbConf).Put(keyCommitIndex, v[:]); err != nil {
				tx.Rollback()
				return fmt.Errorf("raftbolt: %s: checkpoint commit index: %w", b.path, err)
			}
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("raftbolt: %s: checkpoint commit: %w", b.path, err)
		}
		if pos == len(p.ents) {
			return nil
		}
	}
}

// checkpointAll moves every file's live entries into the database, oldest
// file first. The caller holds wmu and no checkpoint runs.
func (b *BoltStore) checkpointAll() error {
	for _, jf := range b.j.ring {
		if err := b.checkpointFile(jf); err != nil {
			return err
		}
	}
	return nil
}

// deleteSpans deletes the ranges from the database, a transaction each
// (DeleteRange's own); only an open after a crash calls it, and a crash
// in between replays them all again.
func (b *BoltStore) deleteSpans(spans []span) error {
	for _, s := range spans {
		if err := b.deleteFromDB(s.min, s.max); err != nil {
			return err
		}
	}
	return nil
}

// openJournal replays the journal files left beside the database and, in
// journal mode, starts a new journal. A replayed journal is moved into
// the database and its files removed. A read-only store keeps the replayed
// files open for reading and writes nothing.
func (b *BoltStore) openJournal(o Options) error {
	j := newJournal(o)
	dels, err := j.load()
	if err != nil {
		return err
	}
	if len(j.ring) == 0 && !o.Journal {
		return nil
	}
	b.j = j
	if j.readOnly {
		j.hidden = dels
		if len(j.ring) == 0 {
			j.closed = true
		}
		return nil
	}
	if err := b.deleteSpans(dels); err != nil {
		closeAll(j.ring)
		return err
	}
	if err := b.checkpointAll(); err != nil {
		closeAll(j.ring)
		return err
	}
	if err := j.remove(); err != nil {
		return err
	}
	if !o.Journal {
		b.j = nil
		return nil
	}
	jf, err := j.createFile()
	if err != nil {
		return err
	}
	j.ring = []*jfile{jf}
	j.fill = j.nextFill()
	j.startSpare()
	return nil
}

// closeFiles closes every journal file, the spare too (after its
// preparation ends), leaving them on disk. The caller holds wmu.
func (j *journal) closeFiles() {
	j.waitSpare()
	if jf := j.spare; jf != nil {
		jf.f.Close()
		j.spare, j.spareNum = nil, 0
	}
	j.mu.Lock()
	closeAll(j.ring)
	j.mu.Unlock()
}

// remove closes the journal files, deletes them and syncs the directory so
// the deletion is durable. The ring is then empty.
func (j *journal) remove() error {
	j.mu.Lock()
	ring := j.ring
	j.ring = nil
	j.mu.Unlock()
	closeAll(ring)
	for _, jf := range ring {
		if err := os.Remove(jf.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("raftbolt: remove journal: %w", err)
		}
	}
	return syncDir(filepath.Dir(j.dbPath))
}

// closeJournal checkpoints everything and removes the journal, leaving a
// database that raft-boltdb reads completely. After an earlier failure the
// files stay for the next open to replay, and the error says so.
func (b *BoltStore) closeJournal() error {
	j := b.j
	j.wmu.Lock()
	defer j.wmu.Unlock()
	if j.closed {
		return nil
	}
	j.closed = true
	if j.readOnly {
		j.closeFiles()
		return nil
	}
	// The spare holds no records (no header), so it goes in every case;
	// an open would remove it anyway.
	spareErr := j.dropSpare()
	if err := j.waitCheckpoint(); err != nil {
		j.closeFiles()
		return fmt.Errorf("raftbolt: %s: the journal failed earlier and stays for the next open to replay: %w", b.path, err)
	}
	if err := b.checkpointAll(); err != nil {
		j.closeFiles()
		return err
	}
	if err := j.remove(); err != nil {
		return err
	}
	return spareErr
}

// journalWritable reports why the journal cannot be written, if it cannot. The
// caller holds wmu.
func (b *BoltStore) journalWritable() error {
	j := b.j
	j.pollCheckpoint()
	switch {
	case j.readOnly:
		return fmt.Errorf("raftbolt: %s: store is read-only", b.path)
	case j.closed:
		return errClosed
	case j.broken != nil:
		return errJournalBroken
	}
	return nil
}

// storeJournal is StoreLogs in journal mode.
func (b *BoltStore) storeJournal(logs []*raft.Log, commit uint64, hasCommit bool) error {
	j := b.j
	j.wmu.Lock()
	defer j.wmu.Unlock()
	if err := b.journalWritable(); err != nil {
		return err
	}
	for _, l := range logs {
		if l.Index == 0 {
			// Index 0 means "empty" to FirstIndex and LastIndex, and raft
			// never writes it.
			return fmt.Errorf("raftbolt: %s: entry with index 0", b.path)
		}
	}
	jf := j.active()
	rec, err := j.encodeRecord(jf.gen, logs, commit, hasCommit, b.newTime)
	if err != nil {
		return err
	}
	if err := b.makeRoom(rec); err != nil {
		return err
	}
	at, err := j.append(rec)
	if err != nil {
		return err
	}
	jf = j.active()
	j.mu.Lock()
	jf.set.add(rec[recordHeaderSize:], at+recordHeaderSize)
	j.mu.Unlock()
	if len(j.buf) > 64<<20 {
		j.buf = nil
	}
	return nil
}

// makeRoom moves to the next file when rec does not fit in the active
// one's fill, and stamps rec with the generation of the file it goes to.
// The caller holds wmu.
func (b *BoltStore) makeRoom(rec []byte) error {
	j := b.j
	jf := j.active()
	if jf.used() && jf.off+int64(len(rec)) > j.fill {
		if err := b.rotate(); err != nil {
			return err
		}
		// Another file, another generation: the same record restamped.
		stampRecord(rec, j.active().gen)
	}
	return nil
}

// deleteJournal is DeleteRange in journal mode. While any journal file
// holds records, a deletion record goes first, so that a replay cannot
// bring the deleted entries back; then the range leaves the live entries
// and the database.
func (b *BoltStore) deleteJournal(lo, hi uint64) error {
	j := b.j
	j.wmu.Lock()
	defer j.wmu.Unlock()
	if err := b.journalWritable(); err != nil {
		return err
	}
	if slices.ContainsFunc(j.ring, (*jfile).used) {
		rec := j.encodeDelete(j.active().gen, lo, hi)
		if err := b.makeRoom(rec); err != nil {
			return err
		}
		// A running checkpoint would write entries this deletion removes.
		if err := j.waitCheckpoint(); err != nil {
			return err
		}
		if _, err := j.append(rec); err != nil {
			return err
		}
		j.deleteAll(lo, hi)
	}
	if err := b.deleteFromDB(lo, hi); err != nil {
		// The deletion record stands: the database must not serve what
		// it deleted until a reopen replays it.
		j.broken = err
		return err
	}
	return nil
}

// syncJournal fsyncs the active journal file (for Sync with NoSync).
func (b *BoltStore) syncJournal() error {
	j := b.j
	j.wmu.Lock()
	defer j.wmu.Unlock()
	if j.closed || j.readOnly || len(j.ring) == 0 {
		return nil
	}
	if err := fdatasync(j.active().f); err != nil {
		return fmt.Errorf("raftbolt: sync journal: %w", err)
	}
	return nil
}

// writeZeros extends the file to size bytes of written zeros and syncs
// it: for file systems without fallocate, and for a journal's spare file.
// With syncEach every chunk gets its own fdatasync, as a spare's
// preparation needs: one burst of a whole file and a single sync made the
// other files' fdatasyncs wait behind megabytes of writes.
func writeZeros(f *os.File, size int64, syncEach bool) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	zeros := make([]byte, zeroChunk)
	for off := st.Size(); off < size; {
		n := min(int64(len(zeros)), size-off)
		if _, err := f.WriteAt(zeros[:n], off); err != nil {
			return err
		}
		if syncEach {
			if err := fdatasync(f); err != nil {
				return err
			}
		}
		off += n
	}
	return f.Sync()
}

// syncDir fsyncs a directory, making file creations and removals in it
// durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("raftbolt: open directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("raftbolt: sync directory %s: %w", dir, err)
	}
	return nil
}
