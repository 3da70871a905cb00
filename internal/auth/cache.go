package auth

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"sync"
)

// Authenticate answers from a cache of the token rows it has read, and
// revocation stays immediate across processes: before every answer, the
// cache is checked against the database file with PRAGMA data_version
// (RATIONALE.md has the measurements and the alternatives).
//
//   - The watcher holds one connection of its own, pinned, never used to
//     write. SQLite guarantees that PRAGMA data_version, run twice on one
//     connection, returns different values if any other connection, of this
//     process or another, committed a change in between. Each run starts a
//     read transaction, so it sees every commit that finished before it
//     started. The token table is alone in its file, so the version changes
//     only when tokens do.
//   - Writes through this Store also invalidate the cache themselves, after
//     the write returns (they go through other connections, which the
//     watcher does see, but that is then not needed for correctness).
//   - An Authenticate that finds the token's row in the cache uses it only
//     after a check that started after the call did: its own or, when
//     calls overlap, one that another call started after this one began.
//     Checks run one at a time on the one connection, so under load one
//     check answers every call that arrived while the previous one ran
//     (see watcher).
//   - A check that sees a new version, or has no previous version to compare
//     with (first check, new connection after an error), empties the cache
//     and increments its generation. A row read from the database (on a
//     miss, without a check: the read itself is current) is added only if
//     the generation is still the one read before the row was: a row read
//     before a commit either never enters the cache or is removed by the
//     first check that sees the commit, which is made, at the latest, by
//     the first call that would use the row after the commit.
//   - If the check fails, the call reads the database and caches nothing;
//     the next check pins another connection.
//
// On PostgreSQL (OpenPostgres) the check reads tokens_version.v instead
// of PRAGMA data_version: a statement-level trigger on the token table
// increments it in the transaction of every statement that inserts,
// updates, deletes or truncates tokens, by any client, so it moves with
// every commit that changes tokens, and only then. The check is a plain
// SELECT outside any transaction: under READ COMMITTED its snapshot is
// taken when it starts, so it sees every commit that finished before, and
// the argument above holds as it is (RATIONALE.md, "PostgreSQL").
//
// Only rows are cached, never a token: the key is the token's public id and
// the entry holds the stored hash, compared in constant time with the hash
// of the presented token on every call, as without the cache. Unknown ids
// are not cached, and the cache holds at most maxCached rows, so a flood of
// made-up tokens costs a lookup each (as before) and no memory.

// maxCached bounds the number of token rows held in memory.
const maxCached = 1024

// tokenKey is a token's public id (the 12 hex digits) decoded.
type tokenKey [idHexLen / 2]byte

type cacheEntry struct {
	tok  Token
	hash [sha256.Size]byte
}

// tokenCache holds token rows read while the database was at one version.
type tokenCache struct {
	mu  sync.Mutex
	gen uint64 // incremented by every invalidation
	m   map[tokenKey]cacheEntry
	max int // maxCached if 0 (tests lower it)
}

// get returns the entry for k, if any, and the current generation, to give
// put with a row read from the database after this call.
func (c *tokenCache) get(k tokenKey) (cacheEntry, bool, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	return e, ok, c.gen
}

// put adds e, read from the database after a get that returned gen, unless
// the cache was invalidated since. When the cache is full, an arbitrary
// entry makes room.
func (c *tokenCache) put(k tokenKey, e cacheEntry, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if c.m == nil {
		c.m = make(map[tokenKey]cacheEntry)
	}
	limit := c.max
	if limit <= 0 {
		limit = maxCached
	}
	if _, ok := c.m[k]; !ok && len(c.m) >= limit {
		for old := range c.m {
			delete(c.m, old)
			if len(c.m) < limit {
				break
			}
		}
	}
	c.m[k] = e
}

// invalidate empties the cache and refuses the rows being read.
func (c *tokenCache) invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.m = nil
}

