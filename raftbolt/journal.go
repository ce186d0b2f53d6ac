package raftboltdb

// The journal (Options.Journal): two files beside the database, path +
// ".journal" and path + ".journal2", used in turn. Every StoreLogs is one
// record appended to the active file with one fdatasync, where a bbolt
// commit costs two fdatasyncs plus page writes. Entries live in memory and
// in their file until a checkpoint moves them into the database in one
// bbolt transaction. When the active file is full the writer switches to
// the other file and a background goroutine checkpoints the full one, so
// writers do not wait for the database unless both files fill before the
// checkpoint ends.
//
// Layout of a file, all integers big-endian:
//
//	header (32 bytes): magic "raftjnl\x01", generation u64, crc32c of the
//	                   first 16 bytes u32, zero padding
//	record:            payload length u32, crc32c(generation, payload) u32,
//	                   generation u64, payload
//	payload:           flags u8 (bit 0: a commit index follows),
//	                   [commit index u64], count u32,
//	                   count × (index u64, length u32, msgpack raft.Log)
//
// Files are preallocated and written in place, so an fdatasync has no file
// size to record. A file starts over by getting a header with a new
// generation: records of earlier generations that remain in it then fail
// their generation check and end its replay. The first record that does
// not check (a torn final write, a stale generation, zeros) ends a file; a
// write is acknowledged only after its fdatasync, so only an
// unacknowledged write can be torn. Generations grow across both files,
// and the file being written always has the higher one: replay reads the
// lower generation first.
//
// Crash safety of the steps: a checkpoint commits a file's entries to the
// database (fsynced) before that file's header changes, so a crash in
// between replays records whose entries are already there, writing the
// same values again, and then the newer file's records over them. A close
// checkpoints, removes the files and fsyncs the directory, so a removed
// journal cannot come back and replay over newer state.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/seed48a2b68f/raft"
	"github.com/seed48a2b68f/raft/internal/logcodec"
)

const (
	journalSuffix     = ".journal"
	journalSuffix2    = ".journal2"
	journalMagic      = "raftjnl\x01"
	journalHeaderSize = 32
	recordHeaderSize  = 16

	// defaultJournalSize is the preallocated size of each journal file when
	// Options.JournalSize is 0.
	defaultJournalSize = 3 << 20

	// maxRecordPayload bounds one record; a larger StoreLogs is refused
	// (raft never sends batches near this).
	maxRecordPayload = 1 << 30

	flagCommitIndex = 1

	// checkpointChunkBytes is about how many bytes of entries one
	// checkpoint transaction writes.
	checkpointChunkBytes = 256 << 10
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// errJournalBroken marks every write after a failed journal write, fdatasync
// or checkpoint: after a failed fdatasync the kernel may have dropped the
// unwritten pages, so nothing later could be trusted to be durable. The
// store must be closed and opened again (which replays what is durable).
var errJournalBroken = errors.New("raftbolt: journal failed earlier; reopen the store")

// pendingEntry locates one journaled entry's encoding in pendingSet.arena.
type pendingEntry struct {
	index    uint64
	off, end int
}

// pendingSet is the entries (and commit index) of one journal file that
// are not in the database yet.
type pendingSet struct {
	arena []byte
	ents  []pendingEntry
	// While dense, ents holds indexes first..last in order, each once, and
	// the position of index i is i-first; the first entry that breaks
	// this (a gap, or an index written again) builds latest, which maps
	// every index to the position of its newest value from then on.
	dense     bool
	latest    map[uint64]int
	first     uint64 // lowest and highest index, 0 when empty
	last      uint64
	commit    uint64
	hasCommit bool
}

func newPendingSet() *pendingSet { return &pendingSet{latest: map[uint64]int{}, dense: true} }

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

// newest reports whether position pos holds the newest value of its index.
func (p *pendingSet) newest(pos int) bool {
	if p.dense {
		return true
	}
	return p.latest[p.ents[pos].index] == pos
}

func (p *pendingSet) empty() bool { return len(p.ents) == 0 && !p.hasCommit }

// add records the entries of one record's payload, checked by
// parseRecord or built by encodeRecord.
func (p *pendingSet) add(payload []byte) {
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
		p.putEncoded(idx, b[:n])
		b = b[n:]
	}
}

