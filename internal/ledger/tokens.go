package ledger

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// ChangeToken: an API token was issued or revoked. Subject is the token's
// public id ("tok_<hex>"), Digest "sha256:" + hex SHA-256 of the canonical
// Body, Body a [TokenEvent], Actor who issued or revoked it. Neither the
// token nor its hash is ever recorded.
//
// A token is evidence only through these changes: the Hall lets a token
// answer approvals only when the chain records its issuance with a scope
// that may, and no revocation (issue 21: an approver token minted by
// writing .hall/auth.db alone approved a held request and verify passed).
const ChangeToken = "token"

// Events of a [TokenEvent].
const (
	TokenIssued  = "issued"
	TokenRevoked = "revoked"
)

// TokenEvent is the body of a [ChangeToken] change.
type TokenEvent struct {
	TokenID string `json:"token_id"`
	// Event is TokenIssued or TokenRevoked.
	Event string `json:"event"`
	// Scope is "admin", "tenant:<tenant_id>", "approver" or
	// "approver:<tenant_id>" (the tenant the approver belongs to).
	Scope     string `json:"scope"`
	Label     string `json:"label,omitempty"`
	CreatedAt string `json:"created_at,omitempty"`
	RevokedAt string `json:"revoked_at,omitempty"`
	// Binding, of an issuance, is TokenBinding of the token's id and the
	// hash its token database stores. It lets the Hall see that the hash
	// was not swapped since; it is not the hash and does not reveal it.
	Binding string `json:"binding,omitempty"`
}

// tokenBindingPurpose is the DerivedKey purpose of the bindings of
// issuances recorded before bindings were public (LegacyTokenBinding).
const tokenBindingPurpose = "hall token binding v1"

