package ledger

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/wcphall/hall/host/wcp"
)

// Kinds of [Change]. Kind is free-form lower-case text; these are the ones
// the Hall records.
const (
	// ChangeEnroll: a worker was enrolled (or re-enrolled). Subject is the
	// worker id, Digest the sealed record's digest, ArtifactHash the
	// module's, Body the sealed record.
	ChangeEnroll = "enroll"
	// ChangeRules: the routing rules were replaced. Subject is the rules
	// file, Digest the digest of its bytes, Body the document.
	ChangeRules = "rules"
	// ChangeConfig: the Hall's configuration was replaced. Subject is the
	// file, Digest the digest of its bytes, Body the document.
	ChangeConfig = "config"
	// ChangePolicy: a policy file came into force (recorded by earlier
	// Halls; the policy set is now part of ChangeSnapshot). Subject is the
	// file, Digest the digest of its bytes, Body the document.
	ChangePolicy = "policy"
	// ChangeSnapshot: a snapshot of everything that governs decisions and
	// dispatches (rules, policy set or its absence, configuration,
	// enrolled records, trust settings) was recorded before its first
	// decision. Subject is "snapshot", Digest the snapshot digest every
	// decision entry and receipt made under it names, Body its manifest
	// and the content of what changed (docs/EVIDENCE.md, "Snapshots").
	ChangeSnapshot = "snapshot"
)

// ChangeChain is the Tenant under which [Report.Breaks] and [Report.Heads]
// name the change chain. Append refuses it as a receipt's tenant, so it
// never names a receipt stream.
const ChangeChain = "(changes)"

// Change is the evidence of one change to what governs dispatch: an
// enrollment, replaced rules or configuration, with who made it and the
// digest of what was in force afterwards.
//
// Changes form one hash chain for the whole ledger, separate from the
// receipt streams: the caller fills the change fields; [Store.RecordChange]
// fills the chain fields (ChangeID through Signature).
//
// # Notes
//
//   - Hash is "sha256:" + hex SHA-256 of the change's canonical JSON
//     without hash and signature (see [Change.CanonicalBody]), with the
//     same canonical form as receipts.
//   - Signature is the standard base64 Ed25519 signature of the ASCII bytes
//     of Hash, by the key that signs receipts.
//   - The ledger does not recompute Digest from Body: for rules and
//     configuration Digest covers the file's bytes, Body its JSON document,
//     which need not be byte-identical.
type Change struct {
	// Chain fields, set by RecordChange.
	//
	// Version is the format version: 2 (RFC 8785) for changes recorded
	// now, 0 or 1 for changes recorded before (see [Receipt.Version]).
	Version  int
	ChangeID string // "chg_" + 32 hex digits
	Sequence uint64 // from 1, over the whole ledger
	// PrevHash is "" (JSON null) for the first change.
	PrevHash     string
	Hash         string
	SigningKeyID string
	Signature    string

	// Change fields, set by the caller.
	Kind string // ChangeEnroll, ChangeRules, ChangeConfig
	// Subject is what changed: the worker id (enroll) or the file (rules,
	// config).
	Subject string
	// Digest is "sha256:<hex>" of the canonical record JSON (enroll) or of
	// the file's bytes (rules, config).
	//
	// For a version 1 enrollment, [Store.Changes] returns the seal under
	// the current canonical form (what wcp.RecordDigest computes for the
	// same record), derived from the signed Body, and keeps the signed
	// value in DigestV1; see docs/EVIDENCE.md, "Versions".
	Digest string
	// DigestV1 is the signed version 1 seal when Changes re-expressed it in
	// Digest, else "".
	DigestV1 string
	// ArtifactHash is "sha256:<hex>" of the enrolled module; required for
	// ChangeEnroll, "" otherwise.
	ArtifactHash string
	// Body is the sealed record (enroll) or the document (rules, config),
	// any JSON value, stored canonicalized; may be empty.
	Body json.RawMessage
	// Actor says who made the change: "token:<id>", "local:<user>" or
	// "embedder".
	Actor string
	// At is when the change took effect, stored in UTC with microsecond
	// precision; RecordChange sets it to the current time when zero.
	At time.Time
}

