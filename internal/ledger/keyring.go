package ledger

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// ChangeKey is the [Change] kind of a key rotation: Subject is the new key
// id, Digest the SHA-256 of the new public key's 32 bytes, Body a
// [KeyRotation]. The entry is signed by the old key (its last signature);
// every later entry is signed by the new key.
const ChangeKey = "key"

// signer is the key this process signs with.
type signer struct {
	priv ed25519.PrivateKey
	pub  ed25519.PublicKey
	id   string
}

func newSigner(priv ed25519.PrivateKey) *signer {
	pub := priv.Public().(ed25519.PublicKey)
	return &signer{priv: priv, pub: pub, id: KeyID(pub)}
}

// WithKeyFile signs with the private key at path instead of
// <state dir>/keys/ed25519.key: a key kept outside the state directory
// (another volume, a secrets mount). The file is created on first use like
// the default one, with the same checks: PEM PKCS#8 Ed25519, mode 0600 or
// stricter. Rotation replaces it in place.
func WithKeyFile(path string) Option { return func(o *options) { o.keyPath = path } }

// WithKeyReader signs with the private key read once from r at Open, for
// example a file descriptor the Hall was started with (os.NewFile(3, "key"))
// so that the key never has a path the Hall's user can read. When r is an
// *os.File its mode is checked like a key file's. A ledger opened this way
// cannot rotate its key (the new key would have nowhere to go) and fails
// writes once another process has rotated it.
func WithKeyReader(r io.Reader) Option { return func(o *options) { o.keyReader = r } }

// readKeyFrom reads a PEM PKCS#8 Ed25519 private key from r.
func readKeyFrom(r io.Reader, name string) (ed25519.PrivateKey, error) {
	if f, ok := r.(*os.File); ok {
		fi, err := f.Stat()
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrKey, name, err)
		}
		if fi.Mode().IsRegular() && fi.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("%w: %s has mode %v; it must not be accessible to group or others (chmod 600)", ErrKey, name, fi.Mode().Perm())
		}
	}
	data, err := io.ReadAll(io.LimitReader(r, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrKey, name, err)
	}
	return parsePrivateKey(data, name)
}

func parsePrivateKey(data []byte, name string) (ed25519.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%w: %s: no PEM \"PRIVATE KEY\" block", ErrKey, name)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrKey, name, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: %s: key is %T, want ed25519", ErrKey, name, k)
	}
	return priv, nil
}

// syncKey runs at the start of every write transaction: it makes sure this
// process signs with the ledger's current key (table signing_key), picking
// up a rotation another process made, registers the key of a ledger that
// has none yet, and lets a key admitted to the keyring (AdmitKey) sign
// beside it. It runs after the transaction's locks are held, so a
// revocation committed before is seen: a revoked key signs nothing more.
func (s *SQLite) syncKey(tx *sql.Tx) error {
	k := s.key.Load()
	if k == nil {
		return s.keyError
	}
	return s.syncKeyWith(tx, s.queryRowTx(tx, qSigningKey, k.id, k.id))
}

// syncKeyWith is syncKey with the slot already queried (row, of
// qSigningKey with the process's key id).
func (s *SQLite) syncKeyWith(tx *sql.Tx, row *sql.Row) error {
	k := s.key.Load()
	if k == nil {
		return s.keyError
	}
	var id, kind string
	err := row.Scan(&id, &kind)
	if errors.Is(err, sql.ErrNoRows) {
		_, err = tx.ExecContext(context.Background(), `INSERT INTO signing_key (slot, key_id) VALUES (1, ?)`, k.id)
		return err
	}
	if err != nil || id == k.id || kind == ChangeKeyAdmit {
		return err
	}
	if s.opts.keyPath != "" {
		for _, p := range []string{s.opts.keyPath, s.opts.keyPath + nextSuffix} {
			if priv, err := readPrivateKey(p); err == nil && KeyID(priv.Public().(ed25519.PublicKey)) == id {
				s.key.Store(newSigner(priv))
				return nil
			}
		}
	}
	return s.notAdmitted(k, id, kind)
}

// nextSuffix names the new key file while a rotation commits.
const nextSuffix = ".next"

