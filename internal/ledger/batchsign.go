package ledger

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"

	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/pgsql"
)

// One signature per stream per commit (docs/EVIDENCE.md, section 1, rule 4):
// in a batch committed without savepoints (commitPlain), the entries of
// a decision chain are inserted when the batch ends, and only the last
// entry of each stream in the batch is signed. The entries before it are
// covered through the hash chain: the signed entry's hash covers its
// prev_hash, which is the hash of the entry before, and so on back to the
// previous signed entry. A stream's newest entry is therefore always
// signed. Signing was a fifth of the committer's time at /wcp/route
// (issue 12); at 16 writes per commit it is now one signature per 16.
//
// The savepoint path (commitBatch, when a write of the batch failed) and a
// batch of one sign every entry, as before: a verifier accepts both.

// entryInsert is one decision-chain row, ready to insert.
type entryInsert struct {
	stream, id, kind, corr, at, hash, body string
	seq                                    uint64
	prev                                   any // nil for a stream's first entry
	sig                                    string
	// key is the key the body names (signing_key_id); it signs the row if
	// the row ends its stream's run in the batch.
	key *signer
}

// streamTail is a stream's newest entry of the batch being built.
type streamTail struct {
	seq  uint64
	hash string
	last int // index in batchTails.rows
}

// batchTails holds the decision-chain rows of a batch until it ends. Only
// the committer goroutine uses it.
type batchTails struct {
	on    bool
	rows  []entryInsert
	tails map[string]streamTail
	order []string // streams in the order they were first written
	// receipts is each receipt stream's newest receipt of the batch: the
	// next receipt links to it without reading the head row back, and the
	// head row is written once per stream when the batch ends.
	receipts map[string]receiptTail
	// decisions and receiptRows are the batch's decisions rows and
	// receipts, on PostgreSQL only: inserted with its entries when the
	// batch ends (flushEntriesPG).
	decisions   []decisionInsert
	receiptRows []receiptInsert
	// heads are the heads of the batch's chains ("e:<stream>",
	// "r:<tenant>") as the database held them once the batch's locks
	// were granted, read in one statement (prefetchHeads, PostgreSQL);
	// a chain in no head row is there with seq 0.
	heads map[string]chainHead
}

// chainHead is a chain's head row: its sequence number and hash.
type chainHead struct {
	seq  uint64
	hash string
}

// head returns chain's head as prefetchHeads read it, if it did.
func (b *batchTails) head(chain string) (chainHead, bool) {
	if !b.on {
		return chainHead{}, false
	}
	h, ok := b.heads[chain]
	return h, ok
}

// receiptInsert is one receipt, sealed, ready to insert.
type receiptInsert struct {
	c    Receipt
	prev any // nil for a stream's first receipt
	body string
}

// decisionInsert is one decisions row, ready to insert.
type decisionInsert struct {
	id, corr, tenant, capability, code, at string
	denied, dry                            bool
	seq                                    uint64
}

// receiptTail is a receipt stream's newest receipt of the batch.
type receiptTail struct {
	seq      uint64
	hash, id string
}

func (b *batchTails) begin() {
	b.on = true
	b.rows = b.rows[:0]
	b.decisions = b.decisions[:0]
	clear(b.receiptRows)
	b.receiptRows = b.receiptRows[:0]
	b.order = b.order[:0]
	if b.tails == nil {
		b.tails, b.receipts = map[string]streamTail{}, map[string]receiptTail{}
	}
	clear(b.tails)
	clear(b.receipts)
	clear(b.heads)
}

func (b *batchTails) end() {
	b.on = false
	clear(b.rows) // drop the bodies
	b.rows = b.rows[:0]
}

// get returns stream's newest entry in the batch, if the batch has one.
func (b *batchTails) get(stream string) (streamTail, bool) {
	if !b.on {
		return streamTail{}, false
	}
	t, ok := b.tails[stream]
	return t, ok
}

func (b *batchTails) add(r entryInsert) {
	if _, ok := b.tails[r.stream]; !ok {
		b.order = append(b.order, r.stream)
	}
	b.tails[r.stream] = streamTail{seq: r.seq, hash: r.hash, last: len(b.rows)}
	b.rows = append(b.rows, r)
}

// sign signs an entry's hash (the hex string, as every chain does).
func (k *signer) sign(hash string) string {
	return base64.StdEncoding.EncodeToString(ed25519.Sign(k.priv, []byte(hash)))
}

