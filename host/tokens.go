package host

import (
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/ledger"
)

// ChangeToken is the ledger change kind of a token's issuance or
// revocation (ledger.ChangeToken): subject the token's public id, body
// its scope, label and creation or revocation time, never the token or
// its hash.
const ChangeToken = ledger.ChangeToken

// tokenEvidence is what an evidence store that records tokens can say of
// one: the local SQLite ledger.
type tokenEvidence interface {
	TokenStanding(ctx context.Context, id string) (ledger.TokenStanding, error)
	IssuedTokens(ctx context.Context) (map[string]bool, error)
	TokenBinding(id string, storedHash []byte) string
}

// tokenHashes is a token store that can show the hash it holds of a token
// (the local SQLite one): what a token's issuance binds.
type tokenHashes interface {
	StoredHash(ctx context.Context, id string) ([]byte, error)
}

// tokenBinding returns the binding of token id's stored hash in tokens,
// or "" when either cannot give one. legacy asks for the form of
// issuances recorded before bindings were keyless (under evidence's key).
func tokenBinding(ctx context.Context, tokens TokenStore, evidence EvidenceStore, id string, legacy bool) (string, error) {
	th, ok1 := tokens.(tokenHashes)
	te, ok2 := evidence.(tokenEvidence)
	if !ok1 || !ok2 {
		return "", nil
	}
	h, err := th.StoredHash(ctx, id)
	if err != nil {
		return "", err
	}
	if legacy {
		if lb, ok := evidence.(interface {
			LegacyTokenBinding(id string, storedHash []byte) string
		}); ok {
			return lb.LegacyTokenBinding(id, h), nil
		}
		return "", nil
	}
	return te.TokenBinding(id, h), nil
}

// IssueToken creates a token of scope in tokens and records its issuance
// in evidence, a signed change of kind "token" made by actor
// ("local:<user>", "token:<id>"), and returns the token in the clear
// (shown this once) with its public part.
//
// # Notes
//
//   - Only a token whose issuance the change chain records answers
//     approvals (Hall.DecideApproval): a token written into the token
//     database alone is refused, and hall audit verify reports an
//     approval answered by one.
//   - When the issuance cannot be recorded the token is revoked at once
//     and the error says so: no token exists that the evidence does not
//     hold.
func IssueToken(ctx context.Context, tokens TokenStore, evidence EvidenceStore, scope TokenScope, label, actor string) (string, Token, error) {
	if tokens == nil || evidence == nil {
		return "", Token{}, errors.New("IssueToken: the token and evidence stores are required")
	}
	secret, tok, err := tokens.Create(ctx, scope, label)
	if err != nil {
		return "", Token{}, err
	}
	binding, err := tokenBinding(ctx, tokens, evidence, tok.ID, false)
	var c *ledger.Change
	if err == nil {
		c, err = ledger.TokenChange(ledger.TokenEvent{TokenID: tok.ID, Event: ledger.TokenIssued, Scope: tok.Scope.String(), Label: tok.Name,
			CreatedAt: tok.CreatedAt.UTC().Format(time.RFC3339), Binding: binding}, actor)
	}
	if err == nil {
		err = evidence.RecordChange(ctx, c)
	}
	if err != nil {
		if _, rerr := tokens.Revoke(context.WithoutCancel(ctx), tok.ID); rerr != nil {
			return "", Token{}, fmt.Errorf("recording the issuance of token %s in the evidence ledger: %w; revoking it failed too (%v): revoke it with hall tokens revoke %s", tok.ID, err, rerr, tok.ID)
		}
		return "", Token{}, fmt.Errorf("recording the issuance of token %s in the evidence ledger: %w; the token was revoked, nothing was issued", tok.ID, err)
	}
	return secret, tok, nil
}

