package ledger

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/approval"
)

// Change kinds of human approvals (WCP §5.8). Subject is the approval id,
// Digest the request hash, ArtifactHash the module the approval is bound
// to, Body the approval as it stands after the change; Actor the
// approver's token ("token:<id>"), the requesting tenant
// ("tenant:<id>") or "hall" (expiry).
const (
	ChangeApprovalRequested = "approval_requested"
	ChangeApprovalApproved  = "approval_approved"
	ChangeApprovalDenied    = "approval_denied"
	ChangeApprovalExpired   = "approval_expired"
	ChangeApprovalUsed      = "approval_used"
)

// Approvals live in the ledger database (schema step "approvals"): what
// an approval is, and every change of its state, is the body of a signed
// change of the change chain, written in the same transaction as the
// approvals row that indexes it (id, state, tenant, times and the id of
// that change). The Hall acts on the signed change only: the newest
// approval change of an id, its hash and signature checked, is the
// approval; a row whose state disagrees with it was altered and is
// refused (issue 21: a row flipped to approved with SQL ran a held
// request).

// ErrApprovalTampered: an approvals row disagrees with the signed change
// chain, or the newest signed change of an approval does not verify.
var ErrApprovalTampered = errors.New("APPROVAL_TAMPERED")

// ApprovalUpdate is one state change of an approval: from the state the
// signed change chain holds to To, recorded as a change of Kind by Actor.
type ApprovalUpdate struct {
	ID       string
	From, To approval.State
	Kind     string
	Actor    string
	// Now, when not zero, refuses the change of an approval that has
	// expired at Now (a *approval.ConflictError in state Expired).
	Now time.Time
	// Check, when set, sees the approval as signed before the change; an
	// error refuses the change and is returned as is.
	Check func(*approval.Approval) error
	// Apply changes the approval's fields (decided_by, used_by...).
	Apply func(*approval.Approval)
}

func approvalTime(t time.Time) int64 { return t.UTC().UnixMicro() }

// CreateApproval stores a new pending approval with its signed
// approval_requested change (by actor), in one transaction.
func (s *SQLite) CreateApproval(ctx context.Context, a *approval.Approval, actor string) error {
	return s.createApproval(ctx, a, actor, 0)
}

func (s *SQLite) createApproval(ctx context.Context, a *approval.Approval, actor string, maxPending int) error {
	if err := approval.CheckID(a.ID); err != nil {
		return fmt.Errorf("ledger: create approval: %w", invalid("approval_id", err.Error()))
	}
	if s.key.Load() == nil {
		return fmt.Errorf("ledger: create approval: %w", s.keyError)
	}
	n := *a
	n.State = approval.Pending
	n.CreatedAt = n.CreatedAt.UTC().Truncate(time.Microsecond)
	n.ExpiresAt = n.ExpiresAt.UTC().Truncate(time.Microsecond)
	c, err := approvalChange(ChangeApprovalRequested, &n, actor)
	if err != nil {
		return err
	}
	op := "create approval " + n.ID
	var refused error
	err = s.submit(ctx, newWrite(op, func(tx *sql.Tx) error {
		refused = nil
		if maxPending > 0 {
			var pending int
			if err := tx.QueryRowContext(context.Background(), `SELECT count(*) FROM approvals WHERE state = 'pending' AND tenant_id = ? AND expires_at > ?`,
				n.TenantID, approvalTime(n.CreatedAt)).Scan(&pending); err != nil {
				return s.wrap(op, err)
			}
			if pending >= maxPending {
				// Nothing written: the refusal is the caller's answer, not
				// a failed write of the batch.
				refused = &ApprovalQuotaError{TenantID: n.TenantID, Pending: pending, Bound: maxPending}
				return nil
			}
		}
		cc := *c
		if err := s.linkChange(tx, op, &cc); err != nil {
			return err
		}
		_, err := tx.ExecContext(context.Background(), `INSERT INTO approvals (id, state, tenant_id, created_at, expires_at, change_id) VALUES (?, ?, ?, ?, ?, ?)`,
			n.ID, string(n.State), n.TenantID, approvalTime(n.CreatedAt), approvalTime(n.ExpiresAt), cc.ChangeID)
		return s.wrap(op, err)
	}, func() {
		if refused == nil {
			*a = n
		}
	}))
	if err != nil {
		return err
	}
	return refused
}

// ErrApprovalQuota: the tenant has its maximum of pending approvals
// (CreateApprovalBounded); nothing was written.
var ErrApprovalQuota = errors.New("APPROVAL_QUOTA")

// ApprovalQuotaError is CreateApprovalBounded's refusal: the tenant's
// pending approvals (not yet expired) and the bound.
type ApprovalQuotaError struct {
	TenantID       string
	Pending, Bound int
}

