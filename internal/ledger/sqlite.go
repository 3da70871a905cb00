package ledger

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/wcphall/hall/host/wcp"
	"modernc.org/sqlite"
)

// DBFile is the database's name inside the Hall state directory.
const DBFile = "hall.db"

// Sync is how hard a commit waits for the disk.
type Sync int

const (
	// SyncFull (the default) fsyncs the write-ahead log at every commit: a
	// receipt Append returned survives a power cut or kernel crash.
	SyncFull Sync = iota
	// SyncNormal fsyncs only at checkpoints: a receipt survives the Hall
	// being killed, but the last commits can be lost on power failure.
	SyncNormal
)

// Option configures [Open].
type Option func(*options)

type options struct {
	keyPath     string
	keyReader   io.Reader
	checkpoints CheckpointPolicy
	payloads    bool
	readOnly    bool
	busyTimeout time.Duration
	sync        Sync
	noMigrate   bool
}

// WithPayloads keeps receipts' InputPayload and OutputPayload. Without it
// Append drops them and only their hashes are kept: payloads may hold
// personal data an operator must opt in to retaining.
func WithPayloads() Option { return func(o *options) { o.payloads = true } }

// ReadOnly opens an existing ledger without write access (SQLite
// mode=ro): every write returns an error wrapping [ErrReadOnly], a missing
// database is an error, and no signing key is created.
func ReadOnly() Option { return func(o *options) { o.readOnly = true } }

// WithBusyTimeout sets how long a write waits for another process's write
// to finish before failing (default 10s).
func WithBusyTimeout(d time.Duration) Option { return func(o *options) { o.busyTimeout = d } }

// WithSync sets the commit durability (default [SyncFull]).
func WithSync(s Sync) Option { return func(o *options) { o.sync = s } }

// SQLite is the SQLite ledger engine. It implements [Store].
//
// # Notes
//
//   - The database runs in WAL mode: readers never block the writer.
//   - Writes from this process are group-committed: calls made at the same
//     time from several goroutines share one transaction and one fsync
//     (at most 256 writes each); a call returns when the transaction
//     holding its write has committed, with its own error if its write
//     failed. A lone call commits at once.
//   - A write whose ctx ends while it waits for a transaction returns ctx's
//     error and nothing is written; once in a transaction it commits or
//     fails with it, whatever ctx does.
//   - Writes from other processes are serialized by SQLite's lock (BEGIN
//     IMMEDIATE), waiting up to the busy timeout.
type SQLite struct {
	// w carries every write (one connection, BEGIN IMMEDIATE); r carries
	// reads (deferred transactions, query_only).
	w, r *sql.DB
	// queue feeds commitLoop, the only goroutine that writes through w;
	// stopped is closed when it has returned. mu guards closed and the
	// sends on queue, so Close cannot close queue under a sender.
	queue   chan *write
	stopped chan struct{}
	mu      sync.RWMutex
	closed  bool
	// commits counts the transactions commitLoop committed and written
	// the writes they carried: written/commits is the batching achieved.
	commits, written atomic.Uint64

	path string
	opts options
	// key is the signing key; the committer replaces it when a rotation
	// (this process's or another's) takes effect.
	key      atomic.Pointer[signer]
	keyError error
	// cp drives periodic checkpoints (checkpoint.go).
	cp checkpointer
	// stmts are the prepared hot statements; txStmts them bound to the
	// transaction stmtTx (stmts.go). The committer goroutine alone uses
	// them.
	stmts   map[string]*sql.Stmt
	txStmts map[string]*sql.Stmt
	stmtTx  *sql.Tx
	// tails holds a batch's decision-chain entries until it ends
	// (batchsign.go). The committer goroutine alone uses it.
	tails batchTails
	// wal checkpoints the WAL in the background (walcheckpoint.go).
	wal walCheckpointer
	// pg: the database is PostgreSQL (OpenPostgres), not SQLite.
	pg bool
}

