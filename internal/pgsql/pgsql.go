// Package pgsql opens PostgreSQL (through pgx's database/sql driver) for
// code written in SQLite's dialect of SQL: the Hall's ledger and token
// store run the same statements on both databases, and the differences
// live here and in each package's PostgreSQL schema.
//
// What it translates: ? placeholders become $1, $2… (outside quotes and
// comments); booleans are stored as 0 and 1 (SQLite's integers); a
// statement a Dialect names is replaced whole. A read-only transaction
// runs at REPEATABLE READ (one snapshot, as SQLite's deferred
// transactions give); a writer's transactions take a transaction-scoped
// advisory lock first, as SQLite's BEGIN IMMEDIATE serializes writers, or
// that lock shared and one lock per chain (WithChainLocks), sent with
// BEGIN as one query: one round trip however many locks. What a writer
// reads under its locks can go in that round trip (WithPrefetch), and
// what it writes last with its COMMIT (AtCommit).
//
// # Notes
//
//   - The lock is pg_advisory_xact_lock: released at COMMIT or ROLLBACK,
//     so a connection pooler in transaction mode or a killed client never
//     leaves it held (session advisory locks would).
package pgsql

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// Dialect is what a package adds to the translation.
type Dialect struct {
	// WriteLock, when not 0, is the advisory lock key every read-write
	// transaction takes before its first statement.
	WriteLock int64
	// Statement, when set, replaces a statement whole (ok true) before
	// placeholders are numbered.
	Statement func(q string) (string, bool)
}

// OpenDB opens a pool of connections to the database of cfg that speak
// SQLite's dialect as d says.
func OpenDB(cfg *pgx.ConnConfig, d Dialect) *sql.DB {
	return sql.OpenDB(&connector{inner: stdlib.GetConnector(*cfg), d: d})
}

// ParseDSN parses a postgres:// URL or a keyword/value DSN.
func ParseDSN(dsn string) (*pgx.ConnConfig, error) { return pgx.ParseConfig(dsn) }

// ErrUnavailable is wrapped by every error of a connection that could not
// be made or was lost (PostgreSQL down, restarting, unreachable): the
// statement did not run, or its outcome is unknown and its transaction
// was rolled back. Callers answer "try again later" (HTTP 503), and the
// pool reconnects on the next call.
var ErrUnavailable = errors.New("STATE_UNAVAILABLE: the database cannot be reached")

// unavailable wraps err with ErrUnavailable when it is a connection
// failure; database/sql still sees driver.ErrBadConn through it.
func unavailable(err error) error {
	if err == nil || !Unavailable(err) || errors.Is(err, ErrUnavailable) {
		return err
	}
	return &downError{err}
}

type downError struct{ err error }

func (e *downError) Error() string   { return ErrUnavailable.Error() + ": " + e.err.Error() }
func (e *downError) Unwrap() []error { return []error{ErrUnavailable, e.err} }

// Unavailable reports whether err says the database could not be reached
// or went away (connection refused or reset, server shutting down or
// starting), as opposed to a statement's own failure.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// Class 08: connection exception; 57P01-03: admin/crash shutdown,
		// cannot connect now.
		return strings.HasPrefix(pe.Code, "08") || pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03"
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, driver.ErrBadConn) {
		return true
	}
	var ce *pgconn.ConnectError
	return errors.As(err, &ce) || pgconn.SafeToRetry(err) || strings.Contains(err.Error(), "conn closed")
}

// roundTrips counts the requests this process sent to PostgreSQL through
// OpenDB's pools and waited for: one per BEGIN (with its locks and
// prefetches), COMMIT (with the statements sent with it), ROLLBACK,
// statement run, statement prepared and ping. Not counted: pgx's one-time
// description of a statement new to a connection (its statement cache).
var roundTrips atomic.Int64

// RoundTrips returns how many requests this process has sent to
// PostgreSQL through OpenDB's pools and waited for the answer of (the
// benchmarks report it per decision: each is a wait for the database, and
// on a loaded machine a context switch to its server process and back).
func RoundTrips() int64 { return roundTrips.Load() }