// len returns the number of cached rows.
func (c *tokenCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

var errClosed = errors.New("auth: the token store is closed")

// watcher tells whether the database changed, on a connection of its own.
//
// Checks run one at a time, in rounds. A call that finds no check running
// runs one (or joins the one about to start); a call that finds one running
// cannot use it (it may have started before the call did, i.e. before a
// write the call must see), so it joins the next round, shared by every
// call that arrives during the running check, and run by one of them once
// that check is over.
type watcher struct {
	mu   sync.Mutex
	cur  *round // the check running, or about to; nil if none
	next *round // the one after cur, shared by the calls waiting for it

	// The connection, used by the one running check (or by close).
	connMu sync.Mutex
	closed bool
	conn   *sql.Conn // pinned; nil until the first check and after an error
	// versionSQL is the statement that reads the database's version: PRAGMA
	// data_version on SQLite, the tokens_version row on PostgreSQL.
	versionSQL string
	stmt       driver.Stmt // versionSQL, prepared on conn
	version    int64       // what it last returned
	known      bool        // version was read on conn
	check      func(any) error
	dest       [1]driver.Value

	afterRead func() // tests: called by a check once it has read the version
}

// round is one check and the calls waiting for it.
type round struct {
	// All under watcher.mu.
	claimed bool          // a call is running it
	over    bool          // it has run
	err     error         // its outcome, once over
	done    chan struct{} // closed once over; made by the first call to wait
}

// wait returns r's channel, making it. watcher.mu is held and r is not over.
func (r *round) wait() chan struct{} {
	if r.done == nil {
		r.done = make(chan struct{})
	}
	return r.done
}

// sync returns once a check that started after sync was called has
// succeeded, and the cache c has been invalidated if the database changed
// since the check before it. An error means no check could be made: the
// caller must not use the cache.
func (w *watcher) sync(db *sql.DB, c *tokenCache) error {
	w.mu.Lock()
	var me *round
	switch {
	case w.cur == nil:
		me = &round{}
		w.cur = me
	case !w.cur.claimed:
		me = w.cur // it has not started: it will start after this call
	default:
		// The running check may have started before this call: wait for
		// it to end, then for the next one.
		if w.next == nil {
			w.next = &round{}
		}
		me = w.next
		prev := w.cur.wait()
		w.mu.Unlock()
		<-prev
		w.mu.Lock()
	}
	if !me.claimed { // the first of its callers to get here runs it
		me.claimed = true
		w.mu.Unlock()
		return w.run(me, db, c)
	}
	if me.over {
		w.mu.Unlock()
		return me.err
	}
	done := me.wait()
	w.mu.Unlock()
	<-done
	return me.err
}

// run runs the check of round r, then makes the next round current.
func (w *watcher) run(r *round, db *sql.DB, c *tokenCache) error {
	err := w.compare(db, c)
	w.mu.Lock()
	r.err, r.over = err, true
	if r.done != nil {
		close(r.done)
	}
	w.cur, w.next = w.next, nil
	w.mu.Unlock()
	return err
}

// compare reads the data version and invalidates c if it changed.
func (w *watcher) compare(db *sql.DB, c *tokenCache) error {
	w.connMu.Lock()
	defer w.connMu.Unlock()
	v, err := w.read(db)
	if w.afterRead != nil {
		w.afterRead()
	}
	if err != nil {
		w.drop()
		c.invalidate()
		return err
	}
	if !w.known || v != w.version {
		c.invalidate()
		w.version, w.known = v, true
	}
	return nil
}

// read runs PRAGMA data_version on the watcher's connection, pinning one
// first if needed. It uses the driver's statement directly (through
// sql.Conn.Raw): database/sql's Stmt and Rows would add about ten
// allocations to every request. The context is not the request's: the
// driver watches a cancellable context with a goroutine per query, and the
// pragma does not wait for writers (WAL).
func (w *watcher) read(db *sql.DB) (int64, error) {
	if w.closed {
		return 0, errClosed
	}
	if w.conn == nil {
		conn, err := db.Conn(context.Background())
		if err != nil {
			return 0, err
		}
		w.conn, w.known = conn, false
		w.check = w.query
	}
	if err := w.conn.Raw(w.check); err != nil {
		return 0, fmt.Errorf("auth: %s: %w", w.versionSQL, err)
	}
	v, ok := w.dest[0].(int64)
	if !ok {
		return 0, fmt.Errorf("auth: %s returned %T", w.versionSQL, w.dest[0])
	}
	return v, nil
}

// query is w.check, run by sql.Conn.Raw with the driver's connection. On an
// error it closes the statement, while the connection is still valid.
func (w *watcher) query(dc any) (err error) {
	ctx := context.Background()
	if w.stmt == nil {
		p, ok := dc.(driver.ConnPrepareContext)
		if !ok {
			return fmt.Errorf("driver connection %T cannot prepare", dc)
		}
		if w.stmt, err = p.PrepareContext(ctx, w.versionSQL); err != nil {
			w.stmt = nil
			return err
		}
	}
	defer func() {
		if err != nil {
			w.stmt.Close()
			w.stmt = nil
		}
	}()
	q, ok := w.stmt.(driver.StmtQueryContext)
	if !ok {
		return fmt.Errorf("driver statement %T cannot query", w.stmt)
	}
	rows, err := q.QueryContext(ctx, nil)
	if err != nil {
		return err
	}
	w.dest[0] = nil
	err = rows.Next(w.dest[:])
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	return err
}

// drop gives the connection back (the next check pins another, whose
// first version is compared with nothing). w.connMu is held.
func (w *watcher) drop() {
	if w.conn == nil {
		return
	}
	if w.stmt != nil {
		w.conn.Raw(func(any) error { return w.stmt.Close() })
		w.stmt = nil
	}
	w.conn.Close()
	w.conn, w.known = nil, false
}

// close drops the connection for good.
func (w *watcher) close() {
	w.connMu.Lock()
	defer w.connMu.Unlock()
	w.closed = true
	w.drop()
}
