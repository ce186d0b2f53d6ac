package raftboltdb

// The journal (Options.Journal): a file beside the database, path +
// ".journal", that takes every StoreLogs as one appended record and one
// fdatasync, where a bbolt commit costs two fdatasyncs plus page writes.
// Entries live in memory and in the journal until a checkpoint moves them
// into the database in one bbolt transaction; then the journal starts over.
//
// Layout, all integers big-endian:
//
//	header (32 bytes): magic "raftjnl\x01", generation u64, crc32c of the
//	                   first 16 bytes u32, zero padding
//	record:            payload length u32, crc32c(generation, payload) u32,
//	                   generation u64, payload
//	payload:           flags u8 (bit 0: a commit index follows),
//	                   [commit index u64], count u32,
//	                   count × (index u64, length u32, msgpack raft.Log)
//
// The file is preallocated and written in place, so an fdatasync has no
// file size to record. Starting over writes a header with the next
// generation: the records of earlier generations that remain in the file
// then fail their generation check and end the replay. The first record
// that does not check (a torn final write, a stale generation, zeros) is
// the end of the journal; a write is acknowledged only after its
// fdatasync, so only an unacknowledged write can be torn.
//
// Crash safety of the steps: a checkpoint commits the entries to the
// database (fsynced) before the header changes, so a crash in between
// replays records whose entries are already there, which writes the same
// values again. A close checkpoints, removes the journal and fsyncs the
// directory, so a removed journal cannot come back and replay over newer
// state.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
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

	// defaultJournalSize is the journal's preallocated size when
	// Options.JournalSize is 0. A checkpoint moves the entries into the
	// database when the next record would not fit.
	defaultJournalSize = 4 << 20

	// maxRecordPayload bounds one record; a larger StoreLogs is refused
	// (raft never sends batches near this).
	maxRecordPayload = 1 << 30

	flagCommitIndex = 1
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// errJournalBroken marks every write after a failed journal write or
// fdatasync: after a failed fdatasync the kernel may have dropped the
// unwritten pages, so nothing later could be trusted to be durable. The
// store must be closed and opened again (which replays what is durable).
var errJournalBroken = errors.New("raftbolt: journal failed earlier; reopen the store")

// pendingEntry locates one journaled entry's encoding in journal.arena.
type pendingEntry struct {
	index    uint64
	off, end int
}

// journal is the state of Options.Journal. The file fields are owned by
// whoever holds wmu; the pending entries are written under wmu and mu
// (exclusive) and read under mu (shared).
type journal struct {
	wmu    sync.Mutex
	path   string
	f      *os.File // nil when the store is read-only or closed
	noSync bool
	gen    uint64
	off    int64 // where the next record goes
	size   int64 // preallocated bytes
	buf    []byte
	keys   []byte
	broken error

	mu        sync.RWMutex
	arena     []byte
	ents      []pendingEntry
	latest    map[uint64]int // index -> position in ents of its newest value
	first     uint64         // lowest and highest pending index, 0 when none
	last      uint64
	commit    uint64
	hasCommit bool
}

func newJournal(path string, size int64, noSync bool) *journal {
	if size <= 0 {
		size = defaultJournalSize
	}
	return &journal{path: path, size: size, noSync: noSync, latest: map[uint64]int{}}
}

// get returns a copy of the pending encoding of idx, or nil.
func (j *journal) get(idx uint64) []byte {
	j.mu.RLock()
	defer j.mu.RUnlock()
	pos, ok := j.latest[idx]
	if !ok {
		return nil
	}
	e := j.ents[pos]
	return append(make([]byte, 0, e.end-e.off), j.arena[e.off:e.end]...)
}

// bounds returns the lowest and highest pending index (0, 0 when none).
func (j *journal) bounds() (uint64, uint64) {
	j.mu.RLock()
	defer j.mu.RUnlock()
	return j.first, j.last
}

// pendingCommit returns the newest journaled commit index.
func (j *journal) pendingCommit() (uint64, bool) {
	j.mu.RLock()
	defer j.mu.RUnlock()
	return j.commit, j.hasCommit
}

