package pgtest_test

import (
	"context"
	"database/sql"
	"os"
	"testing"

	"github.com/wcphall/hall/internal/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// TestNewDatabaseIsFreshAndPrivate: two databases of one server do not
// share tables, and the server answers on its unix socket.
func TestNewDatabaseIsFreshAndPrivate(t *testing.T) {
	ctx := context.Background()
	a, b := pgtest.NewDatabase(t), pgtest.NewDatabase(t)
	if a == b {
		t.Fatalf("two databases share a DSN: %s", a)
	}
	da, err := sql.Open("pgx", a)
	if err != nil {
		t.Fatal(err)
	}
	defer da.Close()
	if _, err := da.ExecContext(ctx, `CREATE TABLE x (v int); INSERT INTO x VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", b)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pg_tables WHERE tablename = 'x'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("a fresh database has table x of another test")
	}
}

// TestDurable: after Durable the server commits to disk (fsync and
// full_page_writes on, synchronous_commit on), and databases made before
// it are still there.
func TestDurable(t *testing.T) {
	ctx := context.Background()
	before := pgtest.NewDatabase(t)
	show := func(dsn, name string) string {
		t.Helper()
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var v string
		if err := db.QueryRowContext(ctx, "SHOW "+name).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	if got := show(before, "fsync"); got != "off" {
		// -count above 1: Durable ran in this binary already.
		t.Logf("fsync is %s before Durable", got)
	}
	pgtest.Durable(t)
	pgtest.Durable(t) // once is enough; again changes nothing
	for _, name := range []string{"fsync", "full_page_writes", "synchronous_commit"} {
		if got := show(before, name); got != "on" {
			t.Errorf("%s is %s after Durable, want on", name, got)
		}
	}
	show(pgtest.NewDatabase(t), "fsync")
}
