package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/wcphall/hall/internal/pgsql"
)

// maxBatch bounds how many writes one transaction carries, so that one
// commit's latency (and the WAL it writes) stays bounded under any load.
const maxBatch = 256

// States of a write: a caller may withdraw it only while it is pending;
// once the committer has taken it, it shares the fate of its batch.
const (
	writePending int32 = iota
	writeTaken
	writeWithdrawn
)

// write is one caller's RecordDecision, RecordEvents or Append waiting for
// the group committer. Everything that can be checked without the database
// was checked before it was queued.
type write struct {
	// op names the call in errors ("append", "record decision d1"...).
	op string
	// exec stores the write inside the batch's transaction. It sees the
	// writes of earlier items of the same batch (a receipt reads the
	// stream head they left). Its errors are already wrapped.
	exec func(tx *sql.Tx) error
	// committed, when set, runs after the transaction holding the write
	// has committed and before the caller is released.
	committed func()
	// pure: exec changes nothing but the database (and values of its own
	// write), so it can run again in a new transaction after a rollback.
	pure bool
	// chains names the chains exec appends to ("r:<tenant>" receipts,
	// "e:<stream>" decision entries, "c" the change chain), nil when not
	// known before it runs. On PostgreSQL a batch whose writes all name
	// theirs locks only those chains (postgres.go, lockContext).
	chains []string
	state  atomic.Int32
	done   chan error // buffered: the committer never blocks on a caller
}

func newWrite(op string, exec func(*sql.Tx) error, committed func()) *write {
	return &write{op: op, exec: exec, committed: committed, done: make(chan error, 1)}
}

// newPureWrite is newWrite for an exec that can run again (see pure).
func newPureWrite(op string, exec func(*sql.Tx) error, committed func()) *write {
	w := newWrite(op, exec, committed)
	w.pure = true
	return w
}

// submit queues w for the committer and waits until the transaction
// holding it has committed or failed.
//
// A caller whose ctx ends before the committer took its write gets ctx's
// error and nothing is written; after that the write is committed or fails
// with its batch, whatever ctx does, because the caller could not tell
// which had happened otherwise.
func (s *SQLite) submit(ctx context.Context, w *write) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("ledger: %s: %w", w.op, err)
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return fmt.Errorf("ledger: %s: %w", w.op, ErrClosed)
	}
	select {
	case s.queue <- w:
		s.mu.RUnlock()
	case <-ctx.Done():
		s.mu.RUnlock()
		return fmt.Errorf("ledger: %s: %w", w.op, ctx.Err())
	}
	select {
	case err := <-w.done:
		return err
	case <-ctx.Done():
		if w.state.CompareAndSwap(writePending, writeWithdrawn) {
			return fmt.Errorf("ledger: %s: %w", w.op, ctx.Err())
		}
		return <-w.done
	}
}

// commitLoop is the one goroutine that writes. It takes whatever is queued
// (up to maxBatch) and commits it in one transaction: callers that arrive
// while a commit is running are carried by the next one, so under load one
// fsync serves many writes, and a lone write is committed at once. It
// returns when Close has closed the queue and every queued write is done.
func (s *SQLite) commitLoop() {
	defer close(s.stopped)
	batch := make([]*write, 0, maxBatch)
	for w := range s.queue {
		batch = batch[:0]
		if w.state.CompareAndSwap(writePending, writeTaken) {
			batch = append(batch, w)
		}
	gather:
		for len(batch) < maxBatch {
			select {
			case w, ok := <-s.queue:
				if !ok {
					break gather
				}
				if w.state.CompareAndSwap(writePending, writeTaken) {
					batch = append(batch, w)
				}
			default:
				break gather
			}
		}
		if len(batch) > 0 {
			s.commitBatch(batch)
		}
	}
}