// addRecord makes the entries of one record's payload pending. The payload
// has been checked by parseRecord or built by encodeRecord.
func (j *journal) addRecord(payload []byte) {
	j.mu.Lock()
	defer j.mu.Unlock()
	p := payload
	flags := p[0]
	p = p[1:]
	if flags&flagCommitIndex != 0 {
		j.commit, j.hasCommit = binary.BigEndian.Uint64(p), true
		p = p[8:]
	}
	count := binary.BigEndian.Uint32(p)
	p = p[4:]
	for range count {
		idx := binary.BigEndian.Uint64(p)
		n := int(binary.BigEndian.Uint32(p[8:]))
		p = p[12:]
		off := len(j.arena)
		j.arena = append(j.arena, p[:n]...)
		p = p[n:]
		j.latest[idx] = len(j.ents)
		j.ents = append(j.ents, pendingEntry{index: idx, off: off, end: len(j.arena)})
		if j.first == 0 || idx < j.first {
			j.first = idx
		}
		if idx > j.last {
			j.last = idx
		}
	}
}

// clearPending forgets the pending entries (after they reached the
// database), keeping the memory for the next ones.
func (j *journal) clearPending() {
	j.mu.Lock()
	defer j.mu.Unlock()
	if cap(j.arena) > 64<<20 {
		j.arena = nil
	}
	j.arena, j.ents = j.arena[:0], j.ents[:0]
	clear(j.latest)
	j.first, j.last = 0, 0
	j.commit, j.hasCommit = 0, false
}

// encodeRecord builds the record of logs (and a staged commit index) in
// j.buf for the current generation.
func (j *journal) encodeRecord(logs []*raft.Log, commit uint64, hasCommit, newTime bool) ([]byte, error) {
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
		return nil, fmt.Errorf("raftbolt: %s: a batch of %d entries encodes to %d bytes, more than %d", j.path, len(logs), len(payload), maxRecordPayload)
	}
	binary.BigEndian.PutUint32(buf[0:], uint32(len(payload)))
	binary.BigEndian.PutUint32(buf[4:], recordCRC(j.gen, payload))
	binary.BigEndian.PutUint64(buf[8:], j.gen)
	return buf, nil
}

