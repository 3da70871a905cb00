package ledger

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// Kinds of the [Change]s that admit a node's key to the ledger's keyring
// and end its validity (issue 22: each node of a shared database signs
// with its own key). Subject is the key id, Digest the SHA-256 of the
// key's 32 bytes; Body a [KeyAdmission] or a [KeyRevocation]. Both are
// signed by a key already in the keyring (the administrator's).
const (
	ChangeKeyAdmit  = "key_admit"
	ChangeKeyRevoke = "key_revoke"
)

// KeyAdmission is the body of a [ChangeKeyAdmit] change.
type KeyAdmission struct {
	KeyID     string `json:"key_id"`
	PublicKey string `json:"public_key"` // standard base64 of the 32 bytes
	// Node names the Hall node that keeps the key (a label the
	// administrator chose: hall keys show prints it).
	Node string `json:"node"`
	// AdmittedBy and AdmittedByPublicKey are the key that signs the
	// admission, so that a node holding only its own key can resolve
	// the administrator's signatures; a verifier trusts it only through
	// the keys it is given (VerifyOptions.Keys).
	AdmittedBy          string `json:"admitted_by"`
	AdmittedByPublicKey string `json:"admitted_by_public_key"`
	// Heads are the heads of every chain when the key was admitted:
	// entries at or before them cannot be signed by it. The change
	// chain's head is this admission itself.
	Heads []Head `json:"heads"`
}

