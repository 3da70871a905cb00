package host

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/ledger"
)

// Bounds of an ingested decision (docs/PYHALL.md, "Decision ingestion").
const (
	// MaxExternalDecision bounds the JSON of one ingested decision.
	MaxExternalDecision = 64 << 10
	// MaxExternalID bounds decision_id, tenant_id and the other string
	// members the Hall indexes an ingested decision by.
	MaxExternalID = 256
)

// IngestRequest is a routing decision made elsewhere (by PyHall's
// make_decision, or any WCP engine) and handed to the Hall as evidence.
type IngestRequest struct {
	// TenantID is the tenant whose decision chain records it (the caller's
	// token decides it; "" is the chain of decisions without a tenant).
	TenantID string
	// Decision is the decision as submitted: a JSON object, at most
	// MaxExternalDecision bytes. Its decision_id (a string of at most
	// MaxExternalID bytes) makes ingestion idempotent; without one the
	// Hall gives it a random UUID. A tenant_id in it must be TenantID.
	Decision json.RawMessage
	// Actor is who submitted it ("token:<id>"), recorded with it.
	Actor string
}

// IngestResult is what IngestDecision recorded.
type IngestResult struct {
	// DecisionID is the submitted decision_id (or the one the Hall gave).
	DecisionID string
	// EntryID is the id of the signed decision-chain entry that holds it
	// (a UUID derived from the tenant and DecisionID).
	EntryID  string
	TenantID string
	// RecordedAt is when the Hall received and signed it.
	RecordedAt time.Time
	// Duplicate: the same decision was already recorded for this tenant;
	// nothing new was written (Check is then zero).
	Duplicate bool
	// Check is the Hall's own decision for the same routing input.
	Check HallCheck
}

// IngestError is an ingested decision the Hall refuses: Field names the
// member at fault. Conflict is set when the decision_id is already
// recorded for the tenant with other content.
type IngestError struct {
	Field    string
	Message  string
	Conflict bool
	code     wcp.Code
}

func (e *IngestError) Error() string { return e.Field + ": " + e.Message }

// Code is INVALID_REQUEST, TENANT_MISMATCH for a decision naming another
// tenant, or DECISION_CONFLICT (Conflict).
func (e *IngestError) Code() wcp.Code {
	switch {
	case e.code != "":
		return e.code
	case e.Conflict:
		return wcp.CodeDecisionConflict
	}
	return wcp.CodeInvalidRequest
}

// externalNamespace derives entry ids of ingested decisions: the same
// tenant and decision_id always give the same entry id, so a second
// ingestion finds the first.
var externalNamespace = uuid.MustParse("6f1b1c57-58d3-4b0e-9b7a-2f7c2d0e4a11")

// ExternalEntryID is the decision-chain entry id of the decision
// decisionID ingested for tenant.
func ExternalEntryID(tenant, decisionID string) string {
	return uuid.NewSHA1(externalNamespace, []byte(tenant+"\x00"+decisionID)).String()
}

