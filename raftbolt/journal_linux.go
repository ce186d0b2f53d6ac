//go:build linux

package raftboltdb

import (
	"errors"
	"os"
	"syscall"
)

// preallocate makes sure the file has size bytes allocated, so writes
// inside them change no file metadata.
func preallocate(f *os.File, size int64) error {
	err := syscall.Fallocate(int(f.Fd()), 0, 0, size)
	if errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.ENOSYS) {
		return writeZeros(f, size, false)
	}
	return err
}

// fdatasync flushes the file's data (and only the metadata needed to read
// it back) to stable storage.
func fdatasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}