// KeyRotation is the body of a [ChangeKey] change.
type KeyRotation struct {
	OldKeyID     string `json:"old_key_id"`
	OldPublicKey string `json:"old_public_key"` // standard base64 of the 32 bytes
	NewKeyID     string `json:"new_key_id"`
	NewPublicKey string `json:"new_public_key"`
	// Heads are the heads of every chain when the old key signed for the
	// last time: entries at or before them are signed by the old key,
	// entries after them by the new key. The change chain's head is this
	// rotation entry itself.
	Heads []Head `json:"heads"`
	// Proof is the new key's signature (standard base64) of the RFC 8785
	// JSON of this object without proof: the new key vouches for the old
	// key's history up to Heads, so a verifier who trusts only the newest
	// key can still check every older entry.
	Proof string `json:"proof"`
}

// proofBytes is what Proof signs.
func (k *KeyRotation) proofBytes() ([]byte, error) {
	c := *k
	c.Proof = ""
	b, err := json.Marshal(struct {
		OldKeyID     string `json:"old_key_id"`
		OldPublicKey string `json:"old_public_key"`
		NewKeyID     string `json:"new_key_id"`
		NewPublicKey string `json:"new_public_key"`
		Heads        []Head `json:"heads"`
	}{c.OldKeyID, c.OldPublicKey, c.NewKeyID, c.NewPublicKey, c.Heads})
	if err != nil {
		return nil, err
	}
	return canonical(b)
}

// RotateKey replaces the signing key with a new one. In one transaction it
// records a [ChangeKey] change, signed by the old key, naming both keys and
// the heads of every chain at that moment, with the new key's proof; from
// the next write on, every process writing to the ledger signs with the
// new key. The new key replaces the old one in the key file (the old
// private key is gone: it can no longer sign anything, and its history is
// bound by the heads). actor says who rotated ("local:<user>").
func (s *SQLite) RotateKey(ctx context.Context, actor string) (*Change, error) {
	old := s.key.Load()
	if old == nil {
		return nil, fmt.Errorf("ledger: rotate key: %w", s.keyError)
	}
	if s.opts.keyPath == "" {
		return nil, fmt.Errorf("ledger: rotate key: %w: this ledger's key was given as a stream (WithKeyReader); rotate it where the key file lives", ErrKey)
	}
	if strings.TrimSpace(actor) == "" || strings.ContainsFunc(actor, isControl) {
		return nil, fmt.Errorf("ledger: rotate key: %w", invalid("actor", "is required and must not contain control characters"))
	}
	_, newPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("ledger: rotate key: %w: %v", ErrKey, err)
	}
	next := s.opts.keyPath + nextSuffix
	if err := writePrivateKey(next, newPriv); err != nil {
		return nil, fmt.Errorf("ledger: rotate key: %w", err)
	}
	ns := newSigner(newPriv)
	var rec Change
	op := "rotate key"
	err = s.submit(ctx, newWrite(op, func(tx *sql.Tx) error {
		cur := s.key.Load()
		var slot string
		if err := tx.QueryRowContext(context.Background(), `SELECT key_id FROM signing_key WHERE slot = 1`).Scan(&slot); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return s.wrap(op, err)
		}
		if slot != "" && slot != cur.id {
			// An admitted node's key: its successor would need an
			// admission of its own, which only an administrator gives.
			return fmt.Errorf("ledger: rotate key: %w: %s is a key admitted to the keyring, not the ledger's own key (%s): give the node a new key, have it admitted (hall keys admit) and revoke this one (hall keys revoke %s)", ErrKey, cur.id, slot, cur.id)
		}
		heads, err := currentHeads(tx)
		if err != nil {
			return s.wrap(op, err)
		}
		var seq uint64
		var head string
		if err := tx.QueryRowContext(context.Background(), `SELECT seq, hash FROM change_head WHERE chain = 1`).Scan(&seq, &head); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return s.wrap(op, err)
		}
		heads = append(heads, Head{Chain: ChainChanges, Tenant: ChangeChain, Sequence: seq + 1})
		kr := KeyRotation{OldKeyID: cur.id, OldPublicKey: base64.StdEncoding.EncodeToString(cur.pub),
			NewKeyID: ns.id, NewPublicKey: base64.StdEncoding.EncodeToString(ns.pub), Heads: heads}
		pb, err := kr.proofBytes()
		if err != nil {
			return err
		}
		kr.Proof = base64.StdEncoding.EncodeToString(ed25519.Sign(ns.priv, pb))
		body, err := json.Marshal(kr)
		if err != nil {
			return err
		}
		if body, err = canonical(body); err != nil {
			return err
		}
		rec = Change{Kind: ChangeKey, Subject: ns.id, Digest: digestOf(ns.pub), Body: body, Actor: actor,
			At: time.Now().UTC().Truncate(time.Microsecond), Version: formatV2, ChangeID: newChangeID()}
		if err := s.linkChange(tx, op, &rec); err != nil {
			return err
		}
		if _, err := tx.ExecContext(context.Background(), `UPDATE signing_key SET key_id = ? WHERE slot = 1`, ns.id); err != nil {
			return s.wrap(op, err)
		}
		// Later writes of this batch sign with the new key; if the
		// transaction fails, syncKey restores the old one from the file.
		s.key.Store(ns)
		return nil
	}, nil))
	if err != nil {
		os.Remove(next)
		return nil, err
	}
	if err := os.Rename(next, s.opts.keyPath); err != nil {
		return &rec, fmt.Errorf("ledger: rotate key: the rotation is recorded but the new key is still at %s: %w (move it to %s)", next, err, s.opts.keyPath)
	}
	syncDir(dirOf(s.opts.keyPath))
	return &rec, nil
}

