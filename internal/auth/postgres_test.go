package auth

import (
	"context"
	"database/sql"
	"os"
	"testing"

	"github.com/wcphall/hall/internal/pgsql"
	"github.com/wcphall/hall/internal/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// openPGPair opens the token store of one fresh PostgreSQL database twice,
// as two nodes (or a node and `hall tokens`) do, and a plain connection
// to it, as psql or a restore would write.
func openPGPair(t *testing.T) (server, cli *Store, raw *sql.DB) {
	t.Helper()
	dsn := pgtest.NewDatabase(t)
	var err error
	if server, err = OpenPostgres(dsn); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	if cli, err = OpenPostgres(dsn); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	if raw, err = sql.Open("pgx", dsn); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return server, cli, raw
}

// TestPostgresCacheSeesRevocationByAnotherNode: a node answers a token
// it has read from memory (issue 22: it read the database on every
// request), and refuses it from its first call after another node
// revoked it.
func TestPostgresCacheSeesRevocationByAnotherNode(t *testing.T) {
	server, cli, _ := openPGPair(t)
	revokedElsewhere(t, server, cli, 5, "another node")
}

// TestPostgresCacheHitsSkipTheLookup: a cached token costs one round trip
// to the database (the version check), not the lookup.
func TestPostgresCacheHitsSkipTheLookup(t *testing.T) {
	ctx := context.Background()
	server, cli, _ := openPGPair(t)
	tok, meta, err := cli.Create(ctx, TenantScope("org.acme"), "")
	if err != nil {
		t.Fatal(err)
	}
	mustAuth(t, server, tok, meta)
	server.lookup.Close()
	rt := pgsql.RoundTrips()
	mustAuth(t, server, tok, meta)
	if n := pgsql.RoundTrips() - rt; n != 2 {
		t.Errorf("two cached Authenticate calls made %d round trips, want 2 (one check each)", n)
	}
}

// TestPostgresCacheSeesForeignWrites: writes that do not go through this
// package (psql, a restore) are seen from the next call too: the version
// is kept by a trigger on the table, TRUNCATE included.
func TestPostgresCacheSeesForeignWrites(t *testing.T) {
	ctx := context.Background()
	server, cli, raw := openPGPair(t)
	tok, meta, err := cli.Create(ctx, TenantScope("org.acme"), "")
	if err != nil {
		t.Fatal(err)
	}
	mustAuth(t, server, tok, meta)
	if _, err := raw.Exec(`UPDATE tokens SET scope = 'tenant:org.other' WHERE id = $1`, meta.ID); err != nil {
		t.Fatal(err)
	}
	meta.Scope = TenantScope("org.other")
	mustAuth(t, server, tok, meta)
	if _, err := raw.Exec(`UPDATE tokens SET revoked_at = '2026-01-01T00:00:00Z' WHERE id = $1`, meta.ID); err != nil {
		t.Fatal(err)
	}
	mustFail(t, server, tok, "revoked with psql")
	if _, err := raw.Exec(`UPDATE tokens SET revoked_at = NULL WHERE id = $1`, meta.ID); err != nil {
		t.Fatal(err)
	}
	mustAuth(t, server, tok, meta)
	if _, err := raw.Exec(`DELETE FROM tokens WHERE id = $1`, meta.ID); err != nil {
		t.Fatal(err)
	}
	mustFail(t, server, tok, "deleted with psql")
	tok2, meta2, err := cli.Create(ctx, TenantScope("org.acme"), "")
	if err != nil {
		t.Fatal(err)
	}
	mustAuth(t, server, tok2, meta2)
	if _, err := raw.Exec(`TRUNCATE tokens`); err != nil {
		t.Fatal(err)
	}
	mustFail(t, server, tok2, "truncated with psql")
}

func TestPostgresCacheConcurrentRevocation(t *testing.T) {
	server, cli, _ := openPGPair(t)
	testConcurrentRevocation(t, server, cli)
}

func TestPostgresCacheWaitsForACheckStartedAfterTheCall(t *testing.T) {
	server, cli, _ := openPGPair(t)
	testWaitsForACheckStartedAfterTheCall(t, server, cli)
}

// TestPostgresReopenKeepsOneTrigger: opening the store again (every node
// start) neither fails nor adds a second trigger: one statement moves the
// version once.
func TestPostgresReopenKeepsOneTrigger(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	for range 3 {
		s, err := OpenPostgres(dsn)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	raw, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var before, after int64
	if err := raw.QueryRow(pgVersion).Scan(&before); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`UPDATE tokens SET name = name`); err != nil {
		t.Fatal(err)
	}
	if err := raw.QueryRow(pgVersion).Scan(&after); err != nil {
		t.Fatal(err)
	}
	if after != before+1 {
		t.Fatalf("one UPDATE moved the version from %d to %d, want %d", before, after, before+1)
	}
}