// RevokeToken revokes the token with id in tokens and records the
// revocation in evidence, a signed change of kind "token" made by actor,
// before the token database is changed: once recorded, the token answers
// no approval even if the database write fails. Revoking a revoked token
// records nothing more; an unknown id is an error wrapping
// ErrTokenNotFound.
func RevokeToken(ctx context.Context, tokens TokenStore, evidence EvidenceStore, id, actor string) (Token, error) {
	if tokens == nil || evidence == nil {
		return Token{}, errors.New("RevokeToken: the token and evidence stores are required")
	}
	list, err := tokens.List(ctx)
	if err != nil {
		return Token{}, err
	}
	var cur *Token
	for i := range list {
		if list[i].ID == id {
			cur = &list[i]
		}
	}
	if cur == nil {
		return Token{}, fmt.Errorf("%w: %s", ErrTokenNotFound, id)
	}
	if !cur.Revoked() {
		c, err := ledger.TokenChange(ledger.TokenEvent{TokenID: cur.ID, Event: ledger.TokenRevoked, Scope: cur.Scope.String(), Label: cur.Name,
			RevokedAt: time.Now().UTC().Format(time.RFC3339)}, actor)
		if err == nil {
			err = evidence.RecordChange(ctx, c)
		}
		if err != nil {
			return Token{}, fmt.Errorf("recording the revocation of token %s in the evidence ledger: %w; the token was not revoked", id, err)
		}
	}
	return tokens.Revoke(ctx, id)
}

// RecordedTokens returns the ids of the tokens whose issuance evidence
// records (hall tokens list marks the others: they answer no approval
// until re-issued). An evidence store that does not record tokens is an
// error.
func RecordedTokens(ctx context.Context, evidence EvidenceStore) (map[string]bool, error) {
	te, ok := evidence.(tokenEvidence)
	if !ok {
		return nil, fmt.Errorf("the evidence store (%T) does not record tokens", evidence)
	}
	return te.IssuedTokens(ctx)
}

// checkApprover returns why the token of actor ("token:<id>") may not
// answer an approval of tenant by the evidence — its signed issuance
// with a scope that may, and no signed revocation — or "" when it may.
// The token database alone decides nothing (issue 21).
func (h *Hall) checkApprover(ctx context.Context, actor, tenant string) (string, error) {
	store, err := h.evidenceStore()
	if err != nil {
		return "", err
	}
	te, ok := store.(tokenEvidence)
	if !ok {
		return fmt.Sprintf("the evidence store (%T) records no tokens, so no token's scope is evidence", store), nil
	}
	id := actor[len("token:"):]
	st, err := te.TokenStanding(ctx, id)
	if err != nil {
		return "", fmt.Errorf("reading the signed changes of token %s: %w", id, err)
	}
	switch {
	case st.Issued == nil:
		return fmt.Sprintf("token %s has no signed issuance in the evidence ledger (created before tokens were recorded, or written into the token database by hand): "+
			"issue a new one with hall tokens create --approver and revoke this one", id), nil
	case st.Revoked != nil:
		return fmt.Sprintf("token %s was revoked (signed change, %s)", id, st.Revoked.RevokedAt), nil
	case !ledger.ScopeMayApprove(st.Issued.Scope, tenant):
		return fmt.Sprintf("token %s was issued with scope %s, which may not answer tenant %s's approvals", id, st.Issued.Scope, tenant), nil
	}
	return h.checkBinding(ctx, store, id, st, "--approver")
}

// IssueToken is the package function IssueToken with the Hall's own
// evidence ledger: the token is created in tokens and its issuance
// recorded, actor who, in the ledger the Hall decides from.
func (h *Hall) IssueToken(ctx context.Context, tokens TokenStore, scope TokenScope, label, who string) (string, Token, error) {
	store, err := h.evidenceStore()
	if err != nil {
		return "", Token{}, err
	}
	return IssueToken(ctx, tokens, store, scope, label, actor(who))
}

// RevokeToken is the package function RevokeToken with the Hall's own
// evidence ledger.
func (h *Hall) RevokeToken(ctx context.Context, tokens TokenStore, id, who string) (Token, error) {
	store, err := h.evidenceStore()
	if err != nil {
		return Token{}, err
	}
	return RevokeToken(ctx, tokens, store, id, actor(who))
}