// commitBatch writes batch in one BEGIN IMMEDIATE transaction. Each item
// runs inside its own SAVEPOINT, so an item that fails (a duplicate
// decision id, a UNIQUE guard) is undone alone and reported to its caller
// only; the rest commit. A failure of the transaction itself (BEGIN,
// a savepoint that cannot be rolled back, COMMIT) fails every item that
// had not failed on its own.
func (s *SQLite) commitBatch(batch []*write) {
	if len(batch) > 1 && allPure(batch) && s.commitPlain(batch) {
		return
	}
	ctx := context.Background() // the callers' contexts no longer apply: see submit
	errs := make([]error, len(batch))
	failAll := func(err error) {
		for i, w := range batch {
			if errs[i] == nil {
				errs[i] = s.wrap(w.op, err)
			}
			w.done <- errs[i]
		}
	}
	s.prepareWrites()
	tx, err := s.w.BeginTx(s.lockContext(ctx, batch), nil) // BEGIN IMMEDIATE (see _txlock)
	if err != nil {
		failAll(err)
		return
	}
	// Sign with the ledger's current key, which another process may have
	// rotated since the last batch.
	if err := s.syncKey(tx); err != nil {
		tx.Rollback()
		failAll(err)
		return
	}
	if len(batch) == 1 {
		// Alone: the transaction is the item's own, no savepoint needed.
		if err := batch[0].exec(tx); err != nil {
			tx.Rollback()
			batch[0].done <- err
			return
		}
	} else {
		for i, w := range batch {
			if err := s.execTx(tx, qSavepoint); err != nil {
				tx.Rollback()
				failAll(err)
				return
			}
			if errs[i] = w.exec(tx); errs[i] != nil {
				// ROLLBACK TO keeps the savepoint open; RELEASE ends it.
				// Both fail if SQLite already rolled the whole
				// transaction back (e.g. disk full): then nothing of the
				// batch can commit.
				if err := s.execTx(tx, qRollbackTo); err != nil {
					tx.Rollback()
					failAll(err)
					return
				}
			}
			if err := s.execTx(tx, qRelease); err != nil {
				tx.Rollback()
				failAll(err)
				return
			}
		}
	}
	if err := tx.Commit(); err != nil {
		failAll(fmt.Errorf("commit: %w", err))
		return
	}
	s.committed(batch, errs)
}

// committed releases the callers of a committed batch.
func (s *SQLite) committed(batch []*write, errs []error) {
	if n := s.commits.Add(1); !s.pg {
		s.wal.afterCommit(s, n)
	}
	defer s.cp.afterCommit(s)
	for i, w := range batch {
		if errs[i] == nil {
			s.written.Add(1)
			if w.committed != nil {
				w.committed()
			}
		}
		w.done <- errs[i]
	}
}

func allPure(batch []*write) bool {
	for _, w := range batch {
		if !w.pure {
			return false
		}
	}
	return true
}

// commitPlain is the common case of commitBatch without its savepoints:
// every write of the batch in one transaction, as if each had its own
// SAVEPOINT, but without the two statements (and the sub-journal) per
// write. If a write fails, the transaction is rolled back, nothing was
// acknowledged, and commitPlain returns false: commitBatch then runs the
// batch again with savepoints, so that the failing write alone fails.
// The writes are pure (they can run again). A failure of the transaction
// itself (BEGIN, COMMIT) fails the batch as commitBatch would.
func (s *SQLite) commitPlain(batch []*write) bool {
	fail := func(err error) bool {
		for _, w := range batch {
			w.done <- s.wrap(w.op, err)
		}
		return true
	}
	s.prepareWrites()
	s.tails.begin()
	defer s.tails.end()
	ctx := s.lockContext(context.Background(), batch)
	k := s.key.Load()
	keySigns := false
	if s.pg && k != nil {
		// What the batch must read under its locks comes back with
		// BEGIN (RATIONALE.md, "A batch is two round trips…"), the
		// standing of the process's key among it.
		ctx = pgsql.WithPrefetch(ctx, s.prefetches(batch, k, &keySigns)...)
	}
	tx, err := s.w.BeginTx(ctx, nil) // BEGIN IMMEDIATE
	if err != nil {
		return fail(err)
	}
	if !keySigns {
		if err := s.syncKey(tx); err != nil {
			tx.Rollback()
			return fail(err)
		}
	}
	for _, w := range batch {
		if err := w.exec(tx); err != nil {
			tx.Rollback()
			return false
		}
	}
	if err := s.flushEntries(tx); err != nil {
		// Which write's entry failed is not known here: the savepoint
		// path runs the batch again and finds it.
		tx.Rollback()
		return false
	}
	if err := tx.Commit(); err != nil {
		if errors.Is(err, pgsql.ErrAtCommit) {
			// The rows sent with COMMIT were refused: nothing was
			// committed; the savepoint path finds the write at fault.
			return false
		}
		return fail(fmt.Errorf("commit: %w", err))
	}
	s.committed(batch, make([]error, len(batch)))
	return true
}
