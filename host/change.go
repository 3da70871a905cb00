package host

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/fsutil"
	"github.com/wcphall/hall/internal/ledger"
	"github.com/wcphall/hall/internal/router"
)

// RulesError is a rules document that was refused; the rules in force are
// unchanged.
type RulesError struct{ Err error }

func (e *RulesError) Error() string {
	return "rules refused, the rules in force are unchanged: " + e.Err.Error()
}
func (e *RulesError) Unwrap() error { return e.Err }

// Code is RULES_INVALID.
func (e *RulesError) Code() wcp.Code { return wcp.CodeRulesInvalid }

// RulesDocument returns the rules file as it was loaded, and its digest
// ("sha256:<hex>"; "" when the Hall runs without a rules file).
func (h *Hall) RulesDocument() ([]byte, string, error) {
	if h.isClosed() {
		return nil, "", ErrClosed
	}
	data, err := os.ReadFile(h.opts.Rules)
	if err != nil {
		return nil, "", err
	}
	s := h.snap.Load()
	if d := digestOf(data); d != s.rulesDigest {
		return nil, "", fmt.Errorf("%s changed on disk since it was loaded (reload to apply it)", h.opts.Rules)
	}
	return data, s.rulesDigest, nil
}

// ReplaceRules validates a rules document and, when it compiles and shadows
// no rule, writes it to the rules file atomically, records the change (its
// digest, the document and actor) in the evidence ledger and swaps it in.
// When ifMatch is not "", the rules in force must have that digest
// (optimistic concurrency: two admins do not overwrite each other). A
// refused document leaves the rules in force unchanged (*RulesError).
func (h *Hall) ReplaceRules(ctx context.Context, data []byte, ifMatch, who string) (warnings []string, digest string, err error) {
	if h.isClosed() {
		return nil, "", ErrClosed
	}
	rs, err := router.ParseRules(data)
	if err != nil {
		return nil, "", &RulesError{err}
	}
	if len(rs.Shadows) > 0 {
		return nil, "", &RulesError{fmt.Errorf("rule %s is shadowed by rule %s (every request it matches is matched earlier): reorder or remove it", rs.Shadows[0].Shadowed, rs.Shadows[0].Shadower)}
	}
	h.changeMu.Lock()
	defer h.changeMu.Unlock()
	if cur := h.snap.Load().rulesDigest; ifMatch != "" && ifMatch != cur {
		return nil, "", &RulesError{fmt.Errorf("the rules in force are %s, not %s: read them again and retry", cur, ifMatch)}
	}
	if err := h.writeRules(ctx, rs, data, actor(who)); err != nil {
		return nil, "", err
	}
	return rs.Warnings, digestOf(data), nil
}

// writeRules records a rules change and makes it the rules in force.
// changeMu must be held.
func (h *Hall) writeRules(ctx context.Context, rs *router.RuleSet, data []byte, who string) error {
	store, err := h.evidenceStore()
	if err != nil {
		return err
	}
	digest := digestOf(data)
	ectx, cancel := evidenceContext(ctx)
	defer cancel()
	change := &ledger.Change{Kind: ledger.ChangeRules, Subject: h.opts.Rules, Digest: digest, Body: compactJSON(data), Actor: who, At: time.Now().UTC()}
	if err := store.RecordChange(ectx, change); err != nil {
		return fmt.Errorf("recording the rules change in the evidence ledger: %w; the rules were not changed", err)
	}
	if err := fsutil.WriteFileAtomic(h.opts.Rules, data, 0o644); err != nil {
		return err
	}
	h.swap(h.snap.Load().withRules(rs, data, h.opts.Rules, who))
	return nil
}

// Reload reads the configuration, the rules, the policy file and the
// enrolled records from disk again (changes made by the CLI, another
// process or an editor) and swaps them in as one snapshot. When anything
// fails to load, the error says what and the snapshot in force keeps
// serving: never a half-applied change. Records that fail their seal are
// reported by Problems, as at Open.
//
// A rules file that changed is recorded at once (a change of kind
// "rules", actor "file"). Whatever changed — rules, hall.json, the policy
// file or its removal, records — is recorded with the whole snapshot (a
// change of kind "snapshot", actor "file") before the first decision made
// under it; a snapshot that cannot be recorded decides nothing
// (SNAPSHOT_UNRECORDED). See docs/EVIDENCE.md, "Snapshots".
func (h *Hall) Reload(ctx context.Context) error {
	if h.isClosed() {
		return ErrClosed
	}
	h.changeMu.Lock()
	defer h.changeMu.Unlock()
	next, err := h.buildSnapshot(ctx)
	if err != nil {
		return err
	}
	prev := h.snap.Load()
	if next.rulesDigest != prev.rulesDigest && next.rulesDigest != "" {
		data, rerr := os.ReadFile(h.opts.Rules)
		if rerr == nil && digestOf(data) == next.rulesDigest {
			store, lerr := h.evidenceStore()
			if lerr == nil {
				ectx, cancel := evidenceContext(ctx)
				err = store.RecordChange(ectx, &ledger.Change{Kind: ledger.ChangeRules, Subject: h.opts.Rules, Digest: next.rulesDigest, Body: compactJSON(data), Actor: "file", At: time.Now().UTC()})
				cancel()
			} else {
				err = lerr
			}
			if err != nil {
				return fmt.Errorf("reload: recording the rules change: %w; the previous snapshot keeps serving", err)
			}
		}
	}
	if !next.sameAs(prev) {
		h.swap(next)
	} else {
		h.snap.Store(next)
	}
	h.retire(ctx, next)
	return nil
}

// compactJSON is data as a JSON value for the ledger, or nil when it is
// not JSON (the digest still covers the bytes).
func compactJSON(data []byte) []byte {
	out, err := jsonCompact(data)
	if err != nil {
		return nil
	}
	return out
}