// currentHeads returns the heads of every receipt stream and decision
// chain inside tx.
func currentHeads(tx *sql.Tx) ([]Head, error) {
	var heads []Head
	for _, q := range []struct{ chain, sql string }{
		{ChainReceipts, `SELECT tenant_id, seq, receipt_id, receipt_hash FROM stream_heads ORDER BY tenant_id`},
		{ChainDecisions, `SELECT stream, seq, entry_id, hash FROM entry_heads ORDER BY stream`},
	} {
		rows, err := tx.QueryContext(context.Background(), q.sql)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			h := Head{Chain: q.chain}
			var seq int64
			if err := rows.Scan(&h.Tenant, &seq, &h.ReceiptID, &h.ReceiptHash); err != nil {
				rows.Close()
				return nil, err
			}
			h.Sequence = uint64(seq)
			heads = append(heads, h)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return heads, nil
}

// writePrivateKey writes priv to path (0600, PEM PKCS#8), replacing it.
func writePrivateKey(path string, priv ed25519.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrKey, err)
	}
	if err := os.MkdirAll(dirOf(path), 0o700); err != nil {
		return fmt.Errorf("%w: %v", ErrKey, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrKey, err)
	}
	err = f.Chmod(0o600)
	if err == nil {
		err = pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%w: write %s: %v", ErrKey, path, err)
	}
	return nil
}

func dirOf(path string) string {
	if i := strings.LastIndexByte(path, '/'); i > 0 {
		return path[:i]
	}
	return "."
}

func isControl(r rune) bool { return r < 0x20 || (r >= 0x7f && r < 0xa0) }

// PublishedKey is one key of a [KeySet]: what `hall keys show --all`
// prints and an auditor pins.
type PublishedKey struct {
	KeyID     string `json:"key_id"`
	PublicKey string `json:"public_key"` // standard base64 of the 32 bytes
	// ValidFrom and ValidUntil are when the key started and stopped
	// signing (RFC 3339), from the rotation entries; "" for the first
	// key's start and the current key's end.
	ValidFrom  string `json:"valid_from,omitempty"`
	ValidUntil string `json:"valid_until,omitempty"`
	// RotatedIn and RotatedOut are the change ids of those rotations.
	RotatedIn  string `json:"rotated_in,omitempty"`
	RotatedOut string `json:"rotated_out,omitempty"`
	// Node, AdmittedIn and RevokedIn are, for a key admitted to the
	// keyring (hall keys admit), the node it was admitted for and the
	// change ids of its admission and revocation; ValidFrom and
	// ValidUntil are then their times.
	Node       string `json:"node,omitempty"`
	AdmittedIn string `json:"admitted_in,omitempty"`
	RevokedIn  string `json:"revoked_in,omitempty"`
}

// KeySet is the published set of a ledger's signing keys, oldest first.
type KeySet struct {
	Keys []PublishedKey `json:"keys"`
}

