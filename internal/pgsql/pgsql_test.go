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

// TestPrefetchAndAtCommit: a writer's transaction can read under its
// locks in the round trip of BEGIN and send its rows with COMMIT: two
// round trips. A statement sent with COMMIT that fails commits nothing,
// and Commit says so with ErrAtCommit.
func TestPrefetchAndAtCommit(t *testing.T) {
	db := openT(t, pgtest.NewDatabase(t), Dialect{WriteLock: 42})
	ctx := context.Background()
	if _, err := db.Exec(`CREATE TABLE t (k TEXT PRIMARY KEY, v BIGINT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO t (k, v) VALUES ('a', 1), ('b', 2)`); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	pre := Prefetch{Query: `SELECT k, v FROM t WHERE k = ANY(?::text[]) ORDER BY k`, Args: []any{[]string{"b", "c"}}, Row: func(v []any) error {
		got[v[0].(string)] = v[1].(int64)
		return nil
	}}
	rt := RoundTrips()
	tx, err := db.BeginTx(WithPrefetch(WithChainLocks(ctx, []int32{1}), pre), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got["b"] != 2 {
		t.Fatalf("prefetched %v, want map[b:2]", got)
	}
	if _, err := tx.ExecContext(AtCommit(ctx), `INSERT INTO t (k, v) VALUES (?, ?)`, "c", 3); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if n := RoundTrips() - rt; n != 2 {
		t.Errorf("BEGIN with a prefetch, then a row with COMMIT: %d round trips, want 2", n)
	}
	var v int64
	if err := db.QueryRow(`SELECT v FROM t WHERE k = 'c'`).Scan(&v); err != nil || v != 3 {
		t.Fatalf("the row sent with COMMIT: %d, %v", v, err)
	}

	tx, err = db.BeginTx(WithPrefetch(ctx, pre), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO t (k, v) VALUES (?, ?)`, "d", 4); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(AtCommit(ctx), `INSERT INTO t (k, v) VALUES (?, ?)`, "a", 5); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); !errors.Is(err, ErrAtCommit) {
		t.Fatalf("Commit with a duplicate key sent with it = %v, want ErrAtCommit", err)
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM t`).Scan(&n); err != nil || n != 3 {
		t.Fatalf("%d rows after the failed commit (%v), want 3: nothing of it committed", n, err)
	}
	// A prefetch that fails fails BeginTx, and leaves the connection
	// usable.
	bad := Prefetch{Query: `SELECT nosuch FROM t`, Row: func([]any) error { return nil }}
	if _, err := db.BeginTx(WithPrefetch(ctx, bad), nil); err == nil {
		t.Fatal("BeginTx with a failing prefetch succeeded")
	}
	if err := db.QueryRow(`SELECT count(*) FROM t`).Scan(&n); err != nil || n != 3 {
		t.Fatalf("after a failed BeginTx: %d rows, %v", n, err)
	}
}
