package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// nodeIDFile in the data directory names the node that owns it.
const nodeIDFile = "node-id"

// claimDataDir makes sure the data directory belongs to node id: it writes
// the id at first start and refuses a directory that names another node.
// Started with another -id, a node would call itself by a name the
// cluster does not know while holding the log and vote of the one it
// does, so the start is refused before anything is opened.
func claimDataDir(dir, id string) error {
	path := filepath.Join(dir, nodeIDFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		owner := strings.TrimSpace(string(b))
		if owner != id {
			return fmt.Errorf("the data directory %s belongs to node %q (see %s), not to -id %q: start it with -id %s, or give this node an empty -data directory",
				dir, owner, path, id, owner)
		}
		return nil
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("reading %s: %w", path, err)
	}
	// First start (or a directory from before the file existed): record
	// the owner durably, by a synced temporary file renamed into place.
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("recording the node's id in %s: %w", dir, err)
	}
	_, werr := f.WriteString(id + "\n")
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("recording the node's id in %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("recording the node's id in %s: %w", path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}
