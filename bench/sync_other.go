//go:build !linux

package main

import "os"

// preallocate writes size bytes of zeros into f and syncs them.
func preallocate(f *os.File, size int64) error {
	if _, err := f.WriteAt(make([]byte, size), 0); err != nil {
		return err
	}
	return f.Sync()
}

// datasync syncs f (no data-only sync is assumed here).
func datasync(f *os.File) error {
	return f.Sync()
}