// Public returns the set's keys by id, checking that each id names its key.
func (ks *KeySet) Public() (map[string]ed25519.PublicKey, error) {
	out := map[string]ed25519.PublicKey{}
	for i, k := range ks.Keys {
		raw, err := base64.StdEncoding.DecodeString(k.PublicKey)
		if err != nil || len(raw) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("%w: keys[%d].public_key: want standard base64 of %d bytes", ErrKey, i, ed25519.PublicKeySize)
		}
		if KeyID(raw) != k.KeyID {
			return nil, fmt.Errorf("%w: keys[%d]: key_id %s does not name its public key (%s)", ErrKey, i, k.KeyID, KeyID(raw))
		}
		out[k.KeyID] = ed25519.PublicKey(raw)
	}
	return out, nil
}

// ParseKeySet reads a key set (JSON, as KeySets writes it), a PEM "PUBLIC
// KEY" block or 64 hex digits (one key).
func ParseKeySet(data []byte) (map[string]ed25519.PublicKey, error) {
	if t := strings.TrimSpace(string(data)); strings.HasPrefix(t, "{") {
		var ks KeySet
		if err := json.Unmarshal(data, &ks); err != nil {
			return nil, fmt.Errorf("%w: key set: %v", ErrKey, err)
		}
		if len(ks.Keys) == 0 {
			return nil, fmt.Errorf("%w: key set has no keys", ErrKey)
		}
		return ks.Public()
	}
	pub, err := ParsePublicKey(data)
	if err != nil {
		return nil, err
	}
	return map[string]ed25519.PublicKey{KeyID(pub): pub}, nil
}

// ReadKeySet reads a file in a format ParseKeySet accepts.
func ReadKeySet(path string) (map[string]ed25519.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKey, err)
	}
	ks, err := ParseKeySet(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ks, nil
}

// rotation is a parsed key rotation with its place in the change chain.
type rotation struct {
	KeyRotation
	changeID string
	seq      uint64
	at       string
	old, new ed25519.PublicKey
}

// rotations reads the key rotations of the change chain, in order. Their
// signatures are checked by the change chain's walk; here only their form.
func rotations(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}) ([]rotation, error) {
	rows, err := q.QueryContext(ctx, `SELECT seq, change_id, recorded_at, body FROM changes WHERE kind = ? ORDER BY seq`, ChangeKey)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []rotation
	for rows.Next() {
		var r rotation
		var seq int64
		var body string
		if err := rows.Scan(&seq, &r.changeID, &r.at, &body); err != nil {
			return nil, err
		}
		var c struct {
			Body KeyRotation `json:"body"`
		}
		if err := json.Unmarshal([]byte(body), &c); err != nil {
			continue // the change walk reports it
		}
		r.KeyRotation, r.seq = c.Body, uint64(seq)
		o, err1 := base64.StdEncoding.DecodeString(r.OldPublicKey)
		n, err2 := base64.StdEncoding.DecodeString(r.NewPublicKey)
		if err1 != nil || err2 != nil || len(o) != ed25519.PublicKeySize || len(n) != ed25519.PublicKeySize {
			continue
		}
		r.old, r.new = o, n
		out = append(out, r)
	}
	return out, rows.Err()
}

// keyRing is what a verification trusts: keys by id, and for each key the
// positions it may sign (from the rotations).
type keyRing struct {
	keys map[string]ed25519.PublicKey
	// verifiers check signatures by each key of keys (sigverify.go).
	verifiers map[string]*keyVerifier
	// after[key][chain/stream] is the last position before the key's
	// first; until[key] is nil for a key never rotated out.
	after, until map[string]map[string]uint64
	ids          []string // trusted ids, sorted, for messages
	// admitted[key] are the heads when the keyring admitted the key
	// (keyadmit.go), revoked[key] those when it was revoked; node[key]
	// the node it was admitted for.
	admitted, revoked map[string]map[string]uint64
	node              map[string]string
	// established holds the keys the change chain gives the right to
	// sign: the key of its first change (the ledger's own, admitted at
	// creation), the keys of its rotations and the admitted ones. A
	// trusted key outside it signs nothing. nil for a ledger older than
	// its change chain.
	established map[string]bool
	// signed counts, by key, the entries whose key and position check out
	// (Report.Signers).
	signed map[string]*atomic.Uint64
}