// reset empties the set, keeping its memory for the next entries.
func (p *pendingSet) reset() {
	if cap(p.arena) > 64<<20 {
		p.arena = nil
	}
	p.arena, p.ents = p.arena[:0], p.ents[:0]
	clear(p.latest)
	p.dense = true
	p.first, p.last = 0, 0
	p.commit, p.hasCommit = 0, false
}

// jfile is one of the two journal files.
type jfile struct {
	path string
	f    *os.File // nil when read-only or closed
	gen  uint64
	off  int64 // where the next record goes
}

// journal is the state of Options.Journal. The files, the write buffer and
// the checkpoint handle belong to whoever holds wmu. The pending sets are
// swapped and changed under mu (exclusive) and read under mu (shared); the
// background checkpoint reads the sealed set without mu, since nothing
// changes it until the checkpoint ends.
type journal struct {
	wmu    sync.Mutex
	files  [2]*jfile
	cur    int // the file being written
	size   int64
	fill   int64 // where the active file counts as full: see nextFill
	noSync bool
	buf    []byte
	broken error

	// ckptDone is closed when the background checkpoint started at the
	// last switch ends, with its error in ckptErr; nil when none runs.
	ckptDone chan struct{}
	ckptErr  error

	mu     sync.RWMutex
	active *pendingSet // entries of files[cur]
	sealed *pendingSet // entries of the other file, being checkpointed; nil when none
	spare  *pendingSet
}

func newJournal(dbPath string, size int64, noSync bool) *journal {
	if size <= 0 {
		size = defaultJournalSize
	}
	return &journal{
		files:  [2]*jfile{{path: dbPath + journalSuffix}, {path: dbPath + journalSuffix2}},
		size:   size,
		noSync: noSync,
		active: newPendingSet(),
		spare:  newPendingSet(),
	}
}

// get returns a copy of the pending encoding of idx, or nil. The active
// set is newer than the sealed one.
func (j *journal) get(idx uint64) []byte {
	j.mu.RLock()
	defer j.mu.RUnlock()
	for _, p := range []*pendingSet{j.active, j.sealed} {
		if p == nil {
			continue
		}
		if pos, ok := p.lookup(idx); ok {
			e := p.ents[pos]
			return append(make([]byte, 0, e.end-e.off), p.arena[e.off:e.end]...)
		}
	}
	return nil
}

// bounds returns the lowest and highest pending index (0, 0 when none).
func (j *journal) bounds() (uint64, uint64) {
	j.mu.RLock()
	defer j.mu.RUnlock()
	first, last := j.active.first, j.active.last
	if s := j.sealed; s != nil && s.first != 0 {
		if first == 0 || s.first < first {
			first = s.first
		}
		last = max(last, s.last)
	}
	return first, last
}

// pendingCommit returns the newest journaled commit index.
func (j *journal) pendingCommit() (uint64, bool) {
	j.mu.RLock()
	defer j.mu.RUnlock()
	if j.active.hasCommit {
		return j.active.commit, true
	}
	if j.sealed != nil && j.sealed.hasCommit {
		return j.sealed.commit, true
	}
	return 0, false
}

// addActive makes one record's entries pending in the active set.
func (j *journal) addActive(payload []byte) {
	j.mu.Lock()
	j.active.add(payload)
	j.mu.Unlock()
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

// loadFile reads one journal file, if it exists, into p. It reports
// whether the file was there and its generation. A header that does not
// check means the file holds nothing: a header is rewritten only after a
// checkpoint, so its records were already in the database.
func loadFile(path string, into func(gen uint64) *pendingSet) (found bool, gen uint64, end int64, err error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, 0, 0, nil
	}
	if err != nil {
		return false, 0, 0, fmt.Errorf("raftbolt: read journal: %w", err)
	}
	if len(data) < journalHeaderSize || string(data[:8]) != journalMagic ||
		crc32.Checksum(data[:16], crcTable) != binary.BigEndian.Uint32(data[16:]) {
		return true, 0, journalHeaderSize, nil
	}
	gen = binary.BigEndian.Uint64(data[8:])
	var p *pendingSet
	off := journalHeaderSize
	for {
		payload, n, ok, err := parseRecord(data[off:], gen)
		if err != nil {
			return true, gen, 0, fmt.Errorf("raftbolt: journal %s: record at offset %d: %w", path, off, err)
		}
		if !ok {
			break
		}
		if p == nil {
			p = into(gen)
		}
		p.add(payload)
		off += n
	}
	return true, gen, int64(off), nil
}

