package ledger

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/wcphall/hall/internal/approval"
)

// approvalWalk follows the approval changes of the change chain, in chain
// order, and reports the first one that no honest Hall writes: an answer,
// expiry or use of an approval that was never requested, an approval
// answered by anything but an approver token (or by the requesting
// tenant), a use without an earlier signed approval, a second use, or a
// use naming a decision that is not recorded or did not present the
// approval. It then checks that every approvals row agrees with the
// chain. (Issue 21: a row flipped to approved with SQL let the Hall sign
// requested -> used, and verify passed.)
type approvalWalk struct {
	life map[string]*approvalLife
	uses []approvalUse
	// tokens follows the token changes (tokens.go): an answer by a token
	// no earlier change issues with a scope that may answer, or that an
	// earlier change revokes, is reported.
	tokens tokenWalk
}

type approvalLife struct {
	state    approval.State
	tenant   string
	changeID string
}

type approvalUse struct {
	id, decisionID, changeID string
	seq                      uint64
}

// step checks one change the change walk accepted (its hash and signature
// hold); it returns the break it makes, or nil.
func (w *approvalWalk) step(row *changeRow) *Break {
	if row.kind == ChangeToken {
		var c Change
		reason := "token " + row.subject + ": the change does not decode"
		if json.Unmarshal([]byte(row.body), &c) == nil {
			reason = w.tokens.step(&c)
		}
		if reason != "" {
			return &Break{Chain: ChainChanges, Tenant: ChangeChain, ReceiptID: row.changeID, Sequence: row.seq, Reason: reason}
		}
		return nil
	}
	if !strings.HasPrefix(row.kind, "approval_") {
		// An admin action by a token (admin_verify.go).
		if reason := w.tokens.adminStep(row); reason != "" {
			return &Break{Chain: ChainChanges, Tenant: ChangeChain, ReceiptID: row.changeID, Sequence: row.seq, Reason: reason}
		}
		return nil
	}
	brk := func(format string, args ...any) *Break {
		return &Break{Chain: ChainChanges, Tenant: ChangeChain, ReceiptID: row.changeID, Sequence: row.seq,
			Reason: fmt.Sprintf("approval %s: ", row.subject) + fmt.Sprintf(format, args...)}
	}
	var c Change
	var a approval.Approval
	if err := json.Unmarshal([]byte(row.body), &c); err != nil {
		return brk("the change does not decode: %v", err)
	}
	if err := json.Unmarshal(c.Body, &a); err != nil || a.ID != c.Subject {
		return brk("the change's body is not the approval it names")
	}
	if w.life == nil {
		w.life = map[string]*approvalLife{}
	}
	prev := w.life[a.ID]
	var from []approval.State
	var to approval.State
	switch c.Kind {
	case ChangeApprovalRequested:
		if prev != nil {
			return brk("requested again (first requested in change %s)", prev.changeID)
		}
		to = approval.Pending
	case ChangeApprovalApproved, ChangeApprovalDenied:
		from, to = []approval.State{approval.Pending}, approval.Approved
		if c.Kind == ChangeApprovalDenied {
			to = approval.Denied
		}
		if !strings.HasPrefix(c.Actor, "token:") || a.DecidedBy != c.Actor {
			return brk("%s by %q (decided_by %q): an approval is answered by an approver token", c.Kind, c.Actor, a.DecidedBy)
		}
		if prev != nil && c.Actor == "tenant:"+prev.tenant {
			return brk("answered by its own tenant")
		}
		if reason := w.tokens.mayAnswer(c.Actor, a.TenantID); reason != "" {
			return brk("%s", reason)
		}
	case ChangeApprovalExpired:
		from, to = []approval.State{approval.Pending, approval.Approved}, approval.Expired
	case ChangeApprovalUsed:
		from, to = []approval.State{approval.Approved}, approval.Used
		if a.UsedBy == "" {
			return brk("used by no decision (used_by_decision_id is empty)")
		}
		w.uses = append(w.uses, approvalUse{id: a.ID, decisionID: a.UsedBy, changeID: row.changeID, seq: row.seq})
	default:
		return brk("unknown approval change kind %q", c.Kind)
	}
	if from != nil {
		switch {
		case prev == nil:
			return brk("%s but never requested", c.Kind)
		case !containsState(from, prev.state):
			if c.Kind == ChangeApprovalUsed {
				return brk("used while %s: no signed approval_approved precedes this use", prev.state)
			}
			return brk("%s while %s", c.Kind, prev.state)
		case a.TenantID != prev.tenant:
			return brk("%s names tenant %q, requested by %q", c.Kind, a.TenantID, prev.tenant)
		}
	}
	if a.State != to {
		return brk("%s holds state %q, want %q", c.Kind, a.State, to)
	}
	if prev == nil {
		prev = &approvalLife{tenant: a.TenantID}
		w.life[a.ID] = prev
	}
	prev.state, prev.changeID = to, row.changeID
	return nil
}

func containsState(set []approval.State, s approval.State) bool {
	for _, x := range set {
		if x == s {
			return true
		}
	}
	return false
}

// end checks, inside the verification's snapshot, that every use names a
// recorded decision that presented the approval, that every approvals
// row agrees with the chain, and that every approval of the chain has its
// row.
func (w *approvalWalk) end(ctx context.Context, tx *sql.Tx) (*Break, error) {
	for _, u := range w.uses {
		var body string
		err := tx.QueryRowContext(ctx, `SELECT body FROM entries WHERE entry_id = ? AND kind = ?`, u.decisionID, entryDecision).Scan(&body)
		brk := func(reason string) *Break {
			return &Break{Chain: ChainChanges, Tenant: ChangeChain, ReceiptID: u.changeID, Sequence: u.seq, Reason: "approval " + u.id + ": " + reason}
		}
		if errors.Is(err, sql.ErrNoRows) {
			return brk("used by decision " + u.decisionID + ", which is not recorded"), nil
		}
		if err != nil {
			return nil, err
		}
		var e struct {
			Decision struct {
				Policy *struct {
					ApprovalID string `json:"approval_id"`
				} `json:"policy"`
			} `json:"decision"`
		}
		if err := json.Unmarshal([]byte(body), &e); err != nil || e.Decision.Policy == nil || e.Decision.Policy.ApprovalID != u.id {
			return brk("used by decision " + u.decisionID + ", which does not present it"), nil
		}
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, state, change_id FROM approvals ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	seen := make(map[string]bool, len(w.life))
	for rows.Next() {
		var id, state, changeID string
		if err := rows.Scan(&id, &state, &changeID); err != nil {
			return nil, err
		}
		seen[id] = true
		l := w.life[id]
		if l == nil || string(l.state) != state || l.changeID != changeID {
			want := "no approval change"
			if l != nil {
				want = fmt.Sprintf("%s (change %s)", l.state, l.changeID)
			}
			return &Break{Chain: ChainChanges, Tenant: ChangeChain, ReceiptID: changeID,
				Reason: fmt.Sprintf("approvals row %s says %s (change %s) but the signed change chain says %s: row altered", id, state, changeID, want)}, nil
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// A row deleted hides its approval from listing and expiry.
	ids := make([]string, 0, len(w.life))
	for id := range w.life {
		if !seen[id] {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	slices.Sort(ids)
	l := w.life[ids[0]]
	return &Break{Chain: ChainChanges, Tenant: ChangeChain, ReceiptID: l.changeID,
		Reason: fmt.Sprintf("approvals row %s is missing but the signed change chain says %s (change %s): row deleted", ids[0], l.state, l.changeID)}, nil
}
