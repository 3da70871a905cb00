package pgsql

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/wcphall/hall/internal/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func openT(t *testing.T, dsn string, d Dialect) *sql.DB {
	t.Helper()
	cfg, err := ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	db := OpenDB(cfg, d)
	t.Cleanup(func() { db.Close() })
	return db
}

// TestCommitOfAFailedTransactionFails: a writer's transaction (begun with
// its locks in one round trip) whose statement failed is not reported
// committed: PostgreSQL answers COMMIT with ROLLBACK, and Commit must say
// so, or a write would be acknowledged that is not in the database.
func TestCommitOfAFailedTransactionFails(t *testing.T) {
	db := openT(t, pgtest.NewDatabase(t), Dialect{WriteLock: 42})
	ctx := context.Background()
	if _, err := db.Exec(`CREATE TABLE t (k INTEGER PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	for _, lctx := range []context.Context{ctx, WithChainLocks(ctx, []int32{7, 3})} {
		tx, err := db.BeginTx(lctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(`INSERT INTO t (k) VALUES (?)`, 1); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(`INSERT INTO t (k) VALUES (?)`, 1); err == nil {
			t.Fatal("a duplicate key was inserted")
		}
		if err := tx.Commit(); !errors.Is(err, pgx.ErrTxCommitRollback) {
			t.Fatalf("Commit after a failed statement = %v, want ErrTxCommitRollback", err)
		}
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM t`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("%d rows after the failed transaction (%v), want 0", n, err)
		}
	}
	// The connection is usable afterwards, and a good transaction commits.
	tx, err := db.BeginTx(WithChainLocks(ctx, []int32{7}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`INSERT INTO t (k) VALUES (?)`, 2); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM t`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d rows (%v), want 1", n, err)
	}
}

// TestChainLockHeldUntilCommit: a transaction on a chain waits for the
// one holding the chain's lock to end, and one on another chain does not.
func TestChainLockHeldUntilCommit(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	a, b := openT(t, dsn, Dialect{WriteLock: 42}), openT(t, dsn, Dialect{WriteLock: 42})
	ctx := context.Background()
	first, err := a.BeginTx(WithChainLocks(ctx, []int32{7}), nil)
	if err != nil {
		t.Fatal(err)
	}
	other, err := b.BeginTx(WithChainLocks(ctx, []int32{8}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Commit(); err != nil {
		t.Fatal(err)
	}
	began := make(chan error, 1)
	go func() {
		tx, err := b.BeginTx(WithChainLocks(ctx, []int32{7}), nil)
		if err == nil {
			err = tx.Rollback()
		}
		began <- err
	}()
	// Until the second transaction waits for the chain's lock.
	watch := openT(t, dsn, Dialect{})
	deadline := time.Now().Add(20 * time.Second)
	for {
		var waiting int
		if err := watch.QueryRow(`SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			break
		}
		select {
		case err := <-began:
			t.Fatalf("a transaction on a locked chain began (%v) while the lock was held", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the second transaction never waited for the chain's lock")
		}
		time.Sleep(time.Millisecond)
	}
	if err := first.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-began; err != nil {
		t.Fatalf("after the commit: %v", err)
	}
}
