package raftboltdb

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"go.etcd.io/bbolt"
)

// MigrateToV2 copies the raft data of a raft-boltdb v1 database (written
// with github.com/boltdb/bolt) at source into a new database at destination
// and returns the new store open. bbolt reads boltdb's file format, so no
// boltdb code is involved; source is opened read-only and left unchanged.
// destination must not exist; on an error nothing is left there.
//
// A raftbolt store also opens a v1 file directly; migrating is needed only
// to stop sharing the file with a program that still uses boltdb.
func MigrateToV2(source, destination string) (*BoltStore, error) {
	if _, err := os.Stat(destination); err == nil {
		return nil, fmt.Errorf("raftbolt: migrate: destination %s exists", destination)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("raftbolt: migrate: destination %s: %w", destination, err)
	}
	src, err := bbolt.Open(source, dbFileMode, &bbolt.Options{ReadOnly: true, Timeout: time.Minute})
	if err != nil {
		return nil, fmt.Errorf("raftbolt: migrate: open source %s: %w", source, err)
	}
	defer src.Close()

	dst, err := New(Options{Path: destination})
	if err != nil {
		return nil, fmt.Errorf("raftbolt: migrate: %w", err)
	}
	if err := copyBuckets(src, dst, source); err != nil {
		dst.Close()
		os.Remove(destination)
		return nil, fmt.Errorf("raftbolt: migrate %s to %s: %w", source, destination, err)
	}
	return dst, nil
}

// copyBuckets copies raft's buckets from src into dst in one transaction.
// A source file bbolt cannot read gives an error wrapping ErrCorrupt.
func copyBuckets(src *bbolt.DB, dst *BoltStore, source string) (err error) {
	defer catchCorrupt(source, &err)
	return src.View(func(stx *bbolt.Tx) error {
		return dst.conn.Update(func(dtx *bbolt.Tx) error {
			for _, name := range [][]byte{dbConf, dbLogs} {
				sb, db := stx.Bucket(name), dtx.Bucket(name)
				if sb == nil {
					continue // a file raft never wrote to
				}
				if err := sb.ForEach(db.Put); err != nil {
					return fmt.Errorf("copy bucket %s: %w", name, err)
				}
			}
			return nil
		})
	})
}