func (e *ApprovalQuotaError) Error() string {
	return fmt.Sprintf("APPROVAL_QUOTA: tenant %s has %d pending approvals, its maximum is %d", e.TenantID, e.Pending, e.Bound)
}

// Is makes errors.Is(err, ErrApprovalQuota) hold.
func (e *ApprovalQuotaError) Is(target error) bool { return target == ErrApprovalQuota }

// CreateApprovalBounded is CreateApproval, refused with an
// *ApprovalQuotaError when a's tenant already has maxPending pending
// approvals that have not expired (maxPending <= 0: no bound). The count
// and the insert are one transaction, so concurrent requests of a tenant
// cannot overshoot the bound.
func (s *SQLite) CreateApprovalBounded(ctx context.Context, a *approval.Approval, actor string, maxPending int) error {
	if maxPending <= 0 {
		return s.CreateApproval(ctx, a, actor)
	}
	return s.createApproval(ctx, a, actor, maxPending)
}

// PendingCount is how many approvals of one tenant wait for a human.
type PendingCount struct {
	TenantID string    `json:"tenant_id"`
	Pending  int       `json:"pending"`
	Oldest   time.Time `json:"oldest_created_at"`
}

// PendingApprovalsByTenant counts the pending approvals of each tenant
// that has one (not yet expired at now), by tenant id: one read of the
// approvals rows, whose states the signed changes back (a row altered to
// hide an approval from this count is still refused when the approval is
// read or used).
func (s *SQLite) PendingApprovalsByTenant(ctx context.Context, now time.Time) ([]PendingCount, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT tenant_id, count(*), min(created_at) FROM approvals
		WHERE state = 'pending' AND expires_at > ? GROUP BY tenant_id ORDER BY tenant_id`, approvalTime(now))
	if err != nil {
		return nil, s.wrap("approvals", err)
	}
	defer rows.Close()
	var out []PendingCount
	for rows.Next() {
		var c PendingCount
		var oldest int64
		if err := rows.Scan(&c.TenantID, &c.Pending, &oldest); err != nil {
			return nil, s.wrap("approvals", err)
		}
		c.Oldest = time.UnixMicro(oldest).UTC()
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap("approvals", err)
	}
	return out, nil
}

// approvalChange is the unsigned change recording a as it stands.
func approvalChange(kind string, a *approval.Approval, actor string) (*Change, error) {
	body, err := json.Marshal(a)
	if err != nil {
		return nil, err
	}
	body, err = canonical(body)
	if err != nil {
		return nil, err
	}
	c := &Change{Kind: kind, Subject: a.ID, Digest: a.RequestHash, Body: body, Actor: actor, At: time.Now().UTC().Truncate(time.Microsecond), Version: formatV2, ChangeID: newChangeID()}
	if wcp.ValidArtifactHash(a.ModuleDigest) {
		c.ArtifactHash = a.ModuleDigest
	}
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("ledger: %s of %s: %w", kind, a.ID, err)
	}
	return c, nil
}

// UpdateApproval applies u in one transaction with its signed change and
// returns the approval as it now stands. An approval not in u.From by its
// signed change chain is refused with a *approval.ConflictError (and the
// approval as it stands).
func (s *SQLite) UpdateApproval(ctx context.Context, u ApprovalUpdate) (*approval.Approval, error) {
	if s.key.Load() == nil {
		return nil, fmt.Errorf("ledger: update approval: %w", s.keyError)
	}
	var out *approval.Approval
	var refused error
	op := u.Kind + " " + u.ID
	err := s.submit(ctx, newWrite(op, func(tx *sql.Tx) error {
		a, err := s.updateApproval(tx, op, &u)
		var ce *approval.ConflictError
		if errors.As(err, &ce) {
			// Nothing written: the refusal is the caller's answer, not a
			// failed write.
			refused, out = err, a
			return nil
		}
		out = a
		return err
	}, nil))
	if err != nil {
		return nil, err
	}
	return out, refused
}

// RecordDecisionUsing records a decision and, in the same transaction,
// moves the approval it used as u says (approved to used): neither is
// recorded without the other. A *approval.ConflictError (the approval is
// no longer approved) records nothing.
func (s *SQLite) RecordDecisionUsing(ctx context.Context, d DecisionRecord, u ApprovalUpdate) error {
	p, err := s.prepareDecision(d)
	if err != nil {
		return err
	}
	op := "record decision " + d.DecisionID + " using " + u.ID
	return s.submit(ctx, newWrite(op, func(tx *sql.Tx) error {
		if err := s.sealEntry(tx, op, p); err != nil {
			return err
		}
		_, err := s.updateApproval(tx, op, &u)
		return err
	}, nil))
}

// updateApproval is UpdateApproval inside the batch's transaction.
func (s *SQLite) updateApproval(tx *sql.Tx, op string, u *ApprovalUpdate) (*approval.Approval, error) {
	ctx := context.Background()
	a, _, err := s.signedApproval(ctx, tx, u.ID)
	if err != nil {
		return nil, err
	}
	var rowState string
	if err := tx.QueryRowContext(ctx, `SELECT state FROM approvals WHERE id = ?`, u.ID).Scan(&rowState); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("ledger: %s: %w: the approvals row is missing though the change chain records the approval", op, ErrApprovalTampered)
		}
		return nil, s.wrap(op, err)
	}
	if approval.State(rowState) != a.State {
		return nil, fmt.Errorf("ledger: %s: %w: the approvals row says %s but the signed change chain says %s; nothing was done", op, ErrApprovalTampered, rowState, a.State)
	}
	if a.State != u.From {
		return a, &approval.ConflictError{ID: u.ID, State: a.State, Want: u.From}
	}
	if !u.Now.IsZero() && !u.Now.Before(a.ExpiresAt) {
		return a, &approval.ConflictError{ID: u.ID, State: approval.Expired, Want: u.From}
	}
	if u.Check != nil {
		if err := u.Check(a); err != nil {
			return a, err
		}
	}
	if u.Apply != nil {
		u.Apply(a)
	}
	a.State = u.To
	c, err := approvalChange(u.Kind, a, u.Actor)
	if err != nil {
		return nil, err
	}
	if err := s.linkChange(tx, op, c); err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE approvals SET state = ?, change_id = ? WHERE id = ?`, string(a.State), c.ChangeID, a.ID); err != nil {
		return nil, s.wrap(op, err)
	}
	return a, nil
}