var _ Store = (*SQLite)(nil)

// Open opens the ledger of the Hall state directory dir, creating dir
// (0700), the database dir/hall.db and the signing key dir/keys/ed25519.key
// (0600, in a 0700 directory) when they do not exist, and applying pending
// schema migrations.
//
// # Notes
//
//   - A state directory may be opened by several processes at once.
//   - Open refuses a private key file readable by group or others.
//   - With [ReadOnly] the key is optional: Verify then needs a public key.
func Open(dir string, opts ...Option) (*SQLite, error) {
	o := options{busyTimeout: 10 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	if !o.readOnly {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("ledger: %w", err)
		}
	}
	path := filepath.Join(dir, DBFile)
	s := &SQLite{path: path, opts: o, queue: make(chan *write, maxBatch), stopped: make(chan struct{})}
	// Nothing runs until Open succeeds: every error return below releases
	// what was opened before it (abandon), and the committer goroutine
	// starts last, so a failed Open leaves no goroutine and no handle
	// behind (TestOpenErrorPathsLeakNothing).
	var err error
	if s.w, err = sql.Open("sqlite", s.dsn(true)); err != nil {
		return nil, fmt.Errorf("ledger: open %s: %w", path, err)
	}
	s.w.SetMaxOpenConns(1)
	s.w.SetConnMaxIdleTime(0)
	if !o.readOnly {
		// Keep the WAL (and its index) on disk when the writer closes: a
		// one-shot process (hall run) then neither deletes it at exit nor
		// creates it again (and fsyncs the directory) at its first commit
		// (RATIONALE.md, "WAL kept between processes").
		if err := persistWAL(s.w); err != nil {
			s.abandon()
			return nil, fmt.Errorf("ledger: open %s: %w", path, err)
		}
	}
	if s.r, err = sql.Open("sqlite", s.dsn(false)); err != nil {
		s.abandon()
		return nil, fmt.Errorf("ledger: open %s: %w", path, err)
	}
	if err := s.loadSigningKey(dir); err != nil {
		s.abandon()
		return nil, err
	}
	// After the key: the migration's transaction signs the schema version.
	if err := migrate(context.Background(), s.w, o.readOnly, s.recordSchema); err != nil {
		s.abandon()
		return nil, s.wrap("open "+path, err)
	}
	go s.commitLoop()
	return s, nil
}

// abandon releases what a failed Open opened (the committer has not
// started; no statement was prepared, no write queued).
func (s *SQLite) abandon() {
	if s.r != nil {
		s.r.Close()
	}
	if s.w != nil {
		s.w.Close()
	}
}

// persistWAL sets SQLITE_FCNTL_PERSIST_WAL on the writer's connection
// (the only one: SetMaxOpenConns(1), never closed while idle).
func persistWAL(db *sql.DB) error {
	c, err := db.Conn(context.Background())
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Raw(func(dc any) error {
		fc, ok := dc.(sqlite.FileControl)
		if !ok {
			return nil
		}
		_, err := fc.FileControlPersistWAL("main", 1)
		return err
	})
}

// dsn builds the connection string. Pragmas are set per connection by the
// driver, so every pooled connection has them.
func (s *SQLite) dsn(writer bool) string {
	q := url.Values{}
	q.Set("_busy_timeout", strconv.FormatInt(s.opts.busyTimeout.Milliseconds(), 10))
	if s.opts.readOnly {
		// mode=ro is an SQLite URI parameter: it needs the file: form.
		q.Set("mode", "ro")
		return "file:" + (&url.URL{Path: s.path}).EscapedPath() + "?" + q.Encode()
	}
	q.Set("_journal_mode", "WAL")
	if writer {
		q.Set("_txlock", "immediate")
		// Savepoint sub-journals (one per write of a batch, commit.go) in
		// memory rather than a temporary file: written to a file they were
		// ~10% of a decision's cost (issue 12). They hold at most one
		// batch's changed pages and never need to survive a crash (the WAL
		// does).
		q.Add("_pragma", "temp_store(MEMORY)")
		if s.opts.sync == SyncNormal {
			q.Set("_synchronous", "NORMAL")
		} else {
			q.Set("_synchronous", "FULL")
		}
	} else {
		q.Set("_query_only", "1")
	}
	return "file:" + (&url.URL{Path: s.path}).EscapedPath() + "?" + q.Encode()
}