// load reads both journal files into the active set, the older generation
// first so that the newer one's entries win. It reports whether any file
// was there.
func (j *journal) load() (bool, error) {
	type loaded struct {
		gen uint64
		set *pendingSet
	}
	var sets []loaded
	anyFound := false
	for _, jf := range j.files {
		found, gen, end, err := loadFile(jf.path, func(gen uint64) *pendingSet {
			sets = append(sets, loaded{gen: gen, set: newPendingSet()})
			return sets[len(sets)-1].set
		})
		if err != nil {
			return false, err
		}
		anyFound = anyFound || found
		jf.gen, jf.off = gen, max(end, journalHeaderSize)
	}
	if len(sets) == 2 && sets[1].gen < sets[0].gen {
		sets[0], sets[1] = sets[1], sets[0]
	}
	if len(sets) == 2 && sets[0].gen == sets[1].gen {
		return false, fmt.Errorf("raftbolt: journal files %s and %s both hold records of generation %d", j.files[0].path, j.files[1].path, sets[0].gen)
	}
	for _, l := range sets {
		// Entries in file order: a later value of an index replaces an
		// earlier one.
		for _, e := range l.set.ents {
			j.active.putEncoded(e.index, l.set.arena[e.off:e.end])
		}
		if l.set.hasCommit {
			j.active.commit, j.active.hasCommit = l.set.commit, true
		}
	}
	return anyFound, nil
}

// putEncoded adds one encoded entry to the set.
func (p *pendingSet) putEncoded(idx uint64, enc []byte) {
	if p.dense && len(p.ents) > 0 && idx != p.last+1 {
		p.dense = false
		for i, e := range p.ents {
			p.latest[e.index] = i
		}
	}
	off := len(p.arena)
	p.arena = append(p.arena, enc...)
	if !p.dense {
		p.latest[idx] = len(p.ents)
	}
	p.ents = append(p.ents, pendingEntry{index: idx, off: off, end: len(p.arena)})
	if p.first == 0 || idx < p.first {
		p.first = idx
	}
	if idx > p.last {
		p.last = idx
	}
}

// open opens (creating and preallocating if needed) a journal file for
// writing.
func (j *journal) open(jf *jfile) error {
	f, err := os.OpenFile(jf.path, os.O_RDWR|os.O_CREATE, dbFileMode)
	if err != nil {
		return fmt.Errorf("raftbolt: open journal: %w", err)
	}
	if st, err := f.Stat(); err != nil || st.Size() < j.size {
		if err := preallocate(f, j.size); err != nil {
			f.Close()
			return fmt.Errorf("raftbolt: preallocate journal %s: %w", jf.path, err)
		}
	}
	jf.f = f
	return nil
}