func (s *SQLite) insertEntry(tx *sql.Tx, r *entryInsert) error {
	return s.execTx(tx, qInsertEntry, r.stream, int64(r.seq), r.id, r.kind, r.corr, r.at, r.prev, r.hash, r.key.id, r.sig, r.body)
}

// flushEntries inserts the batch's decision-chain rows, signing the last
// of each stream, and moves each stream's head. It runs inside the
// batch's transaction after every write of it succeeded.
func (s *SQLite) flushEntries(tx *sql.Tx) error {
	if s.pg {
		return s.flushEntriesPG(tx)
	}
	b := &s.tails
	for tenant, t := range b.receipts {
		if err := s.execTx(tx, qUpsertStream, tenant, int64(t.seq), t.id, t.hash); err != nil {
			return err
		}
	}
	if len(b.rows) == 0 {
		return nil
	}
	for _, stream := range b.order {
		r := &b.rows[b.tails[stream].last]
		r.sig = r.key.sign(r.hash)
	}
	for i := range b.rows {
		if err := s.insertEntry(tx, &b.rows[i]); err != nil {
			return err
		}
	}
	for _, stream := range b.order {
		t := b.tails[stream]
		if err := s.execTx(tx, qUpsertEntry, stream, int64(t.seq), b.rows[t.last].id, t.hash); err != nil {
			return err
		}
	}
	return nil
}

// qFlushPG is flushEntries on PostgreSQL: the batch's entries, its
// decisions rows, its receipts and the heads of its chains in one
// statement (arrays unnested into rows, inserted in the batch's order),
// instead of a round trip to the database per row. It runs, like every
// write of the batch, after the chains' locks were taken and their heads
// read (see lockContext); UNIQUE (stream, seq) and (stream, prev_hash) of
// both kinds of chain still refuse a fork row by row.
const qFlushPG = `WITH e AS (
	INSERT INTO entries (stream, seq, entry_id, kind, correlation_id, recorded_at, prev_hash, hash, signing_key_id, signature, body)
	SELECT u.stream, u.seq, u.entry_id, u.kind, u.corr, u.at, u.prev, u.hash, u.key_id, u.sig, u.body
	FROM unnest(?::text[], ?::bigint[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[])
		WITH ORDINALITY AS u(stream, seq, entry_id, kind, corr, at, prev, hash, key_id, sig, body, n)
	ORDER BY u.n
), h AS (
	INSERT INTO entry_heads (stream, seq, entry_id, hash)
	SELECT u.stream, u.seq, u.entry_id, u.hash FROM unnest(?::text[], ?::bigint[], ?::text[], ?::text[]) AS u(stream, seq, entry_id, hash)
	ON CONFLICT (stream) DO UPDATE SET seq = excluded.seq, entry_id = excluded.entry_id, hash = excluded.hash
), d AS (
	INSERT INTO decisions (decision_id, correlation_id, tenant_id, capability_id, denied, deny_code, dry_run, decided_at, decision, entry_seq)
	SELECT u.id, u.corr, u.tenant, u.cap, u.denied, u.code, u.dry, u.at, '', u.seq
	FROM unnest(?::text[], ?::text[], ?::text[], ?::text[], ?::bigint[], ?::text[], ?::bigint[], ?::text[], ?::bigint[])
		WITH ORDINALITY AS u(id, corr, tenant, cap, denied, code, dry, at, seq, n)
	ORDER BY u.n
), r AS (
	INSERT INTO receipts (tenant_id, seq, receipt_id, correlation_id, worker_id, dispatched_at, prev_receipt_hash, receipt_hash, signing_key_id, signature, body)
	SELECT u.tenant, u.seq, u.id, u.corr, u.worker, u.at, u.prev, u.hash, u.key_id, u.sig, u.body
	FROM unnest(?::text[], ?::bigint[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[])
		WITH ORDINALITY AS u(tenant, seq, id, corr, worker, at, prev, hash, key_id, sig, body, n)
	ORDER BY u.n
)
INSERT INTO stream_heads (tenant_id, seq, receipt_id, receipt_hash)
SELECT u.tenant, u.seq, u.id, u.hash FROM unnest(?::text[], ?::bigint[], ?::text[], ?::text[]) AS u(tenant, seq, id, hash)
ON CONFLICT (tenant_id) DO UPDATE SET seq = excluded.seq, receipt_id = excluded.receipt_id, receipt_hash = excluded.receipt_hash`