// Path returns the database file's path.
func (s *SQLite) Path() string { return s.path }

// PublicKey returns the ledger's signing public key, or nil when a
// read-only ledger has no key file.
func (s *SQLite) PublicKey() ed25519.PublicKey {
	if k := s.key.Load(); k != nil {
		return k.pub
	}
	return nil
}

// KeyID returns the signing key's id (see [KeyID]), or "" without a key.
func (s *SQLite) KeyID() string {
	if k := s.key.Load(); k != nil {
		return k.id
	}
	return ""
}

// Close closes the database. Writes already queued are committed first and
// their callers get their results; writes submitted after Close fail with
// [ErrClosed]. Calling Close again does nothing more.
func (s *SQLite) Close() error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.queue)
	}
	s.mu.Unlock()
	<-s.stopped
	s.cp.wg.Wait()
	s.closeStmts()
	errs := []error{s.wal.close()}
	if s.r != nil {
		errs = append(errs, s.r.Close())
	}
	if s.w != nil {
		errs = append(errs, s.w.Close())
	}
	return errors.Join(errs...)
}

// SQLite result codes the ledger turns into its own errors.
const (
	sqliteReadOnly = 8
	sqliteCantOpen = 14
)

// wrap adds op and maps SQLite's read-only conditions to ErrReadOnly.
func (s *SQLite) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqliteReadOnly:
			return fmt.Errorf("ledger: %s: %w (%v)", op, ErrReadOnly, err)
		case sqliteCantOpen:
			return fmt.Errorf("ledger: %s: cannot open %s (missing, or its directory is not writable): %w", op, s.path, err)
		}
	}
	if strings.HasPrefix(err.Error(), "ledger: ") {
		return err
	}
	return fmt.Errorf("ledger: %s: %w", op, err)
}

// Append implements [Store.Append].
func (s *SQLite) Append(ctx context.Context, r *Receipt) error {
	c, err := s.prepareReceipt(r)
	if err != nil {
		return err
	}
	return s.submit(ctx, onChains(newPureWrite("append", func(tx *sql.Tx) error { return s.link(tx, c) }, func() { *r = *c }), "r:"+c.TenantID))
}

// prepareReceipt checks r and returns the copy the committer links: what
// Append does before the committer.
func (s *SQLite) prepareReceipt(r *Receipt) (*Receipt, error) {
	if err := r.validate(); err != nil {
		return nil, fmt.Errorf("ledger: append: %w", err)
	}
	if s.key.Load() == nil {
		return nil, fmt.Errorf("ledger: append: %w", s.keyError)
	}
	c := *r
	c.DispatchedAt = r.DispatchedAt.UTC().Truncate(time.Microsecond)
	c.ControlsVerified = slices.Clone(r.ControlsVerified)
	if len(r.Envelope) > 0 {
		// A copy the caller cannot change under the queued write, in the
		// form the body will hold, so r reads back as it was stored.
		env, err := canonical(r.Envelope)
		if err != nil {
			return nil, fmt.Errorf("ledger: append: %w", invalid("privilege_envelope", err.Error()))
		}
		c.Envelope = env
	}
	if !s.opts.payloads {
		c.InputPayload, c.OutputPayload = nil, nil
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, fmt.Errorf("ledger: append: %w", err)
	}
	c.ReceiptID = id.String()
	c.Version = formatV2
	return &c, nil
}

