package ledger

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

// settledGoroutines waits, bounded, until the process runs at most want
// goroutines (goroutines a closed resource stops exit asynchronously) and
// returns the last count seen.
func settledGoroutines(want int) int {
	deadline := time.Now().Add(10 * time.Second)
	n := runtime.NumGoroutine()
	for n > want && time.Now().Before(deadline) {
		runtime.Gosched()
		time.Sleep(time.Millisecond) // polling a count, not synchronising
		n = runtime.NumGoroutine()
	}
	return n
}

// Every error return of Open leaves nothing running: no commit goroutine,
// no database handle (issue 21: 20 failed opens left 20 goroutines).
func TestOpenErrorPathsLeakNothing(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T) (dir string, opts []Option)
	}{
		{"state directory is a file", func(t *testing.T) (string, []Option) {
			p := filepath.Join(t.TempDir(), "home")
			if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
			return p, nil
		}},
		{"database is not SQLite", func(t *testing.T) (string, []Option) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, DBFile), []byte("this is not a database, only text long enough to be read as a header"), 0o600); err != nil {
				t.Fatal(err)
			}
			return dir, nil
		}},
		{"database is a directory", func(t *testing.T) (string, []Option) {
			dir := t.TempDir()
			if err := os.Mkdir(filepath.Join(dir, DBFile), 0o700); err != nil {
				t.Fatal(err)
			}
			return dir, nil
		}},
		{"schema newer than this Hall", func(t *testing.T) (string, []Option) {
			dir := t.TempDir()
			db, err := sql.Open("sqlite", filepath.Join(dir, DBFile))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.ExecContext(context.Background(), "PRAGMA user_version = 9999"); err != nil {
				t.Fatal(err)
			}
			return dir, nil
		}},
		{"key file readable by others", func(t *testing.T) (string, []Option) {
			dir := t.TempDir()
			key := filepath.Join(t.TempDir(), "k.key")
			if err := os.WriteFile(key, []byte("not a key"), 0o644); err != nil {
				t.Fatal(err)
			}
			return dir, []Option{WithKeyFile(key)}
		}},
		{"key file malformed", func(t *testing.T) (string, []Option) {
			dir := t.TempDir()
			key := filepath.Join(t.TempDir(), "k.key")
			if err := os.WriteFile(key, []byte("not a key"), 0o600); err != nil {
				t.Fatal(err)
			}
			return dir, []Option{WithKeyFile(key)}
		}},
		{"read-only and missing", func(t *testing.T) (string, []Option) {
			return t.TempDir(), []Option{ReadOnly()}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, opts := tc.setup(t)
			before := settledGoroutines(runtime.NumGoroutine())
			const opens = 20
			for range opens {
				s, err := Open(dir, opts...)
				if err == nil {
					s.Close()
					t.Fatalf("Open succeeded; the case does not exercise an error path")
				}
			}
			if after := settledGoroutines(before); after > before {
				t.Errorf("%d failed opens left %d goroutines running (%d before, %d after)", opens, after-before, before, after)
			}
		})
	}
}