// writeHeader gives jf generation gen, written and synced; the file is
// then empty.
func (j *journal) writeHeader(jf *jfile, gen uint64) error {
	if _, err := jf.f.WriteAt(encodeHeader(gen), 0); err != nil {
		return fmt.Errorf("raftbolt: write journal header %s: %w", jf.path, err)
	}
	if err := j.sync(jf); err != nil {
		return fmt.Errorf("raftbolt: sync journal header %s: %w", jf.path, err)
	}
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

// maxGen is the highest generation of the two files.
func (j *journal) maxGen() uint64 { return max(j.files[0].gen, j.files[1].gen) }

// append writes one encoded record at the end of the active file and syncs
// it. The caller holds wmu and has made room.
func (j *journal) append(rec []byte) error {
	jf := j.files[j.cur]
	if _, err := jf.f.WriteAt(rec, jf.off); err != nil {
		j.broken = fmt.Errorf("raftbolt: write journal %s: %w", jf.path, err)
		return j.broken
	}
	if err := j.sync(jf); err != nil {
		j.broken = fmt.Errorf("raftbolt: sync journal %s: %w", jf.path, err)
		return j.broken
	}
	jf.off += int64(len(rec))
	return nil
}

// waitCheckpoint waits for a background checkpoint to end. The caller
// holds wmu.
func (j *journal) waitCheckpoint() error {
	if j.ckptDone != nil {
		<-j.ckptDone
		j.ckptDone = nil
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

// switchFiles seals the active file and makes the other one active, then
// checkpoints the sealed file's entries in the background. It first waits
// for the previous background checkpoint. The caller holds wmu.
func (b *BoltStore) switchFiles() error {
	j := b.j
	if err := j.waitCheckpoint(); err != nil {
		return err
	}
	from, to := j.files[j.cur], j.files[1-j.cur]
	if to.gen <= from.gen || to.off != journalHeaderSize {
		// Records in the next file must replay after the sealed ones.
		if err := j.writeHeader(to, j.maxGen()+1); err != nil {
			j.broken = err
			return err
		}
	}
	j.mu.Lock()
	sealed := j.active
	j.sealed, j.active, j.spare = sealed, j.spare, nil
	j.mu.Unlock()
	j.cur = 1 - j.cur
	j.fill = j.nextFill()
	nextGen := to.gen + 1
	done := make(chan struct{})
	j.ckptDone = done
	go func() {
		err := b.checkpointToDB(sealed)
		if err == nil {
			err = j.writeHeader(from, nextGen)
		}
		if err == nil {
			j.mu.Lock()
			j.sealed = nil
			sealed.reset()
			j.spare = sealed
			j.mu.Unlock()
		}
		j.ckptErr = err
		close(done)
	}()
	return nil
}

// checkpointAll moves every pending entry into the database and empties
// the active file, waiting for a background checkpoint first. The caller
// holds wmu.
func (b *BoltStore) checkpointAll() error {
	j := b.j
	if err := j.waitCheckpoint(); err != nil {
		return err
	}
	if j.files[j.cur].f == nil {
		return nil
	}
	if err := b.checkpointToDB(j.active); err != nil {
		j.broken = err
		return err
	}
	if err := j.writeHeader(j.files[j.cur], j.maxGen()+1); err != nil {
		j.broken = err
		return err
	}
	j.mu.Lock()
	j.active.reset()
	j.mu.Unlock()
	return nil
}

// checkpointToDB writes a pending set's entries and commit index to the
// database, in transactions of about checkpointChunkBytes of entries each
// (the commit index with the last), so that no single commit writes and
// syncs a burst of pages long enough to hold up other writers to the same
// disk. Nothing changes the set meanwhile. Until the set's journal file
// starts over, a crash between two transactions replays the whole set.
func (b *BoltStore) checkpointToDB(p *pendingSet) error {
	if p.empty() {
		return nil
	}
	keys := make([]byte, 0, 8*len(p.ents))
	pos := 0
	for {
		tx, bk, err := b.beginLogs()
		if err != nil {
			return err
		}
		// Entries come in index order; full pages suit an append-only key
		// space.
		bk.FillPercent = 0.9
		bytes := 0
		for ; pos < len(p.ents) && bytes < checkpointChunkBytes; pos++ {
			e := p.ents[pos]
			if !p.newest(pos) {
				continue // replaced by a later record
			}
			at := len(keys)
			keys = binary.BigEndian.AppendUint64(keys, e.index)
			if err := bk.Put(keys[at:at+8:at+8], p.arena[e.off:e.end]); err != nil {
				tx.Rollback()
				return fmt.Errorf("raftbolt: %s: checkpoint entry %d: %w", b.path, e.index, err)
			}
			bytes += e.end - e.off + 8
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

// openJournal replays the journal files left beside the database and, in
// journal mode, opens them for writing. Without journal mode a replayed
// journal is moved into the database and its files removed. A read-only
// store keeps replayed entries in memory and writes nothing.
func (b *BoltStore) openJournal(o Options) error {
	j := newJournal(o.Path, o.JournalSize, o.NoSync)
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
	if err := b.checkpointToDB(j.active); err != nil {
		return err
	}
	j.active.reset()
	if !o.Journal {
		b.j = nil
		return j.remove()
	}
	// Both files empty, the second with the higher generation so that the
	// first switch needs no header write.
	base := j.maxGen()
	for i, jf := range j.files {
		if err := j.open(jf); err != nil {
			j.closeFiles()
			return err
		}
		if err := j.writeHeader(jf, base+1+uint64(i)); err != nil {
			j.closeFiles()
			return err
		}
	}
	j.cur = 0
	j.fill = j.nextFill()
	if err := syncDir(filepath.Dir(o.Path)); err != nil {
		j.closeFiles()
		return err
	}
	return nil
}

func (j *journal) closeFiles() {
	for _, jf := range j.files {
		if jf.f != nil {
			jf.f.Close()
			jf.f = nil
		}
	}
}

// remove closes the journal files, deletes them and syncs the directory so
// the deletion is durable.
func (j *journal) remove() error {
	j.closeFiles()
	for _, jf := range j.files {
		if err := os.Remove(jf.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("raftbolt: remove journal: %w", err)
		}
	}
	return syncDir(filepath.Dir(j.files[0].path))
}

// closeJournal checkpoints everything and removes the journal, leaving a
// database that raft-boltdb reads completely. After an earlier failure the
// files stay for the next open to replay, and the error says so.
func (b *BoltStore) closeJournal() error {
	j := b.j
	j.wmu.Lock()
	defer j.wmu.Unlock()
	if j.files[j.cur].f == nil {
		return nil
	}
	if err := j.waitCheckpoint(); err != nil {
		j.closeFiles()
		return fmt.Errorf("raftbolt: %s: the journal failed earlier and stays for the next open to replay: %w", b.path, err)
	}
	if err := b.checkpointToDB(j.active); err != nil {
		j.closeFiles()
		return err
	}
	return j.remove()
}

// storeJournal is StoreLogs in journal mode.
func (b *BoltStore) storeJournal(logs []*raft.Log, commit uint64, hasCommit bool) error {
	j := b.j
	j.wmu.Lock()
	defer j.wmu.Unlock()
	j.pollCheckpoint()
	if j.broken != nil {
		return errJournalBroken
	}
	jf := j.files[j.cur]
	if jf.f == nil {
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
	rec, err := j.encodeRecord(jf.gen, logs, commit, hasCommit, b.newTime)
	if err != nil {
		return err
	}
	if jf.off > journalHeaderSize && jf.off+int64(len(rec)) > j.fill {
		if err := b.switchFiles(); err != nil {
			return err
		}
		jf = j.files[j.cur]
		// Another file, another generation: the same record restamped.
		stampRecord(rec, jf.gen)
	}
	if err := j.append(rec); err != nil {
		return err
	}
	j.addActive(rec[recordHeaderSize:])
	if len(j.buf) > 64<<20 {
		j.buf = nil
	}
	return nil
}

// deleteJournal is DeleteRange in journal mode: a range that reaches
// pending entries first moves them all into the database.
func (b *BoltStore) deleteJournal(min, max uint64) error {
	j := b.j
	j.wmu.Lock()
	defer j.wmu.Unlock()
	j.pollCheckpoint()
	if j.broken != nil {
		return errJournalBroken
	}
	if first, last := j.bounds(); first != 0 && min <= last && max >= first {
		if err := b.checkpointAll(); err != nil {
			return err
		}
	}
	return b.deleteFromDB(min, max)
}

// syncJournal fsyncs the active journal file (for Sync with NoSync).
func (b *BoltStore) syncJournal() error {
	j := b.j
	j.wmu.Lock()
	defer j.wmu.Unlock()
	if jf := j.files[j.cur]; jf.f != nil {
		if err := fdatasync(jf.f); err != nil {
			return fmt.Errorf("raftbolt: sync journal: %w", err)
		}
	}
	return nil
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