// RecordDispatch records a dispatch that ran in one transaction: its
// decision, the events its worker emitted (none is fine) and its receipt,
// as RecordDecision, RecordDecisionEvents and Append would one after the
// other. Nothing is recorded unless all are. The Hall uses it for a
// worker whose envelope grants no way to change anything outside it
// (internal/ledger/RATIONALE.md, "Durability contract of a dispatch").
func (s *SQLite) RecordDispatch(ctx context.Context, d DecisionRecord, events []json.RawMessage, r *Receipt) error {
	dec, err := s.prepareDecision(d)
	if err != nil {
		return err
	}
	var evs *pendingEntry
	if len(events) > 0 {
		if evs, err = s.prepareEvents(d.DecisionID, d.CorrelationID, events); err != nil {
			return err
		}
	}
	c, err := s.prepareReceipt(r)
	if err != nil {
		return err
	}
	op := "record dispatch " + d.DecisionID
	// The events' stream is the decision's (sealEntry looks it up by id).
	return s.submit(ctx, onChains(newPureWrite(op, func(tx *sql.Tx) error {
		if err := s.sealEntry(tx, op, dec); err != nil {
			return err
		}
		if evs != nil {
			if err := s.sealEntry(tx, op, evs); err != nil {
				return err
			}
		}
		return s.link(tx, c)
	}, func() { *r = *c }), "e:"+dec.e.TenantID, "r:"+c.TenantID))
}

// link chains c to its stream's head, seals it and stores it. The head is
// read inside the write transaction (BEGIN IMMEDIATE: no other process can
// move it), after the earlier receipts of the same batch.
func (s *SQLite) link(tx *sql.Tx, c *Receipt) error {
	var seq uint64
	var head string
	if t, ok := s.tails.receipts[c.TenantID]; ok && s.tails.on {
		seq, head = t.seq, t.hash
	} else if h, ok := s.tails.head("r:" + c.TenantID); ok {
		seq, head = h.seq, h.hash
	} else if err := s.queryRowTx(tx, qStreamHead, c.TenantID).Scan(&seq, &head); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return s.wrap("append", err)
	}
	c.Sequence = seq + 1
	c.PrevReceiptHash = head
	k := s.key.Load()
	c.SigningKeyID = k.id
	body, err := c.CanonicalBody()
	if err != nil {
		return fmt.Errorf("ledger: append: %w", err)
	}
	c.ReceiptHash = hashBody(body)
	c.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(k.priv, []byte(c.ReceiptHash)))
	var prev any
	if c.PrevReceiptHash != "" {
		prev = c.PrevReceiptHash
	}
	if s.pg && s.tails.on {
		// Inserted with the batch's other rows, in one statement
		// (flushEntriesPG); a UNIQUE failure there sends the batch to
		// the savepoint path, which inserts it here and reports it.
		s.tails.receiptRows = append(s.tails.receiptRows, receiptInsert{c: *c, prev: prev, body: string(body)})
	} else if err := s.execTx(tx, qInsertReceipt,
		c.TenantID, int64(c.Sequence), c.ReceiptID, c.CorrelationID, c.WorkerID, c.DispatchedAt.Format(wcp.TimeLayout),
		prev, c.ReceiptHash, c.SigningKeyID, c.Signature, string(body)); err != nil {
		// UNIQUE(tenant_id, seq) failing means the head row no longer
		// matches the receipts: tampering, caught here before it forks.
		return s.wrap("append to stream "+strconv.Quote(c.TenantID), err)
	}
	if s.tails.on {
		// The head row is written when the batch ends (flushEntries).
		s.tails.receipts[c.TenantID] = receiptTail{seq: c.Sequence, hash: c.ReceiptHash, id: c.ReceiptID}
		return nil
	}
	if err := s.execTx(tx, qUpsertStream,
		c.TenantID, int64(c.Sequence), c.ReceiptID, c.ReceiptHash); err != nil {
		return s.wrap("append", err)
	}
	return nil
}