type chainLocksKey struct{}

// WithChainLocks makes the read-write transaction begun with ctx take the
// dialect's WriteLock in shared mode, then the two-key advisory locks
// (WriteLock, k) for each k of keys in ascending order, instead of
// WriteLock exclusively: transactions of disjoint chains run at once, and
// one that takes WriteLock exclusively (no chains given) waits for them
// all. Every lock is transaction-scoped.
func WithChainLocks(ctx context.Context, keys []int32) context.Context {
	ks := slices.Clone(keys)
	slices.Sort(ks)
	return context.WithValue(ctx, chainLocksKey{}, slices.Compact(ks))
}

type connector struct {
	inner driver.Connector
	d     Dialect
	cache sync.Map // SQLite text → PostgreSQL text
}

func (c *connector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.inner.Connect(ctx)
	if err != nil {
		return nil, unavailable(err)
	}
	return &conn_{Conn: conn, c: c}, nil
}

func (c *connector) Driver() driver.Driver { return c.inner.Driver() }

// rewrite translates q (cached: the statements are a fixed set).
func (c *connector) rewrite(q string) string {
	if v, ok := c.cache.Load(q); ok {
		return v.(string)
	}
	out := q
	if c.d.Statement != nil {
		if r, ok := c.d.Statement(q); ok {
			out = r
		} else {
			out = Placeholders(q)
		}
	} else {
		out = Placeholders(q)
	}
	c.cache.Store(q, out)
	return out
}

// Placeholders numbers the ? placeholders of q ($1, $2…), leaving quoted
// text and -- comments alone.
func Placeholders(q string) string {
	if !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(q); i++ {
		ch := q[i]
		switch {
		case ch == '\'' || ch == '"':
			j := strings.IndexByte(q[i+1:], ch)
			if j < 0 {
				b.WriteString(q[i:])
				return b.String()
			}
			b.WriteString(q[i : i+j+2])
			i += j + 1
		case ch == '-' && i+1 < len(q) && q[i+1] == '-':
			j := strings.IndexByte(q[i:], '\n')
			if j < 0 {
				b.WriteString(q[i:])
				return b.String()
			}
			b.WriteString(q[i : i+j])
			i += j - 1
		case ch == '?':
			n++
			b.WriteString("$" + strconv.Itoa(n))
		default:
			b.WriteByte(ch)
		}
	}
	return b.String()
}

type conn_ struct {
	driver.Conn
	c *connector
	// tx is the transaction beginLocked began, until it ends.
	tx *lockedTx
}

func (c *conn_) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	roundTrips.Add(1)
	st, err := c.Conn.(driver.ConnPrepareContext).PrepareContext(ctx, c.c.rewrite(q))
	if err != nil {
		return nil, unavailable(err)
	}
	return stmt{st}, nil
}

func (c *conn_) Prepare(q string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), q)
}

func (c *conn_) BeginTx(ctx context.Context, o driver.TxOptions) (driver.Tx, error) {
	if o.ReadOnly && sql.IsolationLevel(o.Isolation) == sql.LevelDefault {
		o.Isolation = driver.IsolationLevel(sql.LevelRepeatableRead)
	}
	if c.c.d.WriteLock != 0 && !o.ReadOnly && sql.IsolationLevel(o.Isolation) == sql.LevelDefault {
		if pc, ok := c.Conn.(*stdlib.Conn); ok {
			keys, chained := ctx.Value(chainLocksKey{}).([]int32)
			pre, _ := ctx.Value(prefetchKey{}).([]Prefetch)
			return c.beginLocked(ctx, pc.Conn(), lockStatements(c.c.d.WriteLock, keys, chained), pre)
		}
	}
	roundTrips.Add(1)
	tx, err := c.Conn.(driver.ConnBeginTx).BeginTx(ctx, o)
	if err != nil {
		return nil, unavailable(err)
	}
	if c.c.d.WriteLock == 0 || o.ReadOnly {
		return committer{tx}, nil
	}
	exec := c.Conn.(driver.ExecerContext)
	keys, chained := ctx.Value(chainLocksKey{}).([]int32)
	roundTrips.Add(int64(1 + len(keys)))
	if !chained {
		if _, err := exec.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`,
			[]driver.NamedValue{{Ordinal: 1, Value: c.c.d.WriteLock}}); err != nil {
			tx.Rollback()
			return nil, unavailable(err)
		}
		return committer{tx}, nil
	}
	if _, err := exec.ExecContext(ctx, `SELECT pg_advisory_xact_lock_shared($1)`,
		[]driver.NamedValue{{Ordinal: 1, Value: c.c.d.WriteLock}}); err != nil {
		tx.Rollback()
		return nil, unavailable(err)
	}
	for _, k := range keys {
		// The two-key form: a key space apart from the one-key locks.
		if _, err := exec.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1::int4, $2::int4)`,
			[]driver.NamedValue{{Ordinal: 1, Value: int64(int32(c.c.d.WriteLock))}, {Ordinal: 2, Value: int64(k)}}); err != nil {
			tx.Rollback()
			return nil, unavailable(err)
		}
	}
	return committer{tx}, nil
}

