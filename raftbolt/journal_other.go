//go:build !linux

package raftboltdb

import "os"

// preallocate makes sure the file has size bytes allocated, so writes
// inside them change no file metadata.
func preallocate(f *os.File, size int64) error {
	return writeZeros(f, size, false)
}

// fdatasync flushes the file to stable storage (File.Sync, which is
// F_FULLFSYNC on darwin).
func fdatasync(f *os.File) error {
	return f.Sync()
}