// queryer reads inside or outside a transaction.
type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// qSignedApproval finds, by the columns, the newest approval change of an
// approval id: where signedApproval starts reading the signed chain.
const qSignedApproval = `SELECT seq FROM changes
	WHERE subject = ? AND kind IN (?, ?, ?, ?, ?) ORDER BY seq DESC LIMIT 1`

// approvalKind reports whether kind is one of the approval change kinds.
func approvalKind(kind string) bool {
	switch kind {
	case ChangeApprovalRequested, ChangeApprovalApproved, ChangeApprovalDenied, ChangeApprovalExpired, ChangeApprovalUsed:
		return true
	}
	return false
}

// signedApproval returns the approval id as its newest signed change
// records it, and that change's id (see signedApprovals).
func (s *SQLite) signedApproval(ctx context.Context, q queryer, id string) (*approval.Approval, string, error) {
	as, ids, err := s.signedApprovals(ctx, q, []string{id})
	if err != nil {
		return nil, "", err
	}
	return as[0], ids[0], nil
}

// signedApprovals returns each approval of ids as its newest signed change
// records it, and those changes' ids, in the order of ids. It finds the
// oldest of their newest changes by the subject and kind columns, then
// reads the signed chain from there to its head once (changesToHead:
// every body hashes to its hash and links to the one before, every row's
// kind and subject columns say what its body says, the head's signature
// verifies) and takes, for each id, the last approval change of it read:
// a newer change of an approval cannot be hidden by editing or deleting
// its row (issue 21: an approval_used change whose subject column was
// edited, with the approvals row set back to approved, let a used
// approval run again). A change recorded between the column lookup and
// the walk is simply read by the walk. An altered chain is an error
// wrapping ErrApprovalTampered; approval.ErrNotFound when no change names
// one of ids.
//
// # Notes
//
//   - Its cost grows with the number of changes recorded since the
//     oldest of those newest changes (one SHA-256 and one read each, and
//     one signature verification): BenchmarkUseApprovalAfterChanges.
func (s *SQLite) signedApprovals(ctx context.Context, q queryer, ids []string) ([]*approval.Approval, []string, error) {
	if len(ids) == 0 {
		return nil, nil, nil
	}
	from := int64(-1)
	newest := make(map[string]*storedChange, len(ids))
	for _, id := range ids {
		var seq int64
		err := q.QueryRowContext(ctx, qSignedApproval, id,
			ChangeApprovalRequested, ChangeApprovalApproved, ChangeApprovalDenied, ChangeApprovalExpired, ChangeApprovalUsed).
			Scan(&seq)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, nil, fmt.Errorf("%w: %s", approval.ErrNotFound, id)
		}
		if err != nil {
			return nil, nil, s.wrap("approval", err)
		}
		if from < 0 || seq < from {
			from = seq
		}
		newest[id] = nil
	}
	err := s.changesToHead(ctx, q, from, func(c *storedChange) error {
		if _, ok := newest[c.Subject]; ok && approvalKind(c.Kind) {
			newest[c.Subject] = c
		}
		return nil
	})
	if errors.Is(err, errChangesAltered) {
		return nil, nil, fmt.Errorf("ledger: approval %s: %w: %w", strings.Join(ids, ", "), ErrApprovalTampered, err)
	}
	if err != nil {
		return nil, nil, err
	}
	as := make([]*approval.Approval, len(ids))
	changeIDs := make([]string, len(ids))
	for i, id := range ids {
		n := newest[id]
		if n == nil {
			return nil, nil, fmt.Errorf("ledger: approval %s: %w: the change its columns name newest is not a change of it", id, ErrApprovalTampered)
		}
		c, err := n.decode()
		if err != nil {
			return nil, nil, fmt.Errorf("ledger: approval %s: %w: %w", id, ErrApprovalTampered, err)
		}
		var a approval.Approval
		if err := json.Unmarshal(c.Body, &a); err != nil || a.ID != id {
			return nil, nil, fmt.Errorf("ledger: approval %s: %w: its change %s does not hold it", id, ErrApprovalTampered, c.ChangeID)
		}
		as[i], changeIDs[i] = &a, c.ChangeID
	}
	return as, changeIDs, nil
}