// lockStatements are BEGIN and the advisory locks of a read-write
// transaction (WithChainLocks), in the order they must run. Sent together
// (one simple-protocol query, or one pipeline with prefetches), they are
// one round trip: PostgreSQL runs them in order, each after the one before
// has returned, so each lock is held before the next is asked for, and
// every statement after them sees what committed before its locks were
// granted (READ COMMITTED: a statement's snapshot is taken when it starts).
func lockStatements(writeLock int64, keys []int32, chained bool) []string {
	if !chained {
		return []string{"BEGIN", "SELECT pg_advisory_xact_lock(" + strconv.FormatInt(writeLock, 10) + ")"}
	}
	qs := []string{"BEGIN", "SELECT pg_advisory_xact_lock_shared(" + strconv.FormatInt(writeLock, 10) + ")"}
	for _, k := range keys {
		// The two-key form: a key space apart from the one-key locks.
		qs = append(qs, "SELECT pg_advisory_xact_lock("+strconv.FormatInt(int64(int32(writeLock)), 10)+", "+strconv.FormatInt(int64(k), 10)+")")
	}
	return qs
}

// Prefetch is a query that a read-write transaction runs in the round trip
// that begins it, once its locks are held (WithPrefetch): what a writer
// must read under its locks before it writes, without a round trip of its
// own.
type Prefetch struct {
	// Query is in SQLite's dialect, as every statement given to OpenDB's
	// pools; Args are its arguments.
	Query string
	Args  []any
	// Row receives the values of each row, as pgx decodes them (string
	// for text, int64 for bigint…). An error fails BeginTx.
	Row func(values []any) error
}

type prefetchKey struct{}

// WithPrefetch makes the read-write transaction begun with ctx (of a
// dialect with a WriteLock) run qs, in order, after its locks, in the
// round trip of BEGIN.
func WithPrefetch(ctx context.Context, qs ...Prefetch) context.Context {
	return context.WithValue(ctx, prefetchKey{}, qs)
}

type atCommitKey struct{}

// AtCommit marks ctx so that a statement executed with it, in a read-write
// transaction of a dialect with a WriteLock, is not sent at once but with
// the transaction's COMMIT, in one round trip. Its result is not known
// when ExecContext returns (0 rows affected); if it fails, nothing of the
// transaction is committed and Commit returns an error wrapping
// ErrAtCommit and the statement's own.
func AtCommit(ctx context.Context) context.Context {
	return context.WithValue(ctx, atCommitKey{}, true)
}

// ErrAtCommit is wrapped by the error of a Commit whose statement sent with
// it (AtCommit) failed: the transaction was rolled back, nothing of it is
// in the database.
var ErrAtCommit = errors.New("a statement sent with COMMIT failed; nothing was committed")