func recordCRC(gen uint64, payload []byte) uint32 {
	var g [8]byte
	binary.BigEndian.PutUint64(g[:], gen)
	return crc32.Update(crc32.Update(0, crcTable, g[:]), crcTable, payload)
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
	if recordCRC(gen, payload) != binary.BigEndian.Uint32(b[4:]) {
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

// load reads the journal file, if there is one, and makes its records
// pending. It reports whether a file was there. A header that does not
// check means the journal holds nothing: a header is rewritten only after
// a checkpoint, so its records were already in the database.
func (j *journal) load() (bool, error) {
	data, err := os.ReadFile(j.path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("raftbolt: read journal: %w", err)
	}
	if len(data) < journalHeaderSize || string(data[:8]) != journalMagic ||
		crc32.Checksum(data[:16], crcTable) != binary.BigEndian.Uint32(data[16:]) {
		j.gen, j.off = 0, journalHeaderSize
		return true, nil
	}
	j.gen = binary.BigEndian.Uint64(data[8:])
	off := journalHeaderSize
	for {
		payload, n, ok, err := parseRecord(data[off:], j.gen)
		if err != nil {
			return true, fmt.Errorf("raftbolt: journal %s: record at offset %d: %w", j.path, off, err)
		}
		if !ok {
			break
		}
		j.addRecord(payload)
		off += n
	}
	j.off = int64(off)
	return true, nil
}

// create makes a fresh, preallocated journal file with generation gen
// (replacing any file) and opens it for writing.
func (j *journal) create(gen uint64) error {
	f, err := os.OpenFile(j.path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, dbFileMode)
	if err != nil {
		return fmt.Errorf("raftbolt: create journal: %w", err)
	}
	if err := preallocate(f, j.size); err != nil {
		f.Close()
		return fmt.Errorf("raftbolt: preallocate journal %s: %w", j.path, err)
	}
	j.f, j.gen = f, gen
	if err := j.writeHeader(); err != nil {
		f.Close()
		j.f = nil
		return err
	}
	if err := syncDir(filepath.Dir(j.path)); err != nil {
		f.Close()
		j.f = nil
		return err
	}
	return nil
}

// writeHeader writes and syncs the header of j.gen; the journal is then
// empty.
func (j *journal) writeHeader() error {
	if _, err := j.f.WriteAt(encodeHeader(j.gen), 0); err != nil {
		return fmt.Errorf("raftbolt: write journal header: %w", err)
	}
	if err := j.sync(); err != nil {
		return fmt.Errorf("raftbolt: sync journal header: %w", err)
	}
	j.off = journalHeaderSize
	return nil
}

func (j *journal) sync() error {
	if j.noSync {
		return nil
	}
	return fdatasync(j.f)
}

// append writes one encoded record at the end of the journal and syncs it.
// The caller holds wmu and has made room.
func (j *journal) append(rec []byte) error {
	if _, err := j.f.WriteAt(rec, j.off); err != nil {
		j.broken = fmt.Errorf("raftbolt: write journal %s: %w", j.path, err)
		return j.broken
	}
	if err := j.sync(); err != nil {
		j.broken = fmt.Errorf("raftbolt: sync journal %s: %w", j.path, err)
		return j.broken
	}
	j.off += int64(len(rec))
	return nil
}

// checkpoint moves the pending entries and commit index into the database
// in one transaction, then starts the journal over with the next
// generation. The caller holds wmu. With write false (a read-only store)
// it does nothing.
func (b *BoltStore) checkpoint() error {
	j := b.j
	if j.f == nil {
		return nil
	}
	if err := b.checkpointToDB(); err != nil {
		j.broken = err
		return err
	}
	j.gen++
	if err := j.writeHeader(); err != nil {
		j.broken = err
		return err
	}
	j.clearPending()
	return nil
}

// checkpointToDB writes the pending entries and commit index to the
// database in one transaction. The caller holds wmu, so nothing else
// changes the pending state meanwhile.
func (b *BoltStore) checkpointToDB() error {
	j := b.j
	if len(j.ents) == 0 && !j.hasCommit {
		return nil
	}
	tx, bk, err := b.beginLogs()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if len(j.ents) > 0 {
		// Entries are appended in index order; full pages are what an
		// append-only key space wants.
		bk.FillPercent = 0.9
	}
	keys := j.keys[:0]
	for pos, e := range j.ents {
		if j.latest[e.index] != pos {
			continue // replaced by a later record
		}
		keys = binary.BigEndian.AppendUint64(keys, e.index)
	}
	j.keys = keys
	k := 0
	for pos, e := range j.ents {
		if j.latest[e.index] != pos {
			continue
		}
		if err := bk.Put(keys[k*8:k*8+8], j.arena[e.off:e.end]); err != nil {
			return fmt.Errorf("raftbolt: %s: checkpoint entry %d: %w", b.path, e.index, err)
		}
		k++
	}
	if j.hasCommit {
		var v [8]byte
		binary.BigEndian.PutUint64(v[:], j.commit)
		if err := tx.Bucket(dbConf).Put(keyCommitIndex, v[:]); err != nil {
			return fmt.Errorf("raftbolt: %s: checkpoint commit index: %w", b.path, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("raftbolt: %s: checkpoint commit: %w", b.path, err)
	}
	return nil
}

// openJournal replays a journal left beside the database and, in journal
// mode, creates the journal for writing. Without journal mode a replayed
// journal is moved into the database and removed. A read-only store keeps
// replayed entries in memory and writes nothing.
func (b *BoltStore) openJournal(o Options) error {
	j := newJournal(o.Path+journalSuffix, o.JournalSize, o.NoSync)
	found, err := j.load()
	if err != nil {
		return err
	}
	if !found && !o.Journal {
		return nil
	}
	b.j = j
	if o.readOnly() {
		return nil
	}
	if found {
		// Move what was replayed into the database through the normal
		// checkpoint, with a handle on the existing file.
		f, err := os.OpenFile(j.path, os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("raftbolt: open journal: %w", err)
		}
		j.f = f
		if err := b.checkpoint(); err != nil {
			f.Close()
			j.f = nil
			return err
		}
		if !o.Journal {
			b.j = nil
			return j.remove()
		}
		if st, err := f.Stat(); err == nil && st.Size() < j.size {
			if err := preallocate(f, j.size); err != nil {
				return fmt.Errorf("raftbolt: preallocate journal %s: %w", j.path, err)
			}
		}
		return nil
	}
	return j.create(1)
}

// remove closes the journal file, deletes it and syncs the directory so the
// deletion is durable.
func (j *journal) remove() error {
	if j.f != nil {
		j.f.Close()
		j.f = nil
	}
	if err := os.Remove(j.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("raftbolt: remove journal: %w", err)
	}
	return syncDir(filepath.Dir(j.path))
}

// closeJournal checkpoints everything and removes the journal, leaving a
// database that raft-boltdb reads completely. After an earlier write
// failure the journal stays for the next open to replay.
func (b *BoltStore) closeJournal() error {
	j := b.j
	j.wmu.Lock()
	defer j.wmu.Unlock()
	if j.f == nil {
		return nil
	}
	if j.broken != nil {
		err := j.f.Close()
		j.f = nil
		return err
	}
	if err := b.checkpointToDB(); err != nil {
		j.f.Close()
		j.f = nil
		return err
	}
	return j.remove()
}

// storeJournal is StoreLogs in journal mode.
func (b *BoltStore) storeJournal(logs []*raft.Log, commit uint64, hasCommit bool) error {
	j := b.j
	j.wmu.Lock()
	defer j.wmu.Unlock()
	if j.broken != nil {
		return errJournalBroken
	}
	if j.f == nil {
		if b.readOnly {
			return fmt.Errorf("raftbolt: %s: store is read-only", b.path)
		}
		return errClosed
	}
	for _, l := range logs {
		if l.Index == 0 {
			// Index 0 means "empty" to FirstIndex and LastIndex, and raft
			// never writes it.
			return fmt.Errorf("raftbolt: %s: entry with index 0", b.path)
		}
	}
	rec, err := j.encodeRecord(logs, commit, hasCommit, b.newTime)
	if err != nil {
		return err
	}
	if j.off > journalHeaderSize && j.off+int64(len(rec)) > j.size {
		if err := b.checkpoint(); err != nil {
			return err
		}
		// The generation changed: encode again.
		if rec, err = j.encodeRecord(logs, commit, hasCommit, b.newTime); err != nil {
			return err
		}
	}
	if err := j.append(rec); err != nil {
		return err
	}
	j.addRecord(rec[recordHeaderSize:])
	if len(j.buf) > 64<<20 {
		j.buf = nil
	}
	return nil
}

// deleteJournal is DeleteRange in journal mode: a range that reaches
// pending entries first moves them into the database.
func (b *BoltStore) deleteJournal(min, max uint64) error {
	j := b.j
	j.wmu.Lock()
	defer j.wmu.Unlock()
	if j.broken != nil {
		return errJournalBroken
	}
	if first, last := j.bounds(); first != 0 && min <= last && max >= first {
		if err := b.checkpoint(); err != nil {
			return err
		}
	}
	return b.deleteFromDB(min, max)
}

// writeZeros extends the file to size bytes of written zeros, for file
// systems without fallocate.
func writeZeros(f *os.File, size int64) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	zeros := make([]byte, 1<<20)
	for off := st.Size(); off < size; {
		n := min(int64(len(zeros)), size-off)
		if _, err := f.WriteAt(zeros[:n], off); err != nil {
			return err
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