func posKey(chain, stream string) string { return chainOf(chain, stream) + "\x00" + stream }

// newKeyRing builds the ring from the trusted keys and the rotations:
// every key a trusted key vouched for by a rotation proof is trusted too.
func newKeyRing(trusted map[string]ed25519.PublicKey, rots []rotation) *keyRing {
	kr := &keyRing{keys: map[string]ed25519.PublicKey{}, after: map[string]map[string]uint64{}, until: map[string]map[string]uint64{}}
	for id, k := range trusted {
		kr.keys[id] = k
	}
	for i := len(rots) - 1; i >= 0; i-- {
		r := rots[i]
		nk, ok := kr.keys[r.NewKeyID]
		if !ok || !nk.Equal(r.new) || KeyID(r.old) != r.OldKeyID {
			continue
		}
		pb, err := r.proofBytes()
		sig, err2 := base64.StdEncoding.DecodeString(r.Proof)
		if err != nil || err2 != nil || !ed25519.Verify(nk, pb, sig) {
			continue
		}
		if _, ok := kr.keys[r.OldKeyID]; !ok {
			kr.keys[r.OldKeyID] = r.old
		}
	}
	for _, r := range rots {
		hm := map[string]uint64{}
		for _, h := range r.Heads {
			hm[posKey(h.Chain, h.Tenant)] = h.Sequence
		}
		if _, ok := kr.until[r.OldKeyID]; !ok {
			kr.until[r.OldKeyID] = hm
		}
		kr.after[r.NewKeyID] = hm
	}
	kr.index()
	return kr
}

// index rebuilds the verifiers, ids and counters from keys.
func (kr *keyRing) index() {
	kr.verifiers = make(map[string]*keyVerifier, len(kr.keys))
	kr.signed = make(map[string]*atomic.Uint64, len(kr.keys))
	kr.ids = kr.ids[:0]
	for id, k := range kr.keys {
		kr.ids = append(kr.ids, id)
		kr.verifiers[id] = newKeyVerifier(k)
		kr.signed[id] = new(atomic.Uint64)
	}
	slices.Sort(kr.ids)
}

// withAdmissions adds the keyring's admissions and revocations (in chain
// order) to kr: a key admitted by a change whose signer kr trusts, and
// whose signature by that key verifies, is trusted from the heads of its
// admission until those of its revocation; an admission counts only when
// the ledger's own key (first, or a key of its rotations) signed it. first is the key that signed
// the chain's first change; from then on a trusted key that the chain
// does not establish (first, rotations, admissions) signs nothing: being
// trusted by a verifier (a key set handed to it, a node's own key) is not
// being admitted.
func (kr *keyRing) withAdmissions(evs []keyEvent, first string, rots []rotation) *keyRing {
	if first == "" {
		return kr // a ledger older than its change chain: no keyring to check
	}
	kr.admitted, kr.revoked, kr.node = map[string]map[string]uint64{}, map[string]map[string]uint64{}, map[string]string{}
	// The ledger's own key and its rotations: the keys that admit.
	lineage := map[string]bool{first: true}
	for _, r := range rots {
		lineage[r.OldKeyID], lineage[r.NewKeyID] = true, true
	}
	kr.established = maps.Clone(lineage)
	for _, e := range evs {
		if e.kind == ChangeKeyRevoke {
			if _, ok := kr.revoked[e.keyID]; !ok {
				kr.revoked[e.keyID] = e.heads
			}
			continue
		}
		if _, ok := kr.admitted[e.keyID]; ok {
			continue
		}
		if !lineage[e.signer] {
			continue // only the ledger's own key admits (ownKeyOnly)
		}
		kr.admitted[e.keyID], kr.node[e.keyID], kr.established[e.keyID] = e.heads, e.node, true
		signer, ok := kr.keys[e.signer]
		sig, err := base64.StdEncoding.DecodeString(e.sig)
		if !ok || err != nil || !ed25519.Verify(signer, []byte(e.hash), sig) {
			continue // the change walk reports the admission itself
		}
		if _, ok := kr.keys[e.keyID]; !ok {
			kr.keys[e.keyID] = e.pub
		}
	}
	kr.index()
	return kr
}