// beginLocked begins a transaction on conn and takes its locks (qs, from
// lockStatements), then runs the prefetches, in one round trip. The
// transaction is ended by the returned driver.Tx, on the same connection,
// as pgx's own would be.
func (c *conn_) beginLocked(ctx context.Context, conn *pgx.Conn, qs []string, pre []Prefetch) (driver.Tx, error) {
	pc := conn.PgConn()
	roundTrips.Add(1)
	var err error
	if len(pre) == 0 {
		_, err = pc.Exec(ctx, strings.Join(qs, "; ")).ReadAll()
	} else {
		err = c.pipeline(ctx, conn, qs, pre)
	}
	if err != nil {
		if pc.TxStatus() != 'I' && !pc.IsClosed() {
			// BEGIN ran and a lock or a prefetch failed: the
			// transaction is aborted.
			roundTrips.Add(1)
			pc.Exec(context.Background(), "ROLLBACK").ReadAll()
		}
		return nil, unavailable(err)
	}
	t := &lockedTx{c: c, conn: conn}
	c.tx = t
	return t, nil
}

// pipeline sends qs and the prefetches as one pipeline (pgx's Batch: one
// Sync, one round trip; a statement after a failed one is not run) and
// reads their results.
func (c *conn_) pipeline(ctx context.Context, conn *pgx.Conn, qs []string, pre []Prefetch) error {
	b := &pgx.Batch{}
	for _, q := range qs {
		b.Queue(q)
	}
	for _, p := range pre {
		b.Queue(c.c.rewrite(p.Query), p.Args...)
	}
	br := conn.SendBatch(ctx, b)
	err := func() error {
		for range qs {
			if _, err := br.Exec(); err != nil {
				return err
			}
		}
		for _, p := range pre {
			rows, err := br.Query()
			if err != nil {
				return err
			}
			for rows.Next() {
				v, err := rows.Values()
				if err == nil {
					err = p.Row(v)
				}
				if err != nil {
					rows.Close()
					return err
				}
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
		}
		return nil
	}()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return err
}

// lockedTx is a transaction begun by beginLocked.
type lockedTx struct {
	c    *conn_
	conn *pgx.Conn
	// pending are the statements executed with AtCommit, sent with COMMIT.
	pending []pendingStmt
}

type pendingStmt struct {
	q    string
	args []any
}

// Commit commits, and fails when the server rolled the transaction back
// instead (a statement of it had failed): COMMIT then answers ROLLBACK,
// which is not an error of the protocol (pgx.ErrTxCommitRollback). The
// statements executed with AtCommit go in the same round trip, before
// COMMIT.
func (t *lockedTx) Commit() error {
	t.c.tx = nil
	roundTrips.Add(1)
	pc := t.conn.PgConn()
	if len(t.pending) == 0 {
		res, err := pc.Exec(context.Background(), "COMMIT").ReadAll()
		if err != nil {
			return unavailable(err)
		}
		if len(res) != 1 || res[0].CommandTag.String() != "COMMIT" {
			return pgx.ErrTxCommitRollback
		}
		return nil
	}
	b := &pgx.Batch{}
	for _, p := range t.pending {
		b.Queue(p.q, p.args...)
	}
	t.pending = nil
	b.Queue("COMMIT")
	br := t.conn.SendBatch(context.Background(), b)
	var stmtErr error
	for range b.Len() - 1 {
		if _, err := br.Exec(); err != nil {
			stmtErr = err
			break
		}
	}
	var tag pgconn.CommandTag
	var err error
	if stmtErr == nil {
		tag, err = br.Exec()
	}
	if cerr := br.Close(); err == nil && stmtErr == nil {
		err = cerr
	}
	switch {
	case stmtErr != nil:
		if pc.TxStatus() != 'I' && !pc.IsClosed() {
			roundTrips.Add(1)
			pc.Exec(context.Background(), "ROLLBACK").ReadAll()
		}
		if Unavailable(stmtErr) {
			return unavailable(stmtErr)
		}
		return fmt.Errorf("%w: %w", ErrAtCommit, stmtErr)
	case err != nil:
		return unavailable(err)
	case tag.String() != "COMMIT":
		return pgx.ErrTxCommitRollback
	}
	return nil
}

func (t *lockedTx) Rollback() error {
	t.c.tx, t.pending = nil, nil
	pc := t.conn.PgConn()
	if pc.IsClosed() {
		return driver.ErrBadConn
	}
	roundTrips.Add(1)
	_, err := pc.Exec(context.Background(), "ROLLBACK").ReadAll()
	return unavailable(err)
}

// committer marks a COMMIT that failed for want of a connection.
type committer struct{ driver.Tx }

func (t committer) Commit() error {
	roundTrips.Add(1)
	return unavailable(t.Tx.Commit())
}

func (t committer) Rollback() error {
	roundTrips.Add(1)
	return t.Tx.Rollback()
}

func (c *conn_) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	if c.tx != nil && ctx.Value(atCommitKey{}) != nil {
		vs := make([]any, len(args))
		for i, a := range args {
			vs[i] = a.Value
		}
		c.tx.pending = append(c.tx.pending, pendingStmt{q: c.c.rewrite(q), args: vs})
		return driver.RowsAffected(0), nil
	}
	roundTrips.Add(1)
	res, err := c.Conn.(driver.ExecerContext).ExecContext(ctx, c.c.rewrite(q), args)
	return res, unavailable(err)
}