// checkAdmin refuses an admin action (ReplaceRules, Enroll) whose actor is
// a token ("token:<id>") unless the evidence records that token's
// issuance with admin scope and no revocation: an error with code
// ADMIN_TOKEN_UNRECORDED (403 over HTTP). Other actors ("local:<user>",
// "embedder", "file") are not tokens and pass. It reads the ledger once
// per admin action; authentication per request reads none.
func (h *Hall) checkAdmin(ctx context.Context, actor string) error {
	if !strings.HasPrefix(actor, "token:") {
		return nil
	}
	id := actor[len("token:"):]
	store, err := h.evidenceStore()
	if err != nil {
		return err
	}
	te, ok := store.(tokenEvidence)
	if !ok {
		return &codedError{wcp.CodeAdminTokenUnrecorded, fmt.Sprintf("the evidence store (%T) records no tokens, so token %s's admin scope is not evidence", store, id)}
	}
	st, err := te.TokenStanding(ctx, id)
	if err != nil {
		return fmt.Errorf("reading the signed changes of token %s: %w", id, err)
	}
	switch {
	case st.Issued == nil:
		return &codedError{wcp.CodeAdminTokenUnrecorded, fmt.Sprintf("token %s has no signed issuance in the evidence ledger (created before tokens were recorded, or written into the token database by hand): "+
			"issue a new one with hall tokens create --admin and revoke this one", id)}
	case st.Revoked != nil:
		return &codedError{wcp.CodeAdminTokenUnrecorded, fmt.Sprintf("token %s was revoked (signed change, %s)", id, st.Revoked.RevokedAt)}
	case st.Issued.Scope != "admin":
		return &codedError{wcp.CodeAdminTokenUnrecorded, fmt.Sprintf("token %s was issued with scope %s, not admin: issue an admin token with hall tokens create --admin", id, st.Issued.Scope)}
	}
	why, err := h.checkBinding(ctx, store, id, st, "--admin")
	if err != nil {
		return err
	}
	if why != "" {
		return &codedError{wcp.CodeAdminTokenUnrecorded, why}
	}
	return nil
}

// checkBinding returns why the token database's row of token id is not
// the one its signed issuance st binds (TokenEvent.Binding), or "": an
// issuance without a binding (recorded before bindings were, or by a
// store that cannot give one), a row whose hash was replaced, or a key
// rotated since, all refuse until the token is re-issued. The token
// database is the one UseTokens named, else Options.Stores.Tokens, else
// the one in Options.Home.
func (h *Hall) checkBinding(ctx context.Context, evidence EvidenceStore, id string, st ledger.TokenStanding, flag string) (string, error) {
	reissue := "issue a new one with hall tokens create " + flag + " and revoke this one"
	if st.Issued.Binding == "" {
		return fmt.Sprintf("token %s's signed issuance binds no token database row (issued before bindings were recorded): %s", id, reissue), nil
	}
	var tokens TokenStore
	if p := h.tokens.Load(); p != nil {
		tokens = *p
	} else if h.opts.Stores != nil && h.opts.Stores.Tokens != nil {
		tokens = h.opts.Stores.Tokens
	} else {
		local, err := OpenLocalTokens(h.opts.Home)
		if err != nil {
			return "", fmt.Errorf("opening the token database to check token %s: %w", id, err)
		}
		defer local.Close()
		tokens = local
	}
	got, err := tokenBinding(ctx, tokens, evidence, id, !strings.HasPrefix(st.Issued.Binding, "sha256:"))
	if errors.Is(err, ErrTokenNotFound) {
		return fmt.Sprintf("token %s is not in the token database", id), nil
	}
	if err != nil {
		return "", fmt.Errorf("reading token %s's row in the token database: %w", id, err)
	}
	if got == "" || !hmac.Equal([]byte(got), []byte(st.Issued.Binding)) {
		return fmt.Sprintf("token %s's row in the token database is not the one its signed issuance binds (its hash was replaced, or, for a token issued before bindings were keyless, the signing key rotated since or this node signs with another key): %s", id, reissue), nil
	}
	return "", nil
}

// UseTokens names the token store whose rows the Hall checks against
// their signed issuances when a token approves or administers (the store
// that authenticates the callers: host/server.New names its
// Config.Tokens). Without it the Hall reads Options.Stores.Tokens, else
// the token database in Options.Home. A nil tokens is ignored.
func (h *Hall) UseTokens(tokens TokenStore) {
	if tokens != nil {
		h.tokens.Store(&tokens)
	}
}