// IngestDecision records a decision made elsewhere in req.TenantID's
// decision chain, signed on receipt like the Hall's own decisions, and
// marked as not decided by this Hall: the entry's decision is
//
//	{"external": true, "decided_by_this_hall": false, "decision_id": …,
//	 "tenant_id": …, "received_at": …, "received_by": …, "submitted": {…}}
//
// with the submitted object unchanged (in canonical form), and names the
// snapshot in force when it was received (it was not decided under it).
//
// # Notes
//
//   - Idempotent by (tenant, decision_id): the same decision again is a
//     Duplicate result; other content under a recorded decision_id is an
//     *IngestError with Conflict set, and nothing is written.
//   - Nothing is dispatched: an ingested decision is evidence of what
//     another engine decided, never permission to run here.
//   - Bounded: a decision over MaxExternalDecision bytes, or a decision_id
//     or tenant_id over MaxExternalID, is refused naming the field.
func (h *Hall) IngestDecision(ctx context.Context, req IngestRequest) (*IngestResult, error) {
	exit, ok := h.life.enterBrief()
	if !ok {
		return nil, ErrClosed
	}
	defer exit()
	doc, id, err := checkExternal(req)
	if err != nil {
		return nil, err
	}
	store, err := h.evidenceStore()
	if err != nil {
		return nil, err
	}
	reader, ok := store.(decisionReader)
	if !ok {
		return nil, fmt.Errorf("the evidence store %T cannot look decisions up; decisions cannot be ingested", store)
	}
	submitted, err := wcp.CanonicalJSON(req.Decision)
	if err != nil {
		return nil, &IngestError{Field: "decision", Message: "is not JSON the Hall can canonicalize: " + err.Error()}
	}
	entryID := ExternalEntryID(req.TenantID, id)

	// One ingestion at a time: the look-up and the write are one step, so
	// two submissions of one decision_id record it once.
	h.ingestMu.Lock()
	defer h.ingestMu.Unlock()
	// recorded reports a decision already recorded under entryID: the
	// same (a duplicate) or other content (a conflict).
	recorded := func() (*IngestResult, error) {
		prev, err := reader.Decision(ctx, entryID)
		if err != nil {
			return nil, err
		}
		var old struct {
			Submitted json.RawMessage `json:"submitted"`
		}
		_ = json.Unmarshal(prev.Decision, &old)
		if prev.TenantID != req.TenantID || !bytes.Equal(old.Submitted, submitted) {
			return nil, &IngestError{Field: "decision_id", Conflict: true, Message: fmt.Sprintf("%q is already recorded for this tenant with other content; a decision_id names one decision (send it unchanged, or use a new decision_id)", id)}
		}
		return &IngestResult{DecisionID: id, EntryID: entryID, TenantID: req.TenantID, RecordedAt: prev.Timestamp, Duplicate: true}, nil
	}
	if res, err := recorded(); !errors.Is(err, ledger.ErrNotFound) {
		return res, err
	}

	s := h.snap.Load()
	if err := h.sealSnapshot(ctx, s); err != nil {
		return nil, err
	}
	snap, err := h.snapshotDigestOf(s)
	if err != nil {
		return nil, err
	}
	check := h.hallCheck(ctx, s, req.TenantID, submitted, doc)
	at := time.Now().UTC()
	wrapper := map[string]any{
		"hall_check":           check,
		"external":             true,
		"decided_by_this_hall": false,
		"decision_id":          id,
		"tenant_id":            req.TenantID,
		"received_at":          at.Format(wcp.TimeLayout),
		"received_by":          actor(req.Actor),
		"submitted":            json.RawMessage(submitted),
	}
	body, err := json.Marshal(wrapper)
	if err != nil {
		return nil, err
	}
	d := ledger.DecisionRecord{
		DecisionID:    entryID,
		CorrelationID: doc.str("correlation_id"),
		TenantID:      req.TenantID,
		CapabilityID:  doc.str("capability_id"),
		Denied:        doc.truthy("denied"),
		DenyCode:      doc.denyCode(),
		Decision:      body,
		Timestamp:     at,
		Snapshot:      snap,
	}
	ectx, cancel := evidenceContext(ctx)
	defer cancel()
	if err := store.RecordDecision(ectx, d); err != nil {
		// Another process sharing the ledger may have recorded the same
		// decision_id meanwhile (ingestMu serialises this process only):
		// then this is a duplicate or a conflict, not a failure.
		if res, rerr := recorded(); rerr == nil || !errors.Is(rerr, ledger.ErrNotFound) {
			return res, rerr
		}
		return nil, fmt.Errorf("recording ingested decision %s in the evidence ledger: %w", id, err)
	}
	return &IngestResult{DecisionID: id, EntryID: entryID, TenantID: req.TenantID, RecordedAt: at, Check: check}, nil
}

// HallCheck is the Hall's own decision for the routing input an ingested
// decision carries, made under the snapshot in force when it was received
// and signed with it: a conformance check on live traffic. Nothing it
// decides is recorded as a decision of its own, and nothing runs.
type HallCheck struct {
	// Checked is false when the decision carries no complete RouteInput
	// (PyHall's minimal ingest payloads do not); Skipped says why.
	Checked bool   `json:"checked"`
	Skipped string `json:"skipped,omitempty"`
	// Agrees: the Hall decided the same denied, deny code, matched rule
	// and selected species; Differs names the members that differ.
	Agrees                  bool     `json:"agrees"`
	Differs                 []string `json:"differs,omitempty"`
	Denied                  bool     `json:"denied"`
	DenyCode                string   `json:"deny_code,omitempty"`
	MatchedRuleID           string   `json:"matched_rule_id,omitempty"`
	SelectedWorkerSpeciesID string   `json:"selected_worker_species_id,omitempty"`
}

