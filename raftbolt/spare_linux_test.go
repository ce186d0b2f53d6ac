//go:build linux

package raftboltdb

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"unsafe"
)

// unwrittenExtents counts the extents of the file at path that the file
// system marks as allocated but never written (FS_IOC_FIEMAP). ok is false
// when the file system does not answer FIEMAP.
func unwrittenExtents(t *testing.T, path string) (n int, ok bool) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const (
		fsIocFiemap     = 0xC020660B
		fiemapFlagSync  = 1
		extentUnwritten = 0x800
		headerSize      = 32
		extentSize      = 56
		maxExtents      = 64
	)
	buf := make([]uint64, (headerSize+maxExtents*extentSize)/8)
	b := unsafe.Slice((*byte)(unsafe.Pointer(&buf[0])), len(buf)*8)
	ne := binary.NativeEndian
	ne.PutUint64(b[8:], ^uint64(0))      // fm_length: the whole file
	ne.PutUint32(b[16:], fiemapFlagSync) // write delayed allocations first
	ne.PutUint32(b[24:], maxExtents)     // fm_extent_count
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), fsIocFiemap, uintptr(unsafe.Pointer(&buf[0])))
	if errno != 0 {
		if errors.Is(errno, syscall.EOPNOTSUPP) || errors.Is(errno, syscall.ENOTTY) || errors.Is(errno, syscall.EINVAL) {
			return 0, false
		}
		t.Fatalf("FIEMAP %s: %v", path, errno)
	}
	mapped := int(ne.Uint32(b[20:]))
	for i := range min(mapped, maxExtents) {
		if ne.Uint32(b[headerSize+i*extentSize+40:])&extentUnwritten != 0 {
			n++
		}
	}
	return n, true
}

// TestJournalNewFilesAreWrittenThrough: the ring's new files hold no
// blocks that are allocated but unwritten, so the fdatasync of a record
// written into one flushes data only, not the file system's record of
// which blocks have been written. (The first file of an open is made
// preallocated, at once; the test looks at the next one.)
func TestJournalNewFilesAreWrittenThrough(t *testing.T) {
	dir := t.TempDir()
	probe := filepath.Join(dir, "probe")
	f, err := os.Create(probe)
	if err != nil {
		t.Fatal(err)
	}
	err = preallocate(f, 64<<10)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := unwrittenExtents(t, probe); !ok || n == 0 {
		t.Skip("this file system does not report preallocated blocks as unwritten")
	}

	s := openTemp(t, Options{Path: filepath.Join(dir, "raft.db"), Journal: true, JournalSize: 64 << 10, JournalFiles: 4})
	if n, _ := unwrittenExtents(t, activeFile(s).path); n == 0 {
		t.Fatal("the open's first file has no unwritten blocks: the test no longer tells the two kinds apart")
	}
	settle(s)
	next := uint64(1)
	jf := fillUntilRotation(t, s, &next)
	if n, _ := unwrittenExtents(t, jf.path); n != 0 {
		t.Fatalf("the ring's second file has %d unwritten extents, want none", n)
	}
}
