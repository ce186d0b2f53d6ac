//go:build linux

package main

import (
	"os"
	"syscall"
)

// preallocate allocates size bytes of f, so writes within them change no
// file metadata.
func preallocate(f *os.File, size int64) error {
	return syscall.Fallocate(int(f.Fd()), 0, 0, size)
}

// datasync flushes f's data, not its timestamps.
func datasync(f *os.File) error {
	return syscall.Fdatasync(int(f.Fd()))
}