// TokenBinding returns "sha256:" + hex SHA-256("hall token binding v2",
// 0x00, id, 0x00, storedHash): what an issuance's Binding holds.
//
// # Notes
//
//   - It is keyless, so that every node of a shared database checks a
//     binding whatever key it signs with (issue 22: nodes sign with their
//     own keys), and a key rotation leaves tokens valid. The signature of
//     the issuance change is what makes the binding evidence; the binding
//     needs no secret because storedHash is the SHA-256 of a token of 256
//     random bits: its hash reveals nothing a guess could use.
func (s *SQLite) TokenBinding(id string, storedHash []byte) string {
	h := sha256.New()
	h.Write([]byte("hall token binding v2"))
	h.Write([]byte{0})
	h.Write([]byte(id))
	h.Write([]byte{0})
	h.Write(storedHash)
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// LegacyTokenBinding is the binding of issuances recorded before
// TokenBinding was keyless: hex HMAC-SHA256(k, id || 0x00 || storedHash),
// k the DerivedKey for token bindings ("" when the ledger has no signing
// key). It changes with the key: a rotation, or a node holding another
// key, voids it (re-issue those tokens).
func (s *SQLite) LegacyTokenBinding(id string, storedHash []byte) string {
	k := s.DerivedKey(tokenBindingPurpose)
	if k == nil {
		return ""
	}
	m := hmac.New(sha256.New, k)
	m.Write([]byte(id))
	m.Write([]byte{0})
	m.Write(storedHash)
	return hex.EncodeToString(m.Sum(nil))
}

// TokenChange returns the change recording e, made by actor, for
// [Store.RecordChange].
func TokenChange(e TokenEvent, actor string) (*Change, error) {
	if !strings.HasPrefix(e.TokenID, "tok_") || len(e.TokenID) > 64 || strings.ContainsFunc(e.TokenID, isControl) {
		return nil, invalid("token_id", fmt.Sprintf("%q is not a token id (tok_<hex>)", e.TokenID))
	}
	if e.Event != TokenIssued && e.Event != TokenRevoked {
		return nil, invalid("event", fmt.Sprintf("%q is not %q or %q", e.Event, TokenIssued, TokenRevoked))
	}
	body, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	cb, err := canonical(body)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(cb)
	return &Change{Kind: ChangeToken, Subject: e.TokenID, Digest: "sha256:" + hex.EncodeToString(sum[:]), Body: cb, Actor: actor, At: time.Now().UTC()}, nil
}

// ScopeMayApprove reports whether a token of scope (as a [TokenEvent]
// names it) may answer the approvals of tenant: an admin, or an approver
// that does not belong to tenant.
func ScopeMayApprove(scope, tenant string) bool {
	if scope == "admin" || scope == "approver" {
		return true
	}
	t, ok := strings.CutPrefix(scope, "approver:")
	return ok && t != tenant
}

// TokenStanding is what the signed change chain says of one token.
type TokenStanding struct {
	// Issued is its recorded issuance (nil when none is recorded).
	Issued *TokenEvent
	// Revoked is its recorded revocation (nil when none).
	Revoked *TokenEvent
}

// TokenStanding returns what the signed token changes naming id record,
// after checking each one's hash and signature and that it holds the
// token it names (an error wrapping errChangesAltered when one does not:
// hall audit verify says where).
func (s *SQLite) TokenStanding(ctx context.Context, id string) (TokenStanding, error) {
	var out TokenStanding
	rows, err := s.r.QueryContext(ctx, `SELECT change_id, body, hash, signature, signing_key_id FROM changes WHERE kind = ? AND subject = ? ORDER BY seq`, ChangeToken, id)
	if err != nil {
		return out, s.wrap("token standing", err)
	}
	defer rows.Close()
	type signed struct{ changeID, body, hash, sig, keyID string }
	var found []signed
	for rows.Next() {
		var c signed
		if err := rows.Scan(&c.changeID, &c.body, &c.hash, &c.sig, &c.keyID); err != nil {
			return out, s.wrap("token standing", err)
		}
		found = append(found, c)
	}
	if err := rows.Err(); err != nil {
		return out, s.wrap("token standing", err)
	}
	rows.Close()
	for _, f := range found {
		if hashBody([]byte(f.body)) != f.hash {
			return out, fmt.Errorf("ledger: token %s: %w: change %s does not hash to its hash", id, errChangesAltered, f.changeID)
		}
		pub := s.publicKey(ctx, s.r, f.keyID)
		if pub == nil {
			if err := s.unresolvable(ctx); err != nil {
				return out, err
			}
		}
		raw, derr := base64.StdEncoding.DecodeString(f.sig)
		if pub == nil || derr != nil || !ed25519.Verify(pub, []byte(f.hash), raw) {
			return out, fmt.Errorf("ledger: token %s: %w: the signature of change %s does not verify with key %s", id, errChangesAltered, f.changeID, f.keyID)
		}
		var c Change
		var e TokenEvent
		if err := json.Unmarshal([]byte(f.body), &c); err != nil || c.Kind != ChangeToken || c.Subject != id ||
			json.Unmarshal(c.Body, &e) != nil || e.TokenID != id {
			return out, fmt.Errorf("ledger: token %s: %w: change %s does not hold it", id, errChangesAltered, f.changeID)
		}
		switch {
		case e.Event == TokenIssued && out.Issued == nil:
			out.Issued = &e
		case e.Event == TokenRevoked && out.Revoked == nil:
			out.Revoked = &e
		}
	}
	return out, nil
}

// IssuedTokens returns the ids of the tokens whose issuance the change
// chain records (as its rows say; TokenStanding checks signatures).
func (s *SQLite) IssuedTokens(ctx context.Context) (map[string]bool, error) {
	cs, err := s.Changes(ctx, ChangeToken)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, c := range cs {
		var e TokenEvent
		if json.Unmarshal(c.Body, &e) == nil && e.Event == TokenIssued && e.TokenID == c.Subject {
			out[e.TokenID] = true
		}
	}
	return out, nil
}

// tokenWalk follows the token changes of the change chain for
// verification: each issued once, revoked only after its issuance.
type tokenWalk struct {
	// seen: a token change precedes (the Hall records tokens). Approvals
	// answered before the first one were answered by a Hall that did not
	// record tokens, and cannot be judged (docs/EVIDENCE.md, "Tokens").
	seen   bool
	tokens map[string]*tokenLife
}

type tokenLife struct {
	scope           string
	issued, revoked bool
	changeID        string
}

// step checks one token change; it returns why it breaks, or "".
func (w *tokenWalk) step(c *Change) string {
	w.seen = true
	var e TokenEvent
	if err := json.Unmarshal(c.Body, &e); err != nil || e.TokenID != c.Subject {
		return "token " + c.Subject + ": the change's body is not the token event it names"
	}
	if w.tokens == nil {
		w.tokens = map[string]*tokenLife{}
	}
	l := w.tokens[e.TokenID]
	switch e.Event {
	case TokenIssued:
		if l != nil {
			return fmt.Sprintf("token %s: issued again (first issued in change %s)", e.TokenID, l.changeID)
		}
		w.tokens[e.TokenID] = &tokenLife{scope: e.Scope, issued: true, changeID: c.ChangeID}
	case TokenRevoked:
		if l == nil {
			// A token issued before tokens were recorded may be revoked
			// after: its revocation is recorded, its issuance never was.
			w.tokens[e.TokenID] = &tokenLife{scope: e.Scope, revoked: true, changeID: c.ChangeID}
			return ""
		}
		l.revoked, l.changeID = true, c.ChangeID
	default:
		return fmt.Sprintf("token %s: unknown token event %q", e.TokenID, e.Event)
	}
	return ""
}

// mayAnswer returns why actor ("token:<id>") could not answer an approval
// of tenant at this point of the chain, or "".
func (w *tokenWalk) mayAnswer(actor, tenant string) string {
	if !w.seen {
		return ""
	}
	id := strings.TrimPrefix(actor, "token:")
	l := w.tokens[id]
	switch {
	case l == nil || !l.issued:
		return fmt.Sprintf("answered by token %s, whose issuance no earlier change records", id)
	case l.revoked:
		return fmt.Sprintf("answered by token %s, revoked in change %s before", id, l.changeID)
	case !ScopeMayApprove(l.scope, tenant):
		return fmt.Sprintf("answered by token %s, issued with scope %s, which may not answer tenant %s's approvals", id, l.scope, tenant)
	}
	return ""
}