// changeJSON is the wire form; every encoding goes through canonical.
type changeJSON struct {
	Version      int             `json:"version,omitempty"`
	ChangeID     string          `json:"change_id"`
	Sequence     uint64          `json:"sequence"`
	PrevHash     *string         `json:"prev_hash"`
	Hash         string          `json:"hash,omitempty"`
	SigningKeyID string          `json:"signing_key_id"`
	Signature    string          `json:"signature,omitempty"`
	Kind         string          `json:"kind"`
	Subject      string          `json:"subject"`
	Digest       string          `json:"digest"`
	ArtifactHash string          `json:"artifact_hash,omitempty"`
	Body         json.RawMessage `json:"body,omitempty"`
	Actor        string          `json:"actor"`
	At           string          `json:"at"`
}

func (c *Change) wire(withSeal bool) changeJSON {
	w := changeJSON{
		Version:      c.Version,
		ChangeID:     c.ChangeID,
		Sequence:     c.Sequence,
		SigningKeyID: c.SigningKeyID,
		Kind:         c.Kind,
		Subject:      c.Subject,
		Digest:       c.Digest,
		ArtifactHash: c.ArtifactHash,
		Body:         c.Body,
		Actor:        c.Actor,
		At:           c.At.UTC().Format(wcp.TimeLayout),
	}
	if c.PrevHash != "" {
		p := c.PrevHash
		w.PrevHash = &p
	}
	if withSeal {
		w.Hash = c.Hash
		w.Signature = c.Signature
	}
	return w
}

// CanonicalBody returns the bytes Hash is computed over: the change's JSON
// without hash and signature, in canonical form.
func (c *Change) CanonicalBody() ([]byte, error) {
	b, err := json.Marshal(c.wire(false))
	if err != nil {
		return nil, err
	}
	return canonicalFor(c.Version, b)
}

// ComputeHash returns "sha256:<hex>" of c's canonical body. It does not
// modify c.
func (c *Change) ComputeHash() (string, error) {
	body, err := c.CanonicalBody()
	if err != nil {
		return "", err
	}
	return hashBody(body), nil
}

// MarshalJSON writes the change with its hash and signature, in canonical
// form.
func (c Change) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(c.wire(true))
	if err != nil {
		return nil, err
	}
	return canonicalFor(c.Version, b)
}

// UnmarshalJSON reads the form MarshalJSON writes.
func (c *Change) UnmarshalJSON(b []byte) error {
	var w changeJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	at, err := time.Parse(time.RFC3339Nano, w.At)
	if err != nil {
		return fmt.Errorf("at: %w", err)
	}
	*c = Change{
		Version:      w.Version,
		ChangeID:     w.ChangeID,
		Sequence:     w.Sequence,
		Hash:         w.Hash,
		SigningKeyID: w.SigningKeyID,
		Signature:    w.Signature,
		Kind:         w.Kind,
		Subject:      w.Subject,
		Digest:       w.Digest,
		ArtifactHash: w.ArtifactHash,
		Body:         w.Body,
		Actor:        w.Actor,
		At:           at.UTC(),
	}
	if w.PrevHash != nil {
		c.PrevHash = *w.PrevHash
	}
	return nil
}

var changeKind = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// validate checks the caller's fields. Chain fields are ignored:
// RecordChange overwrites them.
func (c *Change) validate() error {
	if !changeKind.MatchString(c.Kind) {
		return invalid("kind", fmt.Sprintf("%q is not a lower-case word such as %q", c.Kind, ChangeEnroll))
	}
	if c.Subject == "" {
		return invalid("subject", "is required")
	}
	if strings.TrimSpace(c.Actor) == "" {
		return invalid("actor", "is required (token:<id>, local:<user> or embedder)")
	}
	if strings.ContainsFunc(c.Actor, isControl) {
		return invalid("actor", "must not contain control characters")
	}
	if !wcp.ValidArtifactHash(c.Digest) {
		return invalid("digest", fmt.Sprintf("%q is not sha256:<64 lowercase hex>", c.Digest))
	}
	if c.ArtifactHash != "" || c.Kind == ChangeEnroll {
		if !wcp.ValidArtifactHash(c.ArtifactHash) {
			return invalid("artifact_hash", fmt.Sprintf("%q is not sha256:<64 lowercase hex>", c.ArtifactHash))
		}
	}
	if len(c.Body) > 0 && !json.Valid(c.Body) {
		return invalid("body", "is not valid JSON")
	}
	if y := c.At.UTC().Year(); !c.At.IsZero() && (y < 1 || y > 9999) {
		return invalid("at", "year must be between 1 and 9999")
	}
	return nil
}