// flushEntriesPG is flushEntries on PostgreSQL (qFlushPG).
func (s *SQLite) flushEntriesPG(tx *sql.Tx) error {
	b := &s.tails
	if len(b.rows) == 0 && len(b.decisions) == 0 && len(b.receiptRows) == 0 && len(b.receipts) == 0 {
		return nil
	}
	for _, stream := range b.order {
		r := &b.rows[b.tails[stream].last]
		r.sig = r.key.sign(r.hash)
	}
	n := len(b.rows)
	var (
		streams, ids, kinds, corrs, ats, hashes, keys, sigs, bodies = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		seqs                                                        = make([]int64, n)
		prevs                                                       = make([]*string, n)
	)
	for i := range b.rows {
		r := &b.rows[i]
		streams[i], seqs[i], ids[i], kinds[i], corrs[i], ats[i] = r.stream, int64(r.seq), r.id, r.kind, r.corr, r.at
		if p, ok := r.prev.(string); ok {
			prevs[i] = &p
		}
		hashes[i], keys[i], sigs[i], bodies[i] = r.hash, r.key.id, r.sig, r.body
	}
	hs := len(b.order)
	hStreams, hSeqs, hIDs, hHashes := make([]string, hs), make([]int64, hs), make([]string, hs), make([]string, hs)
	for i, stream := range b.order {
		t := b.tails[stream]
		hStreams[i], hSeqs[i], hIDs[i], hHashes[i] = stream, int64(t.seq), b.rows[t.last].id, t.hash
	}
	m := len(b.decisions)
	dIDs, dCorrs, dTenants, dCaps, dCodes, dAts := make([]string, m), make([]string, m), make([]string, m), make([]string, m), make([]string, m), make([]string, m)
	dDenied, dDry, dSeqs := make([]int64, m), make([]int64, m), make([]int64, m)
	for i, d := range b.decisions {
		dIDs[i], dCorrs[i], dTenants[i], dCaps[i], dCodes[i], dAts[i] = d.id, d.corr, d.tenant, d.capability, d.code, d.at
		dDenied[i], dDry[i], dSeqs[i] = boolInt(d.denied), boolInt(d.dry), int64(d.seq)
	}
	k := len(b.receiptRows)
	rTenants, rIDs, rCorrs, rWorkers, rAts, rHashes, rKeys, rSigs, rBodies := make([]string, k), make([]string, k), make([]string, k), make([]string, k), make([]string, k), make([]string, k), make([]string, k), make([]string, k), make([]string, k)
	rSeqs, rPrevs := make([]int64, k), make([]*string, k)
	for i := range b.receiptRows {
		r := &b.receiptRows[i]
		c := &r.c
		rTenants[i], rSeqs[i], rIDs[i], rCorrs[i], rWorkers[i], rAts[i] = c.TenantID, int64(c.Sequence), c.ReceiptID, c.CorrelationID, c.WorkerID, c.DispatchedAt.Format(wcp.TimeLayout)
		if p, ok := r.prev.(string); ok {
			rPrevs[i] = &p
		}
		rHashes[i], rKeys[i], rSigs[i], rBodies[i] = c.ReceiptHash, c.SigningKeyID, c.Signature, r.body
	}
	sh := len(b.receipts)
	sTenants, sSeqs, sIDs, sHashes := make([]string, 0, sh), make([]int64, 0, sh), make([]string, 0, sh), make([]string, 0, sh)
	for tenant, t := range b.receipts {
		sTenants, sSeqs, sIDs, sHashes = append(sTenants, tenant), append(sSeqs, int64(t.seq)), append(sIDs, t.id), append(sHashes, t.hash)
	}
	// Sent with COMMIT, in its round trip (pgsql.AtCommit): if it fails,
	// nothing is committed and commitPlain hands the batch to the
	// savepoint path.
	_, err := tx.ExecContext(pgsql.AtCommit(context.Background()), qFlushPG, streams, seqs, ids, kinds, corrs, ats, prevs, hashes, keys, sigs, bodies,
		hStreams, hSeqs, hIDs, hHashes,
		dIDs, dCorrs, dTenants, dCaps, dDenied, dCodes, dDry, dAts, dSeqs,
		rTenants, rSeqs, rIDs, rCorrs, rWorkers, rAts, rPrevs, rHashes, rKeys, rSigs, rBodies,
		sTenants, sSeqs, sIDs, sHashes)
	return err
}

