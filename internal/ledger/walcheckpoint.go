package ledger

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"
)

// walKickEvery is how many commits pass between two background WAL
// checkpoints: ~16 writes per commit under load, ~9 kB of WAL per
// decision, so about 1 MB, well under SQLite's automatic checkpoint at
// 1,000 pages (4 MB), which runs inside a commit.
const walKickEvery = 8

// walCheckpointer copies the WAL back into the database on its own
// connection and goroutine, so that the committer, the one goroutine that
// writes, does not do it inside a commit. At /wcp/route the automatic
// checkpoint was a fifth of the committer's time (issue 12). A PASSIVE
// checkpoint takes no lock a writer needs: the committer keeps appending
// while it runs, and the next write transaction restarts the WAL once
// everything in it is in the database. SQLite's automatic checkpoint
// stays on as the backstop (and is what a short-lived process, which
// never commits walKickEvery times, relies on).
type walCheckpointer struct {
	kick chan struct{}
	wg   sync.WaitGroup
	once sync.Once
	db   *sql.DB
	// done counts the checkpoints that ran without error.
	done atomic.Uint64
}

// afterCommit is called by the committer after each commit.
func (c *walCheckpointer) afterCommit(s *SQLite, commits uint64) {
	if commits%walKickEvery != 0 || s.opts.readOnly {
		return
	}
	c.once.Do(func() {
		db, err := sql.Open("sqlite", s.dsn(false))
		if err != nil {
			return
		}
		db.SetMaxOpenConns(1)
		c.db, c.kick = db, make(chan struct{}, 1)
		c.wg.Add(1)
		go c.loop()
	})
	if c.kick == nil {
		return
	}
	select {
	case c.kick <- struct{}{}:
	default: // one is pending already
	}
}

func (c *walCheckpointer) loop() {
	defer c.wg.Done()
	for range c.kick {
		// Errors are not fatal: the automatic checkpoint remains.
		if _, err := c.db.ExecContext(context.Background(), `PRAGMA wal_checkpoint(PASSIVE)`); err == nil {
			c.done.Add(1)
		}
	}
}

// close stops the goroutine after any checkpoint in progress. The
// committer must have stopped (no more kicks).
func (c *walCheckpointer) close() error {
	if c.kick == nil {
		return nil
	}
	close(c.kick)
	c.wg.Wait()
	return c.db.Close()
}