// Receipt implements [Store.Receipt]. The receipt returned is the one its
// key holder signed: a stored receipt whose body does not hash to its
// receipt_hash, or whose signature does not verify with the key it names
// (the current key or one the recorded rotations name), is refused, so
// that nothing the Hall does with it (hall replay runs the module it
// names) rests on a row edited with SQL.
func (s *SQLite) Receipt(ctx context.Context, id string) (*Receipt, error) {
	var body, hash, sig, keyID string
	err := s.r.QueryRowContext(ctx, `SELECT body, receipt_hash, signature, signing_key_id FROM receipts WHERE receipt_id = ?`, id).Scan(&body, &hash, &sig, &keyID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("ledger: receipt %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, s.wrap("receipt", err)
	}
	if got := hashBody([]byte(body)); got != hash {
		return nil, fmt.Errorf("ledger: receipt %q does not verify: its body hashes to %s, not its receipt_hash %s (altered; run hall audit verify)", id, got, hash)
	}
	pub := s.publicKey(ctx, s.r, keyID)
	if pub == nil {
		if err := s.unresolvable(ctx); err != nil {
			return nil, err
		}
	}
	raw, derr := base64.StdEncoding.DecodeString(sig)
	if pub == nil || derr != nil || !ed25519.Verify(pub, []byte(hash), raw) {
		return nil, fmt.Errorf("ledger: receipt %q does not verify: its signature is not key %s's (altered; run hall audit verify)", id, keyID)
	}
	return decodeReceipt(body, hash, sig)
}

func decodeReceipt(body, hash, sig string) (*Receipt, error) {
	var r Receipt
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		return nil, fmt.Errorf("ledger: stored receipt is malformed: %w", err)
	}
	r.ReceiptHash, r.Signature = hash, sig
	return &r, nil
}

// Receipts implements [Store.Receipts]. It holds every match in memory;
// [SQLite.ReceiptSeq] walks them one at a time.
func (s *SQLite) Receipts(ctx context.Context, f Filter) ([]Receipt, error) {
	var out []Receipt
	for r, err := range s.ReceiptSeq(ctx, f) {
		if err != nil {
			return nil, err
		}
		out = append(out, *r)
	}
	return out, nil
}

// ReceiptSeq yields the receipts [SQLite.Receipts] returns, in the same
// order (newest first), decoding each as the database hands it over:
// memory stays flat whatever their number (`hall receipts --json`
// streams through it).
//
// # Notes
//
//   - Breaking out of the loop ends the query.
//   - An error is yielded with a nil receipt and ends the sequence.
//   - The walk reads one snapshot; receipts committed meanwhile are not
//     in it.
func (s *SQLite) ReceiptSeq(ctx context.Context, f Filter) iter.Seq2[*Receipt, error] {
	return func(yield func(*Receipt, error) bool) {
		var where []string
		var args []any
		add := func(cond string, v any) {
			where = append(where, cond)
			args = append(args, v)
		}
		if f.CorrelationID != "" {
			add("correlation_id = ?", f.CorrelationID)
		}
		if f.TenantID != "" {
			add("tenant_id = ?", f.TenantID)
		}
		if f.WorkerID != "" {
			add("worker_id = ?", f.WorkerID)
		}
		if !f.Since.IsZero() {
			// The fixed-width UTC layout makes text order time order.
			add("dispatched_at >= ?", f.Since.UTC().Format(wcp.TimeLayout))
		}
		q := `SELECT body, receipt_hash, signature FROM receipts`
		if len(where) > 0 {
			q += " WHERE " + strings.Join(where, " AND ")
		}
		if f.TenantID != "" {
			// Within a stream seq follows id (both assigned in the
			// appending transaction); ordering by it lets UNIQUE(tenant_id,
			// seq) serve the newest-first walk and stop at the limit,
			// without sorting the whole stream.
			q += " ORDER BY seq DESC"
		} else {
			q += " ORDER BY id DESC"
		}
		if f.Limit > 0 {
			q += " LIMIT ?"
			args = append(args, f.Limit)
		}
		rows, err := s.r.QueryContext(ctx, q, args...)
		if err != nil {
			yield(nil, s.wrap("receipts", err))
			return
		}
		defer rows.Close()
		for rows.Next() {
			var body, hash, sig string
			if err := rows.Scan(&body, &hash, &sig); err != nil {
				yield(nil, s.wrap("receipts", err))
				return
			}
			r, err := decodeReceipt(body, hash, sig)
			if err != nil {
				yield(nil, err)
				return
			}
			if !yield(r, nil) {
				return
			}
		}
		if err := rows.Err(); err != nil {
			yield(nil, s.wrap("receipts", err))
		}
	}
}

