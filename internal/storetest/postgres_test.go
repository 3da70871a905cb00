package storetest_test

import (
	"database/sql"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/pgtest"
	"github.com/wcphall/hall/internal/storetest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// homes maps a test database to its node-local state directory (the
// signing key every open of the database shares, as nodes given one
// --key do).
var homes sync.Map

// pgBackend is the storage seam on a real PostgreSQL (internal/pgtest).
func pgBackend() storetest.Backend {
	return storetest.Backend{
		New: func(t *testing.T) string {
			dsn := pgtest.NewDatabase(t)
			homes.Store(dsn, filepath.Join(t.TempDir(), ".hall"))
			return dsn
		},
		Open: func(t *testing.T, dsn string) *host.Stores {
			home, _ := homes.Load(dsn)
			st, err := host.OpenPostgresStores(dsn, home.(string), host.LocalStoreOptions{})
			if err != nil {
				t.Fatalf("OpenPostgresStores: %v", err)
			}
			return st
		},
		TamperEvidence: func(t *testing.T, dsn, receiptID string) {
			db, err := sql.Open("pgx", dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Exec(`DROP TRIGGER receipts_append_only ON receipts`); err != nil {
				t.Fatal(err)
			}
			res, err := db.Exec(`UPDATE receipts SET body = replace(body, '"outcome":"ok"', '"outcome":"DENIED"') WHERE receipt_id = $1`, receiptID)
			if err != nil {
				t.Fatal(err)
			}
			if n, _ := res.RowsAffected(); n != 1 {
				t.Fatalf("tamper: changed %d row(s)", n)
			}
		},
		TamperArtifact: func(t *testing.T, dsn string, d wcp.Digest) {
			db, err := sql.Open("pgx", dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Exec(`UPDATE modules SET module = $1 WHERE digest = $2`, []byte("\x00asm\x01\x00\x00\x00 changed"), d.String()); err != nil {
				t.Fatal(err)
			}
		},
	}
}

// The storage seam's contract, run against PostgreSQL.
func TestPostgresStores(t *testing.T) { storetest.TestStores(t, pgBackend()) }

// The snapshot source's contract, run against PostgreSQL.
func TestPostgresSnapshotSource(t *testing.T) {
	storetest.TestSnapshotSource(t, func(t *testing.T) host.SnapshotSource {
		src, err := host.OpenPostgresSource(pgtest.NewDatabase(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { src.(interface{ Close() error }).Close() })
		return src
	})
}