// qChainHeads reads the heads of decision chains and receipt streams.
const qChainHeads = `SELECT 'e', stream, seq, hash FROM entry_heads WHERE stream = ANY(?::text[])
UNION ALL SELECT 'r', tenant_id, seq, receipt_hash FROM stream_heads WHERE tenant_id = ANY(?::text[])`

// prefetches are what a batch reads under its locks, sent with its BEGIN
// (pgsql.WithPrefetch, PostgreSQL): the signing key's id (into keyID, ""
// when no row holds one) and, in one statement, the head of every chain
// its writes name, into s.tails.heads; sealEntry and link then take the
// heads from there instead of a round trip per chain. They run once the
// locks are held, so, as the reads they replace, they see every append
// committed before (READ COMMITTED: a statement's snapshot is taken when
// it starts). A chain named by no write is read on its own, as before.
func (s *SQLite) prefetches(batch []*write, k *signer, keySigns *bool) []pgsql.Prefetch {
	qs := []pgsql.Prefetch{{Query: qSigningKey, Args: []any{k.id, k.id}, Row: func(v []any) error {
		id, ok := v[0].(string)
		kind, ok2 := v[1].(string)
		if !ok || !ok2 {
			return fmt.Errorf("signing_key: key_id is %T, standing %T", v[0], v[1])
		}
		// The process's key signs as it is: it is the ledger's own, or
		// admitted and not revoked since (syncKeyWith's fast cases).
		*keySigns = id == k.id || kind == ChangeKeyAdmit
		return nil
	}}}
	var es, rs []string
	for _, w := range batch {
		for _, c := range w.chains {
			if t, ok := strings.CutPrefix(c, "e:"); ok {
				es = append(es, t)
			} else if t, ok := strings.CutPrefix(c, "r:"); ok {
				rs = append(rs, t)
			}
		}
	}
	if len(es)+len(rs) == 0 {
		return qs
	}
	slices.Sort(es)
	es = slices.Compact(es)
	slices.Sort(rs)
	rs = slices.Compact(rs)
	b := &s.tails
	if b.heads == nil {
		b.heads = map[string]chainHead{}
	}
	// A chain without a head row is new. The map is used only if BEGIN,
	// and so the read below, succeeded.
	for _, t := range es {
		b.heads["e:"+t] = chainHead{}
	}
	for _, t := range rs {
		b.heads["r:"+t] = chainHead{}
	}
	return append(qs, pgsql.Prefetch{Query: qChainHeads, Args: []any{es, rs}, Row: func(v []any) error {
		kind, _ := v[0].(string)
		chain, _ := v[1].(string)
		seq, _ := v[2].(int64)
		hash, ok := v[3].(string)
		if kind == "" || !ok || seq < 1 {
			return fmt.Errorf("chain heads: unexpected row %v", v)
		}
		b.heads[kind+":"+chain] = chainHead{seq: uint64(seq), hash: hash}
		return nil
	}})
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// uncovered is a verifier's run of unsigned entries waiting for the
// signed entry that covers them.
type uncovered struct {
	n       int
	first   uint64
	firstID string
	keyID   string
}

// next takes the next entry of the stream, which linked to the run (its
// own checks passed): an unsigned one joins the run, a signed one covers
// it if it is signed by the run's key. It returns why the run is not
// covered, or "".
func (u *uncovered) next(unsigned bool, keyID, id string, seq uint64) string {
	switch {
	case unsigned && u.n == 0:
		*u = uncovered{n: 1, first: seq, firstID: id, keyID: keyID}
	case unsigned && keyID != u.keyID:
		return u.reason(fmt.Sprintf("entry %d names key %s, not %s: one commit is signed by one key", seq, keyID, u.keyID))
	case unsigned:
		u.n++
	case u.n > 0 && keyID != u.keyID:
		return u.reason(fmt.Sprintf("entry %d, which covers them, is signed by key %s, not %s", seq, keyID, u.keyID))
	default:
		*u = uncovered{}
	}
	return ""
}

func (u *uncovered) reason(why string) string {
	if u.n == 1 {
		return fmt.Sprintf("entry %d is unsigned and no signed entry covers it: %s", u.first, why)
	}
	return fmt.Sprintf("entries %d..%d are unsigned and no signed entry covers them: %s", u.first, u.first+uint64(u.n)-1, why)
}
