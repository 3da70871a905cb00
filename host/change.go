package host

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/wcphall/hall/host/wcp"
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

// RulesDocument returns the rules document as it was loaded, and its
// digest ("sha256:<hex>"). It reads the snapshot source: when the source
// holds no rules document the error wraps fs.ErrNotExist, and when the
// stored document is not the one in force (changed and not reloaded yet)
// it is an error naming it.
func (h *Hall) RulesDocument() ([]byte, string, error) {
	if h.isClosed() {
		return nil, "", ErrClosed
	}
	d, err := h.src.Get(context.Background(), DocRules)
	if err != nil {
		return nil, "", err
	}
	if !d.Present {
		return nil, "", fmt.Errorf("rules %s: %w", d.Name, fs.ErrNotExist)
	}
	s := h.snap.Load()
	if digestOf(d.Data) != s.rulesDigest {
		return nil, "", fmt.Errorf("%s changed since it was loaded (reload to apply it)", d.Name)
	}
	return d.Data, s.rulesDigest, nil
}

// ReplaceRules validates a rules document and, when it compiles and shadows
// no rule, records the change (its digest, the document and actor) in the
// evidence ledger, stores it in the snapshot source (the rules file,
// replaced atomically) and swaps it in. When ifMatch is not "", the rules
// in force, and the rules stored, must have that digest (optimistic
// concurrency: two admins, or two Halls sharing a source, do not
// overwrite each other). A refused document leaves the rules in force
// unchanged (*RulesError).
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
	if err := h.checkAdmin(ctx, actor(who)); err != nil {
		return nil, "", err
	}
	h.changeMu.Lock()
	defer h.changeMu.Unlock()
	if cur := h.snap.Load().rulesDigest; ifMatch != "" && ifMatch != cur {
		return nil, "", &RulesError{fmt.Errorf("the rules in force are %s, not %s: read them again and retry", cur, ifMatch)}
	}
	if err := h.writeRules(ctx, rs, data, ifMatch, actor(who)); err != nil {
		if errors.Is(err, ErrPreconditionFailed) {
			return nil, "", &RulesError{err}
		}
		return nil, "", err
	}
	return rs.Warnings, digestOf(data), nil
}

// writeRules records a rules change, stores it (when ifMatch is not "",
// only over the stored rules of that digest) and makes it the rules in
// force. changeMu must be held.
func (h *Hall) writeRules(ctx context.Context, rs *router.RuleSet, data []byte, ifMatch, who string) error {
	store, err := h.evidenceStore()
	if err != nil {
		return err
	}
	if ifMatch != "" {
		// Checked before the change is recorded, so that a refused
		// replacement leaves no trace of rules that never came into
		// force; Put checks again, atomically where the source can.
		cur, err := h.src.Get(ctx, DocRules)
		if err != nil {
			return err
		}
		if err := CheckIfMatch(cur, ifMatch); err != nil {
			return err
		}
	}
	digest := digestOf(data)
	ectx, cancel := evidenceContext(ctx)
	defer cancel()
	cur := h.snap.Load()
	change := &ledger.Change{Kind: ledger.ChangeRules, Subject: cur.rulesName, Digest: digest, Body: compactJSON(data), Actor: who, At: time.Now().UTC()}
	if err := store.RecordChange(ectx, change); err != nil {
		return fmt.Errorf("recording the rules change in the evidence ledger: %w; the rules were not changed", err)
	}
	// A write refused here (another writer got in between) leaves a rules
	// change in the chain that never came into force: decisions name the
	// snapshot they were made under, which is recorded on its own
	// (snapshot_digest.go), so the chain still says which rules decided.
	if err := h.src.Put(ctx, DocRules, data, ifMatch); err != nil {
		return err
	}
	h.swap(cur.withRules(rs, data, who))
	return nil
}

// Reload reads the configuration, the rules, the policy file and the
// enrolled records from the snapshot source again (changes made by the
// CLI, another process, an editor or another Hall sharing the source) and swaps them in as one snapshot. When anything
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
	changed, err := h.reloadLocked(ctx)
	h.noteReload(changed, err)
	return err
}

// reloadLocked is Reload under changeMu; changed reports whether the
// snapshot in force changed.
func (h *Hall) reloadLocked(ctx context.Context) (changed bool, err error) {
	next, err := h.buildSnapshot(ctx)
	if err != nil {
		return false, err
	}
	prev := h.snap.Load()
	if next.rulesDigest != prev.rulesDigest && next.rulesDigest != "" {
		store, err := h.evidenceStore()
		if err == nil {
			ectx, cancel := evidenceContext(ctx)
			err = store.RecordChange(ectx, &ledger.Change{Kind: ledger.ChangeRules, Subject: next.rulesName, Digest: next.rulesDigest, Body: compactJSON(next.src.rulesDoc), Actor: "file", At: time.Now().UTC()})
			cancel()
		}
		// A node of a shared database whose key is not admitted yet signs
		// nothing, so decides nothing: it takes the new snapshot in all
		// the same (whoever changed the rules recorded them, and the
		// snapshot change, which holds them, is recorded before its first
		// decision once the key is admitted).
		if err != nil && !errors.Is(err, ledger.ErrKeyNotAdmitted) {
			return false, fmt.Errorf("reload: recording the rules change: %w; the previous snapshot keeps serving", err)
		}
	}
	changed = !next.sameAs(prev)
	if changed {
		h.swap(next)
	} else {
		h.snap.Store(next)
	}
	h.retire(ctx, next)
	return changed, nil
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