// newChangeID returns "chg_" and 32 random hex digits.
func newChangeID() string {
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		panic(fmt.Sprintf("ledger: crypto/rand: %v", err)) // never fails on supported platforms
	}
	return "chg_" + hex.EncodeToString(id[:])
}

// RecordChange implements [Store.RecordChange].
func (s *SQLite) RecordChange(ctx context.Context, c *Change) error {
	if err := c.validate(); err != nil {
		return fmt.Errorf("ledger: record change: %w", err)
	}
	if s.key.Load() == nil {
		return fmt.Errorf("ledger: record change: %w", s.keyError)
	}
	n := *c
	if n.At.IsZero() {
		n.At = time.Now()
	}
	n.At = n.At.UTC().Truncate(time.Microsecond)
	if len(c.Body) > 0 {
		body, err := canonical(c.Body)
		if err != nil {
			return fmt.Errorf("ledger: record change: %w", invalid("body", err.Error()))
		}
		n.Body = body
	}
	n.ChangeID = newChangeID()
	n.Version = formatV2
	op := "record change " + n.ChangeID
	return s.submit(ctx, onChains(newWrite(op, func(tx *sql.Tx) error { return s.linkChange(tx, op, &n) }, func() { *c = n }), "c"))
}

// linkChange chains n to the change head, seals it and stores it, inside
// the batch's BEGIN IMMEDIATE transaction (see link).
func (s *SQLite) linkChange(tx *sql.Tx, op string, n *Change) error {
	ctx := context.Background()
	var seq uint64
	var head string
	err := tx.QueryRowContext(ctx, `SELECT seq, hash FROM change_head WHERE chain = 1`).Scan(&seq, &head)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return s.wrap(op, err)
	}
	n.Sequence = seq + 1
	n.PrevHash = head
	k := s.key.Load()
	n.SigningKeyID = k.id
	body, err := n.CanonicalBody()
	if err != nil {
		return fmt.Errorf("ledger: %s: %w", op, err)
	}
	n.Hash = hashBody(body)
	n.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(k.priv, []byte(n.Hash)))
	var prev any
	if n.PrevHash != "" {
		prev = n.PrevHash
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO changes
		(seq, change_id, kind, subject, recorded_at, prev_hash, hash, signing_key_id, signature, body)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		int64(n.Sequence), n.ChangeID, n.Kind, n.Subject, n.At.Format(wcp.TimeLayout),
		prev, n.Hash, n.SigningKeyID, n.Signature, string(body)); err != nil {
		// UNIQUE(seq) failing means the head row no longer matches the
		// chain: tampering, caught here before it forks.
		return s.wrap(op, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO change_head (chain, seq, change_id, hash) VALUES (1, ?, ?, ?)
		ON CONFLICT (chain) DO UPDATE SET seq = excluded.seq, change_id = excluded.change_id, hash = excluded.hash`,
		int64(n.Sequence), n.ChangeID, n.Hash); err != nil {
		return s.wrap(op, err)
	}
	return nil
}

// Changes implements [Store.Changes].
func (s *SQLite) Changes(ctx context.Context, kind string) ([]Change, error) {
	q := `SELECT body, hash, signature FROM changes`
	var args []any
	if kind != "" {
		q += ` WHERE kind = ?`
		args = append(args, kind)
	}
	q += ` ORDER BY seq`
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, s.wrap("changes", err)
	}
	defer rows.Close()
	var out []Change
	for rows.Next() {
		var body, hash, sig string
		if err := rows.Scan(&body, &hash, &sig); err != nil {
			return nil, s.wrap("changes", err)
		}
		var c Change
		if err := json.Unmarshal([]byte(body), &c); err != nil {
			return nil, fmt.Errorf("ledger: stored change is malformed: %w", err)
		}
		c.Hash, c.Signature = hash, sig
		if c.Version < formatV2 && c.Kind == ChangeEnroll {
			if d := currentSeal(c.Digest, c.Body); d != "" && d != c.Digest {
				c.DigestV1, c.Digest = c.Digest, d
			}
		}
		out = append(out, c)
	}
	return out, s.wrap("changes", rows.Err())
}

// SignedChange returns the change with the given id as its signed row
// holds it, after checking that the row's body hashes to its hash, that
// the hash's signature verifies with the key the row names (the current
// key or one the recorded rotations name), and that the kind and subject
// columns say what the body says. Unlike [SQLite.Changes], it returns
// Digest as signed (a version 1 seal stays in Digest).
//
// It is what the Hall acts on when it takes a change's body for a fact
// (hall replay runs under the sealed record of an enroll change): a row
// edited with SQL is an error wrapping the reason, never a value (issue
// 21: an edited enroll body made a replay run under the edited
// envelope). An unknown id is an error wrapping [ErrNotFound].
//
// # Notes
//
//   - It checks one change, not its links: a change that verifies was
//     signed by the Hall, whatever else was done to the chain (hall audit
//     verify checks the links).
func (s *SQLite) SignedChange(ctx context.Context, changeID string) (*Change, error) {
	var kind, subject, body, hash, sig, keyID string
	err := s.r.QueryRowContext(ctx, `SELECT kind, subject, body, hash, signature, signing_key_id FROM changes WHERE change_id = ?`, changeID).
		Scan(&kind, &subject, &body, &hash, &sig, &keyID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("ledger: change %q: %w", changeID, ErrNotFound)
	}
	if err != nil {
		return nil, s.wrap("change", err)
	}
	if got := hashBody([]byte(body)); got != hash {
		return nil, fmt.Errorf("ledger: change %s: %w: its body hashes to %s, not to its hash %s", changeID, errChangesAltered, got, hash)
	}
	pub := s.publicKey(ctx, s.r, keyID)
	if pub == nil {
		if err := s.unresolvable(ctx); err != nil {
			return nil, err
		}
	}
	raw, derr := base64.StdEncoding.DecodeString(sig)
	if pub == nil || derr != nil || !ed25519.Verify(pub, []byte(hash), raw) {
		return nil, fmt.Errorf("ledger: change %s: %w: its signature does not verify with key %s", changeID, errChangesAltered, keyID)
	}
	var c Change
	if err := json.Unmarshal([]byte(body), &c); err != nil {
		return nil, fmt.Errorf("ledger: change %s: its signed body does not decode: %w", changeID, err)
	}
	if c.ChangeID != changeID || c.Kind != kind || c.Subject != subject {
		return nil, fmt.Errorf("ledger: change %s: %w: its row says %s change %s of %q, its signed body %s change %s of %q",
			changeID, errChangesAltered, kind, changeID, subject, c.Kind, c.ChangeID, c.Subject)
	}
	c.Hash, c.Signature = hash, sig
	return &c, nil
}

// errChangesAltered: the changes LastChange reads do not hold.
var errChangesAltered = errors.New("the change chain was altered (run hall audit verify)")

// LastChange returns the newest change of a kind, or nil when there is
// none: what [SQLite.Changes] returns last, without reading the others.
//
// The Hall decides from it whether a snapshot is already recorded, so it
// does not trust the kind column alone: it reads every change from the
// newest of that kind to the head of the chain with changesToHead (each
// body hashes to its hash, links to the one before, names the kind and
// subject its columns say; the head's signature verifies, which, through
// the links, covers them all). Anything else is an error: the change
// chain was altered, and hall audit verify says where. (Issue 21: a newer
// snapshot change hidden by editing its kind column let the Hall go back
// to an older snapshot without recording it.)
func (s *SQLite) LastChange(ctx context.Context, kind string) (*Change, error) {
	var from int64
	if err := s.r.QueryRowContext(ctx, `SELECT coalesce((SELECT max(seq) FROM changes WHERE kind = ?), 0)`, kind).Scan(&from); err != nil {
		return nil, s.wrap("last change", err)
	}
	var last *storedChange
	err := s.changesToHead(ctx, s.r, from, func(c *storedChange) error {
		if c.Kind == kind {
			cc := *c
			last = &cc
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: last %s change: %w", kind, err)
	}
	if last == nil {
		return nil, nil
	}
	return last.decode()
}

// storedChange is a change as changesToHead reads it: the members of its
// signed body that the walk checks, and the row.
type storedChange struct {
	ChangeID string  `json:"change_id"`
	Kind     string  `json:"kind"`
	Subject  string  `json:"subject"`
	PrevHash *string `json:"prev_hash"`

	body, hash, sig string
}

// decode is the whole change.
func (c *storedChange) decode() (*Change, error) {
	var out Change
	if err := json.Unmarshal([]byte(c.body), &out); err != nil {
		return nil, fmt.Errorf("ledger: stored change %s is malformed: %w", c.ChangeID, err)
	}
	out.Hash, out.Signature = c.hash, c.sig
	return &out, nil
}

// changesToHead reads, through q, every change from sequence from to the
// newest, in order, and calls visit with each (a fresh value each time)
// once it has checked that the change's body hashes to its hash, that it
// links to the change before it (from the second on), and that its kind
// and subject columns say what its body says. Once all are read, the
// newest change's signature must verify with the key it names: through
// the links it covers every change read. Any failed check is an error
// wrapping errChangesAltered and naming the change; visit's error is
// returned as is. When no change is at or after from, visit is not
// called and the result is nil. visit may keep the value it is given.
//
// The Hall acts on what it finds this way (LastChange, signedApproval),
// so a column edited with SQL cannot hide a newer change from it. Its
// cost is one SHA-256 and one JSON decode per change read, and one
// signature verification.
func (s *SQLite) changesToHead(ctx context.Context, q queryer, from int64, visit func(*storedChange) error) error {
	rows, err := q.QueryContext(ctx, `SELECT kind, subject, body, hash, signature, signing_key_id FROM changes WHERE seq >= ? ORDER BY seq`, from)
	if err != nil {
		return s.wrap("changes", err)
	}
	defer rows.Close()
	var prev *storedChange
	var headKey string
	for rows.Next() {
		var kind, subject, keyID string
		c := &storedChange{}
		if err := rows.Scan(&kind, &subject, &c.body, &c.hash, &c.sig, &keyID); err != nil {
			return s.wrap("changes", err)
		}
		// Only the members checked here are decoded: a full decode of
		// every change read was most of the walk's cost.
		if err := parseStoredChange(c.body, c); err != nil {
			return fmt.Errorf("%w: a stored change does not decode: %v", errChangesAltered, err)
		}
		body, hash := c.body, c.hash
		switch {
		case hashBody([]byte(body)) != hash:
			return fmt.Errorf("%w: change %s does not hash to its hash", errChangesAltered, c.ChangeID)
		case c.Kind != kind:
			return fmt.Errorf("%w: change %s is a %s change but its kind column says %q", errChangesAltered, c.ChangeID, c.Kind, kind)
		case c.Subject != subject:
			return fmt.Errorf("%w: change %s is a change of %q but its subject column says %q", errChangesAltered, c.ChangeID, c.Subject, subject)
		case prev != nil && (c.PrevHash == nil || *c.PrevHash != prev.hash):
			return fmt.Errorf("%w: change %s does not link to change %s", errChangesAltered, c.ChangeID, prev.ChangeID)
		}
		if err := visit(c); err != nil {
			return err
		}
		prev, headKey = c, keyID
	}
	if err := rows.Err(); err != nil {
		return s.wrap("changes", err)
	}
	if prev == nil {
		return nil
	}
	pub := s.publicKey(ctx, q, headKey)
	if pub == nil {
		if err := s.unresolvable(ctx); err != nil {
			return err
		}
	}
	raw, derr := base64.StdEncoding.DecodeString(prev.sig)
	if pub == nil || derr != nil || !ed25519.Verify(pub, []byte(prev.hash), raw) {
		return fmt.Errorf("%w: the signature of change %s, the head, does not verify with key %s", errChangesAltered, prev.ChangeID, headKey)
	}
	return nil
}