// signers returns, by key, how many entries each trusted key signed (those
// whose key and position check out), with its node, oldest key id first.
func (kr *keyRing) signers() []Signer {
	var out []Signer
	for _, id := range kr.ids {
		if n := kr.signed[id].Load(); n > 0 {
			out = append(out, Signer{KeyID: id, Node: kr.node[id], Entries: n})
		}
	}
	return out
}

// Signer is one key that signed entries of a verified ledger
// ([Report.Signers]).
type Signer struct {
	KeyID string `json:"key_id"`
	// Node is the node the key was admitted for ("" for the ledger's own
	// key and its rotations).
	Node    string `json:"node,omitempty"`
	Entries uint64 `json:"entries"`
}

// check returns why an entry at (chain, stream, seq) signed by keyID over
// hash with sig does not verify, or "".
func (kr *keyRing) check(chain, stream string, seq uint64, keyID, hash, sig string) string {
	if reason := kr.verifySig(keyID, hash, sig); reason != "" {
		return reason
	}
	return kr.checkPosition(chain, stream, seq, keyID)
}

// checkDeferred is check with the signature's last step left in c: when
// pending is true, the entry fails with badSignature(keyID) if
// finishSigChecks finds c invalid, and with reason (possibly "") if not;
// when pending is false, reason is why it fails.
func (kr *keyRing) checkDeferred(chain, stream string, seq uint64, keyID, hash, sig string, c *sigCheck) (reason string, pending bool) {
	v, ok := kr.verifiers[keyID]
	if !ok {
		return kr.unknownKey(keyID), false
	}
	raw, err := base64.StdEncoding.DecodeString(sig)
	if err != nil || !v.start([]byte(hash), raw, c) {
		return badSignature(keyID), false
	}
	return kr.checkPosition(chain, stream, seq, keyID), true
}

// checkUnsigned is check for an entry without a signature of its own
// (batchsign.go): its key must be trusted and allowed at its position; a
// later entry's signature proves its content.
func (kr *keyRing) checkUnsigned(chain, stream string, seq uint64, keyID string) string {
	if _, ok := kr.verifiers[keyID]; !ok {
		return kr.unknownKey(keyID)
	}
	return kr.checkPosition(chain, stream, seq, keyID)
}

func (kr *keyRing) unknownKey(keyID string) string {
	if kr.established != nil && !kr.established[keyID] {
		return fmt.Sprintf("signed by key %s, not by %s: a key never admitted to the ledger's keyring", keyID, strings.Join(kr.ids, " or "))
	}
	return fmt.Sprintf("signed by key %s, not by %s", keyID, strings.Join(kr.ids, " or "))
}

func badSignature(keyID string) string {
	return fmt.Sprintf("signature does not verify with key %s: hash or signature altered", keyID)
}

// checkPosition returns why keyID may not sign position seq of the
// chain, or "".
func (kr *keyRing) checkPosition(chain, stream string, seq uint64, keyID string) string {
	reason := kr.position(chain, stream, seq, keyID)
	if c := kr.signed[keyID]; reason == "" && c != nil {
		c.Add(1)
	}
	return reason
}

func (kr *keyRing) position(chain, stream string, seq uint64, keyID string) string {
	pk := posKey(chain, stream)
	if kr.established != nil {
		if !kr.established[keyID] {
			return fmt.Sprintf("signed by key %s, which was never admitted to the ledger's keyring (hall keys admit), nor is it the ledger's own key", keyID)
		}
		if a, ok := kr.admitted[keyID]; ok && seq <= a[pk] {
			return fmt.Sprintf("signed by key %s (node %s), which was admitted to the keyring after position %d of this chain: signed before its admission", keyID, kr.node[keyID], a[pk])
		}
		if r, ok := kr.revoked[keyID]; ok && seq > r[pk] {
			return fmt.Sprintf("signed by key %s (node %s), which was revoked at position %d of this chain: signed after its revocation", keyID, kr.node[keyID], r[pk])
		}
	}
	if a, ok := kr.after[keyID]; ok && seq <= a[pk] {
		return fmt.Sprintf("signed by key %s, which was rotated in after position %d of this chain", keyID, a[pk])
	}
	if u, ok := kr.until[keyID]; ok && seq > u[pk] {
		return fmt.Sprintf("signed by key %s, which was rotated out at position %d of this chain: signed after its retirement", keyID, u[pk])
	}
	return ""
}

