package host

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/wcphall/hall/internal/ledger"
	"github.com/wcphall/hall/internal/policy"
)

// Document returns the stored document of kind (rules, policy or config)
// as the snapshot source holds it: the files of Options, or a shared
// database.
func (h *Hall) Document(ctx context.Context, kind DocKind) (Doc, error) {
	if h.isClosed() {
		return Doc{}, ErrClosed
	}
	switch kind {
	case DocRules, DocPolicy, DocConfig:
	default:
		return Doc{}, fmt.Errorf("document kind %q: rules, policy or config", kind)
	}
	return h.src.Get(ctx, kind)
}

// DocumentError is a document ReplaceDocument refused: it does not parse
// or compile, or ifMatch does not name the stored one (Err wraps
// ErrPreconditionFailed). Nothing was recorded or stored.
type DocumentError struct {
	Kind DocKind
	Err  error
}

func (e *DocumentError) Error() string { return string(e.Kind) + ": " + e.Err.Error() }
func (e *DocumentError) Unwrap() error { return e.Err }

// ReplaceDocument replaces the document of kind with data, whole: the
// rules (as ReplaceRules), the policy set or the configuration
// (hall.json). The document is validated (it must compile as the Hall
// would load it), recorded in the evidence ledger (a signed change of kind
// "rules", "policy" or "config" naming who made it), stored in the
// snapshot source — when ifMatch is not "", only over the stored document
// of that digest — and the Hall reloads, so that it is in force (and
// recorded as a snapshot before the first decision under it) when
// ReplaceDocument returns. Other Halls sharing the source load it through
// Watch. who must be a recorded admin token's actor, as for ReplaceRules.
func (h *Hall) ReplaceDocument(ctx context.Context, kind DocKind, data []byte, ifMatch, who string) (digest string, err error) {
	if kind == DocRules {
		_, d, err := h.ReplaceRules(ctx, data, ifMatch, who)
		return d, err
	}
	if h.isClosed() {
		return "", ErrClosed
	}
	var changeKind string
	switch kind {
	case DocPolicy:
		if _, err := policy.Parse(string(kind), data); err != nil {
			return "", &DocumentError{kind, err}
		}
		changeKind = ledger.ChangePolicy
	case DocConfig:
		if _, err := ParseConfig(data); err != nil {
			return "", &DocumentError{kind, err}
		}
		changeKind = ledger.ChangeConfig
	default:
		return "", fmt.Errorf("document kind %q: rules, policy or config", kind)
	}
	if err := h.checkAdmin(ctx, actor(who)); err != nil {
		return "", err
	}
	store, err := h.evidenceStore()
	if err != nil {
		return "", err
	}
	if err := func() error {
		h.changeMu.Lock()
		defer h.changeMu.Unlock()
		cur, err := h.src.Get(ctx, kind)
		if err != nil {
			return err
		}
		if err := CheckIfMatch(cur, ifMatch); err != nil {
			return &DocumentError{kind, err}
		}
		ectx, cancel := evidenceContext(ctx)
		defer cancel()
		change := &ledger.Change{Kind: changeKind, Subject: cur.Name, Digest: digestOf(data), Body: compactJSON(data), Actor: actor(who), At: time.Now().UTC()}
		if err := store.RecordChange(ectx, change); err != nil {
			return fmt.Errorf("recording the %s change in the evidence ledger: %w; nothing was changed", kind, err)
		}
		if err := h.src.Put(ctx, kind, data, ifMatch); err != nil {
			if errors.Is(err, ErrPreconditionFailed) {
				return &DocumentError{kind, err}
			}
			return err
		}
		return nil
	}(); err != nil {
		return "", err
	}
	if err := h.Reload(ctx); err != nil {
		return "", fmt.Errorf("the %s document was stored but the Hall did not load it: %w", kind, err)
	}
	return digestOf(data), nil
}

// DocDigest is the digest of a stored document ("sha256:<hex>" of its
// bytes), or NoDocument when it is absent: what an ifMatch names.
func DocDigest(d Doc) string {
	if !d.Present {
		return NoDocument
	}
	return digestOf(d.Data)
}