// KeyRevocation is the body of a [ChangeKeyRevoke] change.
type KeyRevocation struct {
	KeyID  string `json:"key_id"`
	Node   string `json:"node,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Heads are the heads of every chain when the key was revoked:
	// entries after them cannot be signed by it. The change chain's
	// head is this revocation itself.
	Heads []Head `json:"heads"`
}

// keyEvent is an admission or revocation read from the change chain.
type keyEvent struct {
	kind      string // ChangeKeyAdmit or ChangeKeyRevoke
	keyID     string
	node      string
	pub       ed25519.PublicKey // the admitted key
	by        string            // the admission's signer (its body's claim)
	byPub     ed25519.PublicKey
	signer    string // signing_key_id of the change
	heads     map[string]uint64
	changeID  string
	seq       uint64
	at        string
	hash, sig string
}

// keyEvents reads the admissions and revocations of the change chain, in
// order, and the key that signed the chain's first change (the ledger's
// own first key, admitted at creation). Malformed bodies are skipped: the
// change walk reports the entry.
func keyEvents(ctx context.Context, q queryer) ([]keyEvent, string, error) {
	var first string
	err := q.QueryRowContext(ctx, `SELECT signing_key_id FROM changes ORDER BY seq LIMIT 1`).Scan(&first)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, "", err
	}
	rows, err := q.QueryContext(ctx, `SELECT seq, change_id, kind, recorded_at, signing_key_id, hash, signature, body FROM changes WHERE kind IN (?, ?) ORDER BY seq`,
		ChangeKeyAdmit, ChangeKeyRevoke)
	if err != nil {
		return nil, "", err
	}
	defer rows.Close()
	var out []keyEvent
	for rows.Next() {
		var e keyEvent
		var seq int64
		var body string
		if err := rows.Scan(&seq, &e.changeID, &e.kind, &e.at, &e.signer, &e.hash, &e.sig, &body); err != nil {
			return nil, "", err
		}
		e.seq = uint64(seq)
		var heads []Head
		if e.kind == ChangeKeyAdmit {
			var c struct {
				Body KeyAdmission `json:"body"`
			}
			if json.Unmarshal([]byte(body), &c) != nil {
				continue
			}
			pub, err1 := base64.StdEncoding.DecodeString(c.Body.PublicKey)
			by, err2 := base64.StdEncoding.DecodeString(c.Body.AdmittedByPublicKey)
			if err1 != nil || err2 != nil || len(pub) != ed25519.PublicKeySize || len(by) != ed25519.PublicKeySize || KeyID(pub) != c.Body.KeyID {
				continue
			}
			e.keyID, e.node, e.pub, e.by, e.byPub, heads = c.Body.KeyID, c.Body.Node, pub, c.Body.AdmittedBy, by, c.Body.Heads
		} else {
			var c struct {
				Body KeyRevocation `json:"body"`
			}
			if json.Unmarshal([]byte(body), &c) != nil {
				continue
			}
			e.keyID, e.node, heads = c.Body.KeyID, c.Body.Node, c.Body.Heads
		}
		e.heads = map[string]uint64{}
		for _, h := range heads {
			e.heads[posKey(h.Chain, h.Tenant)] = h.Sequence
		}
		out = append(out, e)
	}
	return out, first, rows.Err()
}

// qSigningKey is the ledger's own key and, when the process's key (both
// arguments) is another, the newest key change naming it (its standing in
// the keyring): one round trip per write transaction (syncKey), prepared
// with the hot statements. CASE evaluates the subquery only for a key
// that is not the ledger's own, so a single Hall pays one comparison.
const qSigningKey = `SELECT key_id, CASE WHEN key_id = ? THEN '' ELSE COALESCE((SELECT kind FROM changes WHERE subject = ? AND kind IN ('key_admit', 'key_revoke', 'key') ORDER BY seq DESC LIMIT 1), '') END FROM signing_key WHERE slot = 1`

// qKeyStanding is the newest admission or revocation of a key: its kind.
const qKeyStanding = `SELECT kind, body FROM changes WHERE subject = ? AND kind IN ('key_admit', 'key_revoke', 'key') ORDER BY seq DESC LIMIT 1`

// AdmitKey admits pub, the key of the Hall node named node, to the
// ledger's keyring: from the next write on, a process holding it signs
// for the ledger beside the ledger's own key. It records a
// [ChangeKeyAdmit] change, signed by this process's key (which must be
// the ledger's own: the administrator's), naming the key, the node, who admitted it and
// the heads of every chain at that moment. actor says who admitted it
// ("local:<user>").
//
// # Notes
//
//   - The write locks the whole ledger (as a rotation does), so that the
//     heads it records separate exactly the entries before the admission
//     from those after: hall audit verify reports an entry the key signed
//     at or before them.
//   - A key is admitted once: a key already admitted, revoked, rotated or
//     the ledger's own is refused.
func (s *SQLite) AdmitKey(ctx context.Context, pub ed25519.PublicKey, node, actor string) (*Change, error) {
	op := "admit key"
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("ledger: %s: %w", op, invalid("public_key", fmt.Sprintf("has %d bytes, want %d (an Ed25519 public key)", len(pub), ed25519.PublicKeySize)))
	}
	if err := checkLabel("node", node); err != nil {
		return nil, fmt.Errorf("ledger: %s: %w", op, err)
	}
	if err := checkLabel("actor", actor); err != nil {
		return nil, fmt.Errorf("ledger: %s: %w", op, err)
	}
	if s.key.Load() == nil {
		return nil, fmt.Errorf("ledger: %s: %w", op, s.keyError)
	}
	id := KeyID(pub)
	var rec Change
	err := s.submit(ctx, newWrite(op, func(tx *sql.Tx) error {
		cur := s.key.Load()
		if err := s.refuseKnownKey(tx, op, id, cur); err != nil {
			return err
		}
		heads, err := keyHeads(tx)
		if err != nil {
			return s.wrap(op, err)
		}
		body, err := canonicalMarshal(KeyAdmission{KeyID: id, PublicKey: base64.StdEncoding.EncodeToString(pub), Node: node,
			AdmittedBy: cur.id, AdmittedByPublicKey: base64.StdEncoding.EncodeToString(cur.pub), Heads: heads})
		if err != nil {
			return err
		}
		rec = Change{Kind: ChangeKeyAdmit, Subject: id, Digest: digestOf(pub), Body: body, Actor: actor,
			At: time.Now().UTC().Truncate(time.Microsecond), Version: formatV2, ChangeID: newChangeID()}
		return s.linkChange(tx, op, &rec)
	}, nil))
	if err != nil {
		return nil, err
	}
	return &rec, nil
}

// RevokeKey ends the validity of an admitted key: it records a
// [ChangeKeyRevoke] change, signed by this process's key, with the heads
// of every chain at that moment. A process holding the key signs nothing
// more (its next write fails with [ErrKeyNotAdmitted]), and hall audit
// verify reports an entry it signed after those heads. The ledger's own
// key is not revoked but rotated (RotateKey). reason is optional.
func (s *SQLite) RevokeKey(ctx context.Context, keyID, actor, reason string) (*Change, error) {
	op := "revoke key"
	if err := checkLabel("actor", actor); err != nil {
		return nil, fmt.Errorf("ledger: %s: %w", op, err)
	}
	if strings.ContainsFunc(reason, isControl) || len(reason) > 512 {
		return nil, fmt.Errorf("ledger: %s: %w", op, invalid("reason", "must be at most 512 characters without control characters"))
	}
	if s.key.Load() == nil {
		return nil, fmt.Errorf("ledger: %s: %w", op, s.keyError)
	}
	var rec Change
	err := s.submit(ctx, newWrite(op, func(tx *sql.Tx) error {
		slot, err := s.ownKeyOnly(tx, op, s.key.Load())
		if err != nil {
			return err
		}
		if keyID == slot {
			return fmt.Errorf("ledger: %s: %w: %s is the ledger's own key, not an admitted one: rotate it (hall keys rotate) instead", op, ErrKey, keyID)
		}
		var kind, body string
		err = tx.QueryRowContext(context.Background(), qKeyStanding, keyID).Scan(&kind, &body)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("ledger: %s: %w", op, invalid("key_id", fmt.Sprintf("%s was never admitted to this ledger's keyring (hall keys show --all lists the keys)", keyID)))
		case err != nil:
			return s.wrap(op, err)
		case kind != ChangeKeyAdmit:
			return fmt.Errorf("ledger: %s: %w", op, invalid("key_id", fmt.Sprintf("%s is not an admitted key any more (its latest key change is %q)", keyID, kind)))
		}
		var adm struct {
			Body KeyAdmission `json:"body"`
		}
		_ = json.Unmarshal([]byte(body), &adm)
		heads, err := keyHeads(tx)
		if err != nil {
			return s.wrap(op, err)
		}
		b, err := canonicalMarshal(KeyRevocation{KeyID: keyID, Node: adm.Body.Node, Reason: reason, Heads: heads})
		if err != nil {
			return err
		}
		digest := "sha256:" + strings.Repeat("0", 64)
		if raw, err := base64.StdEncoding.DecodeString(adm.Body.PublicKey); err == nil {
			digest = digestOf(raw)
		}
		rec = Change{Kind: ChangeKeyRevoke, Subject: keyID, Digest: digest, Body: b, Actor: actor,
			At: time.Now().UTC().Truncate(time.Microsecond), Version: formatV2, ChangeID: newChangeID()}
		return s.linkChange(tx, op, &rec)
	}, nil))
	if err != nil {
		return nil, err
	}
	return &rec, nil
}

// refuseKnownKey refuses to admit id when the ledger already knows it:
// its own key, or a key a change names (admitted, revoked, rotated); and
// refuses an admission by any key but the ledger's own (cur must be it).
func (s *SQLite) refuseKnownKey(tx *sql.Tx, op, id string, cur *signer) error {
	slot, err := s.ownKeyOnly(tx, op, cur)
	if err != nil {
		return err
	}
	if id == slot {
		return fmt.Errorf("ledger: %s: %w", op, invalid("public_key", fmt.Sprintf("%s is the ledger's own key: it signs already", id)))
	}
	var kind, body string
	err = tx.QueryRowContext(context.Background(), qKeyStanding, id).Scan(&kind, &body)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return s.wrap(op, err)
	case kind == ChangeKeyAdmit:
		return fmt.Errorf("ledger: %s: %w", op, invalid("public_key", fmt.Sprintf("%s is admitted already", id)))
	case kind == ChangeKeyRevoke:
		return fmt.Errorf("ledger: %s: %w", op, invalid("public_key", fmt.Sprintf("%s was revoked; a revoked key is never admitted again: give the node a new key (delete its keys/ed25519.key and restart it)", id)))
	}
	return fmt.Errorf("ledger: %s: %w", op, invalid("public_key", fmt.Sprintf("%s is a key of this ledger's rotations already", id)))
}

// ownKeyOnly returns the ledger's own key (the signing-key slot) and
// refuses when cur is not it: only the administrator's key, the ledger's
// own, admits and revokes. A node's admitted key that could admit others
// would outlive its own revocation through the keys it admitted.
func (s *SQLite) ownKeyOnly(tx *sql.Tx, op string, cur *signer) (string, error) {
	var slot string
	if err := tx.QueryRowContext(context.Background(), `SELECT key_id FROM signing_key WHERE slot = 1`).Scan(&slot); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", s.wrap(op, err)
	}
	if slot != "" && slot != cur.id {
		return "", fmt.Errorf("ledger: %s: %w: only the ledger's own key (%s, the administrator's) admits and revokes keys; this process holds %s, a node's admitted key: run the command with the administrator's --home or --key", op, ErrKey, slot, cur.id)
	}
	return slot, nil
}

// keyHeads is currentHeads and the change chain's next position: the
// heads an admission or revocation records (the change being written is
// the change chain's head).
func keyHeads(tx *sql.Tx) ([]Head, error) {
	heads, err := currentHeads(tx)
	if err != nil {
		return nil, err
	}
	var seq uint64
	if err := tx.QueryRowContext(context.Background(), `SELECT seq FROM change_head WHERE chain = 1`).Scan(&seq); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	return append(heads, Head{Chain: ChainChanges, Tenant: ChangeChain, Sequence: seq + 1}), nil
}

func checkLabel(field, v string) error {
	if strings.TrimSpace(v) == "" || strings.ContainsFunc(v, isControl) || len(v) > 128 {
		return invalid(field, "must be 1 to 128 characters without control characters")
	}
	return nil
}

// KeyStanding is where this process's signing key stands in the ledger's
// keyring (hall serve logs it and /health reports it).
type KeyStanding struct {
	KeyID string `json:"key_id"`
	// Standing is "own" (the ledger's own key: it signs), "admitted",
	// "revoked" or "not_admitted" (it signs nothing).
	Standing string `json:"standing"`
	// Admit is the command an administrator runs to admit the key, when
	// it is not admitted.
	Admit string `json:"admit,omitempty"`
}

// Signs reports whether the key may sign.
func (k KeyStanding) Signs() bool { return k.Standing == "own" || k.Standing == "admitted" }

// KeyStanding returns where this process's key stands. A ledger with no
// key yet (an empty database) reports "own": the first write makes it the
// ledger's key.
func (s *SQLite) KeyStanding(ctx context.Context) (KeyStanding, error) {
	k := s.key.Load()
	if k == nil {
		return KeyStanding{}, fmt.Errorf("ledger: key standing: %w", s.keyError)
	}
	var slot, kind string
	err := s.r.QueryRowContext(ctx, qSigningKey, k.id, k.id).Scan(&slot, &kind)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return KeyStanding{KeyID: k.id, Standing: "own"}, nil
	case err != nil:
		return KeyStanding{}, s.wrap("key standing", err)
	}
	return s.standingOf(k, slot, kind), nil
}

func (s *SQLite) standingOf(k *signer, slot, kind string) KeyStanding {
	switch {
	case slot == k.id:
		return KeyStanding{KeyID: k.id, Standing: "own"}
	case kind == ChangeKeyAdmit:
		return KeyStanding{KeyID: k.id, Standing: "admitted"}
	case kind == ChangeKeyRevoke:
		return KeyStanding{KeyID: k.id, Standing: "revoked"}
	}
	return KeyStanding{KeyID: k.id, Standing: "not_admitted", Admit: AdmitCommand(k.pub, nodeName())}
}

// AdmitCommand is the command that admits pub as node's key, run by an
// administrator whose key is in the keyring, against the same database.
func AdmitCommand(pub ed25519.PublicKey, node string) string {
	return fmt.Sprintf("hall keys admit %s --name %s --database-url URL", hex.EncodeToString(pub), node)
}

// nodeName is the default node name: the host name.
func nodeName() string {
	if h, err := os.Hostname(); err == nil && h != "" && !strings.ContainsAny(h, " \t\n") {
		return h
	}
	return "NODE"
}

// notAdmitted is the error of a process whose key may not sign.
func (s *SQLite) notAdmitted(k *signer, slot, kind string) error {
	switch kind {
	case ChangeKeyRevoke:
		return fmt.Errorf("%w: this node's signing key %s was revoked (hall keys revoke): it signs nothing more; give the node a new key (delete %s and restart it) and have it admitted", ErrKeyNotAdmitted, k.id, s.keyFileName())
	case ChangeKey:
		return fmt.Errorf("%w: this node's signing key %s was rotated out; restart it with the current key", ErrKeyNotAdmitted, k.id)
	}
	return fmt.Errorf("%w: this node's signing key %s is not the ledger's key (%s) and is not admitted to its keyring (or the ledger's key was rotated by hall keys rotate and this process holds the old one); until an administrator runs: %s, it signs nothing",
		ErrKeyNotAdmitted, k.id, slot, AdmitCommand(k.pub, nodeName()))
}

func (s *SQLite) keyFileName() string {
	if s.opts.keyPath != "" {
		return s.opts.keyPath
	}
	return "its key"
}

// unresolvable is, for a signature this process cannot check because it
// does not know the signing key, ErrKeyNotAdmitted when its own key may
// not sign (the ledger's own public key reaches a node in its admission,
// so a node not admitted yet cannot check the others' entries: it should
// say why, not call them altered), else nil.
func (s *SQLite) unresolvable(ctx context.Context) error {
	k := s.key.Load()
	if k == nil {
		return nil
	}
	var slot, kind string
	if err := s.r.QueryRowContext(ctx, qSigningKey, k.id, k.id).Scan(&slot, &kind); err != nil {
		return nil
	}
	if s.standingOf(k, slot, kind).Signs() {
		return nil
	}
	return fmt.Errorf("ledger: %w", s.notAdmitted(k, slot, kind))
}