// exportLine is [Receipt.MarshalJSON] of a stored receipt: for version 2,
// the canonical body with the two sealing members added,
// canonicalized once, instead of decoding the receipt and encoding it
// again.
func exportLine(body, hash, sig string) ([]byte, error) {
	var v struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil || v.Version < formatV2 || !strings.HasSuffix(body, "}") {
		// Version 1 bodies (and anything odd) go the long way, as before.
		r, err := decodeReceipt(body, hash, sig)
		if err != nil {
			return nil, err
		}
		line, err := r.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("ledger: export: %w", err)
		}
		return line, nil
	}
	b := make([]byte, 0, len(body)+len(hash)+len(sig)+40)
	b = append(b, body[:len(body)-1]...)
	b = append(b, `,"receipt_hash":`...)
	b = appendJCSString(b, hash)
	b = append(b, `,"signature":`...)
	b = appendJCSString(b, sig)
	b = append(b, '}')
	line, err := canonicalFor(v.Version, b)
	if err != nil {
		return nil, fmt.Errorf("ledger: export: stored receipt is malformed: %w", err)
	}
	return line, nil
}

// Export implements [Store.Export]. Each line is [Receipt.MarshalJSON]:
// canonical JSON with receipt_hash and signature; removing those two keys
// and hashing the canonical rest gives receipt_hash back.
func (s *SQLite) Export(ctx context.Context, w io.Writer) error {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true}) // one snapshot
	if err != nil {
		return s.wrap("export", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT body, receipt_hash, signature FROM receipts ORDER BY tenant_id, seq`)
	if err != nil {
		return s.wrap("export", err)
	}
	defer rows.Close()
	bw := bufio.NewWriter(w)
	for rows.Next() {
		var body, hash, sig string
		if err := rows.Scan(&body, &hash, &sig); err != nil {
			return s.wrap("export", err)
		}
		line, err := exportLine(body, hash, sig)
		if err != nil {
			return err
		}
		bw.Write(line)
		bw.WriteByte('\n')
	}
	if err := rows.Err(); err != nil {
		return s.wrap("export", err)
	}
	return bw.Flush()
}

// loadSigningKey reads the receipt-signing key that s's options name (the
// key stream, the key file, or dir/KeyFile) into s; one that cannot be
// read is an error unless s is read-only, which then keeps it as
// keyError (it can verify, not sign).
func (s *SQLite) loadSigningKey(dir string) error {
	o := s.opts
	if o.keyPath == "" {
		s.opts.keyPath = filepath.Join(dir, KeyFile)
	}
	var priv ed25519.PrivateKey
	var err error
	if o.keyReader != nil {
		s.opts.keyPath = ""
		priv, err = readKeyFrom(o.keyReader, "the key stream")
	} else {
		priv, err = loadKey(s.opts.keyPath, !o.readOnly)
	}
	switch {
	case err == nil:
		s.key.Store(newSigner(priv))
	case o.readOnly:
		s.keyError = err
	default:
		return fmt.Errorf("ledger: %w", err)
	}
	return nil
}