// publicKey is the key with id keyID that signed for this ledger: the
// current one, or one the recorded rotations or admissions name (nil
// when none).
func (s *SQLite) publicKey(ctx context.Context, q queryer, keyID string) ed25519.PublicKey {
	if k := s.key.Load(); k != nil && k.id == keyID {
		return k.pub
	}
	ks, err := s.keySetTx(ctx, q)
	if err != nil {
		return nil
	}
	keys, err := ks.Public()
	if err != nil {
		return nil
	}
	return keys[keyID]
}

// Approval returns one approval as its signed change chain records it
// (an error wrapping approval.ErrNotFound when none does).
func (s *SQLite) Approval(ctx context.Context, id string) (*approval.Approval, error) {
	a, _, err := s.signedApproval(ctx, s.r, id)
	return a, err
}

// Approvals lists approvals, newest first, each as its signed change
// chain records it.
func (s *SQLite) Approvals(ctx context.Context, f approval.Filter) ([]approval.Approval, error) {
	q := `SELECT id FROM approvals WHERE 1=1`
	var args []any
	if f.State != "" {
		q += ` AND state = ?`
		args = append(args, string(f.State))
	}
	if f.TenantID != "" {
		q += ` AND tenant_id = ?`
		args = append(args, f.TenantID)
	}
	if f.Limit <= 0 {
		f.Limit = 100
	}
	q += ` ORDER BY created_at DESC, id LIMIT ? OFFSET ?`
	args = append(args, f.Limit, max(f.Offset, 0))
	ids, err := s.approvalIDs(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	as, _, err := s.signedApprovals(ctx, s.r, ids)
	if err != nil {
		return nil, err
	}
	out := make([]approval.Approval, 0, len(as))
	for _, a := range as {
		out = append(out, *a)
	}
	return out, nil
}

func (s *SQLite) approvalIDs(ctx context.Context, q string, args ...any) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, s.wrap("approvals", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, s.wrap("approvals", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap("approvals", err)
	}
	return ids, nil
}

// ExpireApprovals moves every pending or approved approval whose expiry
// is at or before now to expired, each with its signed approval_expired
// change (actor "hall"), and returns them.
func (s *SQLite) ExpireApprovals(ctx context.Context, now time.Time) ([]approval.Approval, error) {
	ids, err := s.approvalIDs(ctx, `SELECT id FROM approvals WHERE state IN ('pending', 'approved') AND expires_at <= ?`, approvalTime(now))
	if err != nil {
		return nil, err
	}
	var out []approval.Approval
	var errs []error
	for _, id := range ids {
		for _, from := range []approval.State{approval.Pending, approval.Approved} {
			a, err := s.UpdateApproval(ctx, ApprovalUpdate{ID: id, From: from, To: approval.Expired, Kind: ChangeApprovalExpired, Actor: "hall"})
			if errors.Is(err, approval.ErrConflict) {
				continue // in the other state, or decided or used meanwhile
			}
			if err != nil {
				errs = append(errs, err)
				break
			}
			out = append(out, *a)
			break
		}
	}
	return out, errors.Join(errs...)
}

// PendingApprovals returns how many approvals are pending and the
// creation time of the oldest (zero when none).
func (s *SQLite) PendingApprovals(ctx context.Context) (int, time.Time, error) {
	var n int
	var oldest sql.NullInt64
	err := s.r.QueryRowContext(ctx, `SELECT count(*), min(created_at) FROM approvals WHERE state = 'pending'`).Scan(&n, &oldest)
	if err != nil {
		return 0, time.Time{}, s.wrap("approvals", err)
	}
	if !oldest.Valid {
		return n, time.Time{}, nil
	}
	return n, time.UnixMicro(oldest.Int64).UTC(), nil
}
