package host

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/wcphall/hall/internal/ledger"
)

// prepareStateDir creates the state directory with mode 0700 or tightens
// an existing one, with the database, key and token files directly in it or
// in keys/, to 0700 (directories) and 0600 (files); a Hall whose state it
// cannot tighten refuses to start and says why, and so does a Hall on a
// platform that does not enforce those modes (platformGap). It creates an empty ledger
// database file with mode 0600 when the Hall will open its own ledger, so
// SQLite (which gives its WAL and shared-memory files the database's mode)
// never creates it 0644.
//
// Why: a pre-existing .hall with mode 0755 stayed 0755 and hall.db was
// created 0644: any local user could read every receipt and decision.
func prepareStateDir(opts Options) error {
	if err := checkPlatform(); err != nil {
		return err
	}
	home := opts.Home
	if err := os.MkdirAll(home, 0o700); err != nil {
		return fmt.Errorf("state directory %s: %w", home, err)
	}
	if err := tighten(home, 0o700); err != nil {
		return err
	}
	for _, sub := range []string{"keys", "artifacts", "cache"} {
		if err := tighten(filepath.Join(home, sub), 0o700); err != nil {
			return err
		}
	}
	for _, dir := range []string{home, filepath.Join(home, "keys")} {
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if e.Type().IsRegular() {
				if err := tighten(filepath.Join(dir, e.Name()), 0o600); err != nil {
					return err
				}
			}
		}
	}
	if opts.Stores == nil || opts.Stores.Evidence == nil {
		f, err := os.OpenFile(filepath.Join(home, ledger.DBFile), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			return f.Close()
		}
		if !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("state directory %s: %w", home, err)
		}
	}
	return nil
}

// tighten removes every permission bit of path outside want (a missing
// path is fine).
func tighten(path string, want fs.FileMode) error {
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	if st.Mode().Perm()&^want == 0 {
		return nil
	}
	if err := os.Chmod(path, st.Mode().Perm()&want); err != nil {
		return fmt.Errorf("%s has mode %v and the Hall cannot tighten it to %v: %w; fix it (chmod) or choose another state directory (--home)", path, st.Mode().Perm(), want, err)
	}
	return nil
}