// hallCheck re-decides the submitted decision under s when it carries the
// routing input (capability_id, env, data_label, tenant_risk, qos_class,
// correlation_id and the tenant), as a WCP RouteDecision does.
func (h *Hall) hallCheck(ctx context.Context, s *snapshot, tenant string, submitted []byte, doc externalDoc) HallCheck {
	for _, f := range []string{"capability_id", "env", "data_label", "tenant_risk", "qos_class", "correlation_id"} {
		if _, ok := doc[f]; !ok {
			return HallCheck{Skipped: "the decision carries no complete routing input (capability_id, env, data_label, tenant_risk, qos_class, correlation_id): nothing to re-decide"}
		}
	}
	in, err := wcp.ParseRouteInput(submitted)
	if err == nil && in.TenantID == "" {
		in.TenantID = tenant
		err = in.Validate()
	}
	if err != nil {
		msg := err.Error()
		if len(msg) > 512 {
			msg = msg[:512] + "…"
		}
		return HallCheck{Skipped: "its routing input is not valid: " + strings.ToValidUTF8(msg, "?")}
	}
	dec := h.Decide(ctx, &in)
	if h.snap.Load() != s {
		return HallCheck{Skipped: "the Hall's rules or configuration changed while it re-decided"}
	}
	c := HallCheck{Checked: true, Denied: dec.Denied, DenyCode: string(dec.Code()), MatchedRuleID: dec.MatchedRuleID,
		SelectedWorkerSpeciesID: string(dec.SelectedWorkerSpeciesID)}
	var theirs struct {
		DenyReason *struct {
			Code string `json:"code"`
		} `json:"deny_reason_if_denied"`
		MatchedRuleID string  `json:"matched_rule_id"`
		Selected      *string `json:"selected_worker_species_id"`
	}
	_ = json.Unmarshal(submitted, &theirs)
	if doc.truthy("denied") != c.Denied {
		c.Differs = append(c.Differs, "denied")
	}
	code := ""
	if theirs.DenyReason != nil {
		code = theirs.DenyReason.Code
	}
	if code != c.DenyCode {
		c.Differs = append(c.Differs, "deny_reason_if_denied.code")
	}
	if theirs.MatchedRuleID != c.MatchedRuleID {
		c.Differs = append(c.Differs, "matched_rule_id")
	}
	sel := ""
	if theirs.Selected != nil {
		sel = *theirs.Selected
	}
	if sel != c.SelectedWorkerSpeciesID {
		c.Differs = append(c.Differs, "selected_worker_species_id")
	}
	c.Agrees = len(c.Differs) == 0
	return c
}

// decisionReader is the ability of an evidence store to return one
// decision by id ([ledger.SQLite.Decision]).
type decisionReader interface {
	Decision(ctx context.Context, id string) (*ledger.DecisionRecord, error)
}

// externalDoc is the submitted decision's top-level members.
type externalDoc map[string]json.RawMessage

func (d externalDoc) str(name string) string {
	var s string
	if json.Unmarshal(d[name], &s) != nil {
		return ""
	}
	return s
}

// truthy is Python's truthiness of a JSON member, as PyHall's
// `1 if data.get("denied") else 0` reads it.
func (d externalDoc) truthy(name string) bool {
	raw := bytes.TrimSpace(d[name])
	switch {
	case len(raw) == 0, string(raw) == "null", string(raw) == "false", string(raw) == `""`, string(raw) == "[]", string(raw) == "{}":
		return false
	case raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9'):
		var f float64
		return json.Unmarshal(raw, &f) != nil || f != 0
	}
	return true
}

// denyCode is the decision's deny code as far as the lookup column goes:
// PyHall's deny_reason string, or a WCP decision's
// deny_reason_if_denied.code.
func (d externalDoc) denyCode() string {
	c := d.str("deny_reason")
	if c == "" {
		var dr struct {
			Code string `json:"code"`
		}
		_ = json.Unmarshal(d["deny_reason_if_denied"], &dr)
		c = dr.Code
	}
	if len(c) > MaxExternalID {
		c = c[:MaxExternalID]
	}
	return strings.ToValidUTF8(c, "")
}