// checkpointSigner returns why keyID may not sign a checkpoint of heads:
// a key the keyring never admitted, or an admitted key revoked before
// the heads it names; "" otherwise. (Rotated-out keys are checked by the
// callers.)
func (kr *keyRing) checkpointSigner(keyID string, heads []Head) string {
	if kr.established == nil {
		return ""
	}
	if !kr.established[keyID] {
		return fmt.Sprintf("signed by key %s, which was never admitted to the ledger's keyring", keyID)
	}
	if r, ok := kr.revoked[keyID]; ok {
		for _, h := range heads {
			if h.Sequence > r[posKey(h.Chain, h.Tenant)] {
				return fmt.Sprintf("signed by key %s (node %s), which was revoked before the heads it names", keyID, kr.node[keyID])
			}
		}
	}
	return ""
}

// verifySig checks a signature by a trusted key, whatever its position.
func (kr *keyRing) verifySig(keyID, hash, sig string) string {
	v, ok := kr.verifiers[keyID]
	if !ok {
		return kr.unknownKey(keyID)
	}
	raw, err := base64.StdEncoding.DecodeString(sig)
	if err != nil || !v.verify([]byte(hash), raw) {
		return badSignature(keyID)
	}
	return ""
}

// KeySet returns the ledger's published key set: every key that has
// signed for it, oldest first, with the validity recorded by the
// rotations, and the keys admitted to its keyring with their nodes and
// validity. With no rotation and no admission it is the current key alone.
func (s *SQLite) KeySet(ctx context.Context) (*KeySet, error) {
	return s.keySetTx(ctx, s.r)
}

// keySetTx is KeySet read through q (a read transaction).
func (s *SQLite) keySetTx(ctx context.Context, q queryer) (*KeySet, error) {
	rots, err := rotations(ctx, q)
	if err != nil {
		return nil, s.wrap("key set", err)
	}
	evs, _, err := keyEvents(ctx, q)
	if err != nil {
		return nil, s.wrap("key set", err)
	}
	return s.keySetFrom(rots, evs)
}

func (s *SQLite) keySetFrom(rots []rotation, evs []keyEvent) (*KeySet, error) {
	ks := &KeySet{}
	at := map[string]int{}
	add := func(k PublishedKey) {
		if _, ok := at[k.KeyID]; !ok {
			at[k.KeyID] = len(ks.Keys)
			ks.Keys = append(ks.Keys, k)
		}
	}
	switch {
	case len(rots) > 0:
		for i, r := range rots {
			if i == 0 {
				add(PublishedKey{KeyID: r.OldKeyID, PublicKey: r.OldPublicKey})
			}
			ks.Keys[len(ks.Keys)-1].ValidUntil, ks.Keys[len(ks.Keys)-1].RotatedOut = r.at, r.changeID
			add(PublishedKey{KeyID: r.NewKeyID, PublicKey: r.NewPublicKey, ValidFrom: r.at, RotatedIn: r.changeID})
		}
	case len(evs) > 0 && evs[0].kind == ChangeKeyAdmit:
		// The ledger's own key admitted the first key: its public half
		// is in the admission (this process may hold an admitted key).
		add(PublishedKey{KeyID: evs[0].by, PublicKey: base64.StdEncoding.EncodeToString(evs[0].byPub)})
	default:
		k := s.key.Load()
		if k == nil {
			return nil, fmt.Errorf("ledger: key set: %w", s.keyError)
		}
		add(PublishedKey{KeyID: k.id, PublicKey: base64.StdEncoding.EncodeToString(k.pub)})
	}
	for _, e := range evs {
		if e.kind == ChangeKeyAdmit {
			add(PublishedKey{KeyID: e.by, PublicKey: base64.StdEncoding.EncodeToString(e.byPub)})
			add(PublishedKey{KeyID: e.keyID, PublicKey: base64.StdEncoding.EncodeToString(e.pub), Node: e.node, ValidFrom: e.at, AdmittedIn: e.changeID})
			continue
		}
		if i, ok := at[e.keyID]; ok && ks.Keys[i].RevokedIn == "" {
			ks.Keys[i].ValidUntil, ks.Keys[i].RevokedIn = e.at, e.changeID
		}
	}
	return ks, nil
}