func (c *conn_) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	roundTrips.Add(1)
	rows, err := buffer(c.Conn.(driver.QueryerContext).QueryContext(ctx, c.c.rewrite(q), args))
	return rows, unavailable(err)
}

// stmt is a prepared statement whose results are buffered (see buffer).
type stmt struct{ driver.Stmt }

func (s stmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	roundTrips.Add(1)
	res, err := s.Stmt.(driver.StmtExecContext).ExecContext(ctx, args)
	return res, unavailable(err)
}

func (s stmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	roundTrips.Add(1)
	rows, err := buffer(s.Stmt.(driver.StmtQueryContext).QueryContext(ctx, args))
	return rows, unavailable(err)
}

// buffer reads every row of r into memory and closes r. SQLite lets a
// transaction run a statement while another's rows are still open (the
// ledger's Verify reads its keyring while walking receipts); a PostgreSQL
// connection carries one result at a time. Buffering keeps the SQLite
// code unchanged, at the price of holding a query's whole result in
// memory (docs/DEPLOY.md: Verify and Export of a very large ledger).
func buffer(r driver.Rows, err error) (driver.Rows, error) {
	if err != nil {
		return nil, err
	}
	defer r.Close()
	b := &rows{cols: r.Columns()}
	for {
		row := make([]driver.Value, len(b.cols))
		if err := r.Next(row); err != nil {
			if err == io.EOF {
				break
			}
			return nil, err
		}
		for i, v := range row {
			if p, ok := v.([]byte); ok {
				row[i] = bytes.Clone(p)
			}
		}
		b.data = append(b.data, row)
	}
	return b, nil
}

type rows struct {
	cols []string
	data [][]driver.Value
}

func (r *rows) Columns() []string { return r.cols }
func (r *rows) Close() error      { r.data = nil; return nil }
func (r *rows) Next(dest []driver.Value) error {
	if len(r.data) == 0 {
		return io.EOF
	}
	copy(dest, r.data[0])
	r.data = r.data[1:]
	return nil
}

func (c *conn_) Ping(ctx context.Context) error {
	roundTrips.Add(1)
	return unavailable(c.Conn.(driver.Pinger).Ping(ctx))
}

func (c *conn_) ResetSession(ctx context.Context) error {
	if r, ok := c.Conn.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (c *conn_) IsValid() bool {
	if v, ok := c.Conn.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

// CheckNamedValue stores booleans as 0 and 1 (SQLite's integer columns)
// and hands everything else to pgx.
func (c *conn_) CheckNamedValue(nv *driver.NamedValue) error {
	if b, ok := nv.Value.(bool); ok {
		nv.Value = int64(0)
		if b {
			nv.Value = int64(1)
		}
		return nil
	}
	if ch, ok := c.Conn.(driver.NamedValueChecker); ok {
		return ch.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}