// checkExternal checks req and returns the submitted members and the
// decision id (given or new).
func checkExternal(req IngestRequest) (externalDoc, string, error) {
	if err := checkExternalString("tenant_id", req.TenantID); err != nil {
		return nil, "", err
	}
	raw := bytes.TrimSpace(req.Decision)
	if len(raw) == 0 || raw[0] != '{' {
		return nil, "", &IngestError{Field: "decision", Message: "must be a JSON object (the decision as the engine returned it)"}
	}
	var doc externalDoc
	// decision_id is checked before the size of the whole: the field at
	// fault is named even when it is what makes the decision too large.
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, "", &IngestError{Field: "decision", Message: "is not a JSON object: " + err.Error()}
	}
	id := ""
	if v, ok := doc["decision_id"]; ok && string(v) != "null" {
		if err := json.Unmarshal(v, &id); err != nil {
			return nil, "", &IngestError{Field: "decision_id", Message: "must be a string"}
		}
		if len(id) > MaxExternalID {
			return nil, "", &IngestError{Field: "decision_id", Message: fmt.Sprintf("is %d bytes long; at most %d are accepted", len(id), MaxExternalID)}
		}
	}
	if id == "" {
		id = uuid.NewString() // PyHall gives a decision without an id a new one
	} else if err := checkExternalString("decision_id", id); err != nil {
		return nil, "", err
	}
	if v, ok := doc["tenant_id"]; ok && string(v) != "null" {
		var t string
		if err := json.Unmarshal(v, &t); err != nil {
			return nil, "", &IngestError{Field: "tenant_id", Message: "must be a string"}
		}
		if t != "" && t != req.TenantID {
			return nil, "", &IngestError{Field: "tenant_id", Message: fmt.Sprintf("names tenant %q, but the decision is recorded for %q (the token's tenant)", t, req.TenantID), code: wcp.CodeTenantMismatch}
		}
	}
	for _, f := range []string{"capability_id", "correlation_id"} {
		if v, ok := doc[f]; ok && string(v) != "null" {
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return nil, "", &IngestError{Field: f, Message: "must be a string"}
			}
			if err := checkExternalString(f, s); err != nil {
				return nil, "", err
			}
		}
	}
	if len(raw) > MaxExternalDecision {
		return nil, "", &IngestError{Field: "decision", Message: fmt.Sprintf("is %d bytes of JSON; at most %d are accepted", len(raw), MaxExternalDecision)}
	}
	return doc, id, nil
}

func checkExternalString(field, s string) error {
	switch {
	case len(s) > MaxExternalID:
		return &IngestError{Field: field, Message: fmt.Sprintf("is %d bytes long; at most %d are accepted", len(s), MaxExternalID)}
	case !utf8.ValidString(s):
		return &IngestError{Field: field, Message: "is not valid UTF-8"}
	case strings.ContainsFunc(s, unicode.IsControl):
		return &IngestError{Field: field, Message: "must not contain control characters"}
	}
	return nil
}

// DecisionSummary is one recorded decision as the dispatch log lists it
// (GET /dispatches): one of the Hall's own, or one ingested.
type DecisionSummary struct {
	// DecisionID is the Hall's decision id, or the submitted decision_id
	// of an ingested decision.
	DecisionID string
	// EntryID is the signed decision-chain entry that holds it.
	EntryID      string
	TenantID     string
	CapabilityID string
	Env          string
	Denied       bool
	// DenyReason is the deny code (PyHall's deny_reason string for an
	// ingested decision).
	DenyReason     string
	SelectedWorker string
	BlastScore     json.RawMessage
	ArtifactHash   string
	// DecidedAt is when the decision was made as its maker says (the
	// Hall's record time for its own; the submitted decided_at, else the
	// receipt time, for an ingested one); RecordedAt is when the Hall
	// signed it.
	DecidedAt, RecordedAt time.Time
	// External: ingested, not decided by this Hall. HallAgrees is the
	// check recorded with it (nil when it could not be re-decided).
	External   bool
	HallAgrees *bool
	DryRun     bool
	Snapshot   string
}

// Decisions lists the newest recorded decisions of tenant (of every
// tenant when all is set), newest first, at most limit, from their signed
// entries.
func (h *Hall) Decisions(ctx context.Context, tenant string, all bool, limit int) ([]DecisionSummary, error) {
	return h.decisions(ctx, ledger.DecisionFilter{TenantID: tenant, AllTenants: all, Limit: limit})
}

