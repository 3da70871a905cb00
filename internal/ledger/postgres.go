package ledger

import (
	"context"
	"database/sql"
	"fmt"
	"hash/fnv"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/wcphall/hall/internal/pgsql"
)

// OpenPostgres opens the ledger kept in the PostgreSQL database dsn (a
// postgres:// URL or a keyword/value DSN, a unix-socket host=/dir
// included), applying pending schema migrations. It is the same engine as
// [Open] — the same chains, group commit, signatures and Verify — over
// another database: the type keeps its name.
//
// keyDir is the node-local directory of the signing key when no
// [WithKeyFile] or [WithKeyReader] names it (keyDir/keys/ed25519.key,
// created when missing unless [ReadOnly]). Nodes that share one database
// must sign with one key: give each the same key file.
//
// # Notes
//
//   - A write transaction locks every chain it appends to before it reads
//     the chain's head (transaction-scoped advisory locks, released at
//     COMMIT or ROLLBACK: nothing is left behind by a connection pooler or
//     a killed node; see lockContext): appends to one chain from any
//     number of nodes are serialized and every chain stays linear, while
//     other chains append beside them. Writes whose chains are not known
//     in advance lock the whole ledger, as SQLite's BEGIN IMMEDIATE does.
//     The schema also refuses a fork itself: UNIQUE (chain, seq) and
//     UNIQUE (chain, prev_hash) on every chain.
//   - A batch costs two round trips to the database whatever its size:
//     BEGIN with its locks, the signing key and the heads of its chains;
//     then all its rows in one statement with COMMIT (RATIONALE.md, "A
//     batch is two round trips on PostgreSQL").
//   - Reads that must see one state (Verify, Export, bundles) run in
//     REPEATABLE READ read-only transactions.
//   - A write is acknowledged after COMMIT returns: with synchronous_commit
//     on (PostgreSQL's default) it is on the database's disk.
func OpenPostgres(dsn, keyDir string, opts ...Option) (*SQLite, error) {
	o := options{busyTimeout: 10 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("ledger: database URL: %w", err)
	}
	s := &SQLite{path: redactDSN(cfg), opts: o, queue: make(chan *write, maxBatch), stopped: make(chan struct{}), pg: true}
	s.w = pgsql.OpenDB(cfg, pgsql.Dialect{WriteLock: pgLockKey, Statement: pgStatement})
	s.w.SetMaxOpenConns(1)
	s.r = pgsql.OpenDB(cfg, pgsql.Dialect{Statement: pgStatement})
	s.r.SetMaxOpenConns(8)
	s.r.SetMaxIdleConns(8)
	ctx := context.Background()
	if err := s.w.PingContext(ctx); err != nil {
		s.abandon()
		return nil, fmt.Errorf("ledger: %w: %s: %v", ErrUnavailable, s.path, err)
	}
	if err := s.loadSigningKey(keyDir); err != nil {
		s.abandon()
		return nil, err
	}
	if o.noMigrate && !o.readOnly {
		var v int
		if err := s.w.QueryRowContext(ctx, `SELECT version FROM hall_user_version WHERE one = 1`).Scan(&v); err != nil || v != len(pgMigrations) {
			s.abandon()
			return nil, fmt.Errorf("ledger: the schema of %s is at version %d, this Hall's is %d, and migrating was forbidden (--no-migrate): run hall db migrate with this Hall's version", s.path, v, len(pgMigrations))
		}
	}
	if !o.readOnly {
		if err := pgBootstrap(ctx, s.w); err != nil {
			s.abandon()
			return nil, s.wrap("open "+s.path, err)
		}
	}
	if err := migrateSteps(ctx, s.w, pgMigrations, o.readOnly, s.recordSchema); err != nil {
		s.abandon()
		return nil, s.wrap("open "+s.path, err)
	}
	go s.commitLoop()
	return s, nil
}

// NoMigrate makes OpenPostgres refuse a database whose schema is not at
// this Hall's version instead of migrating it (hall serve --no-migrate:
// schema changes are made by hall db migrate alone).
func NoMigrate() Option { return func(o *options) { o.noMigrate = true } }

// ErrUnavailable: the ledger's database cannot be reached (down,
// restarting, refusing connections); wrapped by the errors of a
// PostgreSQL ledger's calls that failed for that reason.
var ErrUnavailable = pgsql.ErrUnavailable

// IsPostgres reports whether the ledger is kept in PostgreSQL.
func (s *SQLite) IsPostgres() bool { return s.pg }

// redactDSN names the database without its password.
func redactDSN(c *pgx.ConnConfig) string {
	return fmt.Sprintf("postgres database %s on %s", c.Database, c.Host)
}

// pgBootstrap creates the one-row table that stands for SQLite's PRAGMA
// user_version, under the ledger's lock so that nodes starting together
// create it once.
func pgBootstrap(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS hall_user_version (
	one     INTEGER PRIMARY KEY CHECK (one = 1),
	version BIGINT NOT NULL
)`); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO hall_user_version (one, version) VALUES (1, 0) ON CONFLICT (one) DO NOTHING`); err != nil {
		return err
	}
	return tx.Commit()
}

// pgLockKey is the advisory lock every write transaction of a ledger
// takes (advisory locks are per database: one ledger per database).
const pgLockKey = 0x48616c6c // "Hall"

// The ledger's statements whose SQLite form has no PostgreSQL equivalent,
// rewritten whole (pgsql numbers the ? placeholders of every other one).
var pgExact = map[string]string{
	"PRAGMA user_version": "SELECT version FROM hall_user_version WHERE one = 1",
	`SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`: `SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'schema_migrations'`,
}

var pgSetVersion = regexp.MustCompile(`^PRAGMA user_version = ([0-9]+)$`)

// pgStatement is the ledger's rewrite of the statements pgExact and
// pgSetVersion name.
func pgStatement(q string) (string, bool) {
	if r, ok := pgExact[q]; ok {
		return r, true
	}
	if m := pgSetVersion.FindStringSubmatch(q); m != nil {
		return "UPDATE hall_user_version SET version = " + m[1] + " WHERE one = 1", true
	}
	return "", false
}

// onChains sets the chains w appends to.
func onChains(w *write, chains ...string) *write {
	w.chains = chains
	return w
}

// lockContext is ctx carrying the locks a PostgreSQL write transaction of
// batch takes (pgsql.WithTxLocks): when every write names its chains, the
// ledger's lock in shared mode and one lock per chain, so that batches of
// other chains (other tenants) append at the same time; otherwise the
// ledger's lock alone, exclusive, as every write took before. Chain locks
// are taken in ascending order after the shared lock, and an exclusive
// holder takes no other: no two transactions wait for each other in a
// cycle. A chain's head is read after its lock is held (READ COMMITTED:
// each statement sees what committed before it), so chains stay linear.
// SQLite ignores it (BEGIN IMMEDIATE serializes every writer).
func (s *SQLite) lockContext(ctx context.Context, batch []*write) context.Context {
	if !s.pg {
		return ctx
	}
	seen := map[int32]bool{}
	var keys []int32
	for _, w := range batch {
		if w.chains == nil {
			return ctx // a write of unknown chains: exclusive
		}
		for _, c := range w.chains {
			k := chainLockKey(c)
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	return pgsql.WithChainLocks(ctx, keys)
}

// chainLockKey is the second half of a chain's advisory lock (the first is
// the ledger's key): FNV-1a of the chain's name. Two chains that collide
// only share a lock.
func chainLockKey(chain string) int32 {
	h := fnv.New32a()
	h.Write([]byte(chain))
	return int32(h.Sum32())
}