// ExternalDecisions is Decisions restricted to ingested decisions (not
// decided by this Hall).
func (h *Hall) ExternalDecisions(ctx context.Context, tenant string, all bool, limit int) ([]DecisionSummary, error) {
	return h.decisions(ctx, ledger.DecisionFilter{TenantID: tenant, AllTenants: all, Limit: limit, External: true})
}

func (h *Hall) decisions(ctx context.Context, f ledger.DecisionFilter) ([]DecisionSummary, error) {
	store, err := h.evidenceStore()
	if err != nil {
		return nil, err
	}
	lister, ok := store.(interface {
		Decisions(ctx context.Context, f ledger.DecisionFilter) ([]ledger.DecisionRecord, error)
	})
	if !ok {
		return nil, fmt.Errorf("the evidence store %T cannot list decisions", store)
	}
	ds, err := lister.Decisions(ctx, f)
	if err != nil {
		return nil, err
	}
	out := make([]DecisionSummary, 0, len(ds))
	for _, d := range ds {
		out = append(out, SummarizeDecision(d))
	}
	return out, nil
}

// SummarizeDecision reads a recorded decision's summary from its signed
// decision (an ingested decision's wrapper, or a RouteDecision).
func SummarizeDecision(d ledger.DecisionRecord) DecisionSummary {
	s := DecisionSummary{DecisionID: d.DecisionID, EntryID: d.DecisionID, TenantID: d.TenantID, CapabilityID: d.CapabilityID,
		Denied: d.Denied, DenyReason: d.DenyCode, DecidedAt: d.Timestamp, RecordedAt: d.Timestamp, DryRun: d.DryRun, Snapshot: d.Snapshot}
	var head struct {
		External    bool            `json:"external"`
		Check       *HallCheck      `json:"hall_check"`
		DecisionID  string          `json:"decision_id"`
		Submitted   externalDoc     `json:"submitted"`
		Env         string          `json:"env"`
		Selected    *string         `json:"selected_worker_species_id"`
		Artifact    *string         `json:"artifact_hash"`
		DenyReasonD json.RawMessage `json:"deny_reason_if_denied"`
	}
	if json.Unmarshal(d.Decision, &head) != nil {
		return s
	}
	if head.External {
		sub := head.Submitted
		s.External, s.DecisionID = true, head.DecisionID
		if c := head.Check; c != nil && c.Checked {
			agrees := c.Agrees
			s.HallAgrees = &agrees
		}
		s.Env = sub.str("env")
		if s.Env == "" {
			s.Env = "dev" // PyHall's default
		}
		s.SelectedWorker = sub.str("selected_worker")
		s.ArtifactHash = sub.str("artifact_hash")
		if b := bytes.TrimSpace(sub["blast_score"]); len(b) > 0 && b[0] != '"' && b[0] != '{' && b[0] != '[' {
			s.BlastScore = json.RawMessage(b)
		}
		if t, err := time.Parse(time.RFC3339Nano, sub.str("decided_at")); err == nil {
			s.DecidedAt = t
		}
		return s
	}
	s.Env = head.Env
	if head.Selected != nil {
		s.SelectedWorker = *head.Selected
	}
	if head.Artifact != nil {
		s.ArtifactHash = *head.Artifact
	}
	var dr struct {
		BlastScore json.RawMessage `json:"blast_score"`
	}
	if json.Unmarshal(head.DenyReasonD, &dr) == nil && len(dr.BlastScore) > 0 {
		s.BlastScore = dr.BlastScore
	}
	return s
}

// DecisionCounts counts the recorded decisions of tenant (of every tenant
// when all is set): all, those recorded since since, and those of them
// denied (for dashboards: GET /status).
func (h *Hall) DecisionCounts(ctx context.Context, tenant string, all bool, since time.Time) (total, sinceN, deniedSince int, err error) {
	store, err := h.evidenceStore()
	if err != nil {
		return 0, 0, 0, err
	}
	c, ok := store.(interface {
		DecisionCounts(ctx context.Context, f ledger.DecisionFilter) (int, int, int, error)
	})
	if !ok {
		return 0, 0, 0, fmt.Errorf("the evidence store %T cannot count decisions", store)
	}
	return c.DecisionCounts(ctx, ledger.DecisionFilter{TenantID: tenant, AllTenants: all, Since: since})
}
