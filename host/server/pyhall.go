package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/ledger"
)

// PyHall's Hall API (hall_api/server.py), in PyHall's request and response
// shapes, behind the Hall's tokens: a tenant token sees its own tenant's
// decisions, dispatches and alerts; an admin token sees every tenant's.
// docs/PYHALL.md lists where the answers differ from PyHall's and why.

// HallName is GET /status's hall_name.
const HallName = "Hall"

// scopeOf is the tenant a request reads, and whether it reads every
// tenant (an admin token).
func scopeOf(r *http.Request) (tenant string, all bool) {
	t := principal(r)
	return t.Scope.Tenant, t.Scope.Admin
}

// pyStatus answers GET /status.
func (s *Server) pyStatus(w http.ResponseWriter, r *http.Request) {
	tenant, all := scopeOf(r)
	now := time.Now().UTC()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	total, todayN, denied, err := s.h.DecisionCounts(r.Context(), tenant, all, today)
	if err != nil {
		s.evidenceError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"hall_version":     s.cfg.Version,
		"hall_name":        HallName,
		"workers_enrolled": s.h.Registry().Len(),
		"decisions_total":  total,
		"decisions_today":  todayN,
		"denials_today":    denied,
		"timestamp":        now.Format(time.RFC3339Nano),
		"online":           s.h.Online(),
		// PyHall's registry standing (go-online against its registry
		// service) has no counterpart: the Hall's standing is its own.
		"account_standing":    nil,
		"standing_checked_at": nil,
	})
}

// pyWorkers answers GET /workers: every enrolled record, newest
// enrollment first, with when its seal was recorded.
func (s *Server) pyWorkers(w http.ResponseWriter, r *http.Request) {
	ev, err := s.h.Evidence()
	if err != nil {
		s.evidenceError(w, r, err)
		return
	}
	enrolledAt := map[string]time.Time{}
	for _, kind := range []string{ledger.ChangeEnroll, host.ChangeEnrollRecord} {
		cs, err := ev.Changes(r.Context(), kind)
		if err != nil {
			s.evidenceError(w, r, err)
			return
		}
		for _, c := range cs {
			if c.At.After(enrolledAt[c.Subject]) {
				enrolledAt[c.Subject] = c.At
			}
		}
	}
	type worker struct {
		WorkerID        string   `json:"worker_id"`
		WorkerSpeciesID string   `json:"worker_species_id"`
		Capabilities    []string `json:"capabilities"`
		RiskTier        string   `json:"risk_tier"`
		EnrolledAt      *string  `json:"enrolled_at"`
		Status          string   `json:"status"`
		ArtifactHash    *string  `json:"artifact_hash"`
		at              time.Time
	}
	recs := s.h.Registry().Records()
	out := make([]worker, 0, len(recs))
	for _, rec := range recs {
		wk := worker{WorkerID: rec.WorkerID, WorkerSpeciesID: rec.WorkerSpeciesID, Capabilities: nonNil(rec.Capabilities),
			RiskTier: rec.RiskTier, Status: "active"}
		if rec.ArtifactHash == "" {
			// Decides, never dispatches (docs/PYHALL.md).
			wk.Status = "routing_only"
		} else {
			h := rec.ArtifactHash
			wk.ArtifactHash = &h
		}
		if at, ok := enrolledAt[rec.WorkerID]; ok {
			v := at.UTC().Format(time.RFC3339Nano)
			wk.EnrolledAt, wk.at = &v, at
		}
		out = append(out, wk)
	}
	// Newest enrollment first, as PyHall orders them; records no seal
	// covers (routing-only files) last, by worker id.
	slices.SortStableFunc(out, func(a, b worker) int {
		if c := b.at.Compare(a.at); c != 0 {
			return c
		}
		return strings.Compare(a.WorkerID, b.WorkerID)
	})
	writeJSON(w, http.StatusOK, map[string]any{"workers": out, "count": len(out)})
}

// Dispatch log bounds (PyHall's: default 50, clamped to 1..200).
const (
	defaultDispatchLimit = 50
	maxDispatchLimit     = 200
)

// pyDispatches answers GET /dispatches?limit=N: the newest recorded
// decisions, the Hall's own and ingested ones, newest first.
func (s *Server) pyDispatches(w http.ResponseWriter, r *http.Request) {
	limit := defaultDispatchLimit
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			writeError(w, r, errf(http.StatusBadRequest, CodeInvalidRequest, "limit must be an integer").field("limit"))
			return
		}
		limit = min(max(1, n), maxDispatchLimit)
	}
	tenant, all := scopeOf(r)
	ds, err := s.h.Decisions(r.Context(), tenant, all, limit)
	if err != nil {
		s.evidenceError(w, r, err)
		return
	}
	type row struct {
		DecisionID     string          `json:"decision_id"`
		DecidedAt      string          `json:"decided_at"`
		CapabilityID   string          `json:"capability_id"`
		TenantID       string          `json:"tenant_id"`
		Env            string          `json:"env"`
		Denied         int             `json:"denied"`
		DenyReason     *string         `json:"deny_reason"`
		SelectedWorker *string         `json:"selected_worker"`
		BlastScore     json.RawMessage `json:"blast_score"`
		ArtifactHash   *string         `json:"artifact_hash"`
		// The Hall's additions.
		Source            string `json:"source"`
		DecidedByThisHall bool   `json:"decided_by_this_hall"`
		EntryID           string `json:"entry_id"`
		RecordedAt        string `json:"recorded_at"`
		DryRun            bool   `json:"dry_run"`
		Snapshot          string `json:"snapshot,omitempty"`
		// HallAgrees: for an ingested decision, whether the Hall's own
		// decision of the same routing input agreed (null: not checked).
		HallAgrees *bool `json:"hall_agrees,omitempty"`
	}
	opt := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	out := make([]row, 0, len(ds))
	for _, d := range ds {
		x := row{DecisionID: d.DecisionID, DecidedAt: d.DecidedAt.UTC().Format(time.RFC3339Nano), CapabilityID: d.CapabilityID,
			TenantID: d.TenantID, Env: d.Env, DenyReason: opt(d.DenyReason), SelectedWorker: opt(d.SelectedWorker),
			BlastScore: d.BlastScore, ArtifactHash: opt(d.ArtifactHash), Source: "hall", DecidedByThisHall: !d.External,
			EntryID: d.EntryID, RecordedAt: d.RecordedAt.UTC().Format(time.RFC3339Nano), DryRun: d.DryRun, Snapshot: d.Snapshot,
			HallAgrees: d.HallAgrees}
		if d.Denied {
			x.Denied = 1
		}
		if d.External {
			x.Source = "external"
		}
		if len(x.BlastScore) == 0 {
			x.BlastScore = json.RawMessage("null")
		}
		out = append(out, x)
	}
	writeJSON(w, http.StatusOK, map[string]any{"dispatches": out, "count": len(out)})
}

// pyActive answers GET /dispatches/active: the dispatches holding a slot
// now.
func (s *Server) pyActive(w http.ResponseWriter, r *http.Request) {
	tenant, all := scopeOf(r)
	ds := s.h.ActiveDispatches(tenant, all)
	type row struct {
		DecisionID    string `json:"decision_id"`
		CorrelationID string `json:"correlation_id"`
		TenantID      string `json:"tenant_id"`
		CapabilityID  string `json:"capability_id"`
		WorkerID      string `json:"worker_id"`
		StartedAt     string `json:"started_at"`
	}
	out := make([]row, 0, len(ds))
	for _, d := range ds {
		out = append(out, row{d.DecisionID, d.CorrelationID, d.TenantID, d.CapabilityID, d.WorkerID, d.StartedAt.Format(time.RFC3339Nano)})
	}
	writeJSON(w, http.StatusOK, map[string]any{"dispatches": out, "count": len(out)})
}

// pyAlerts answers GET /alerts: the conditions that need an operator now
// (the Hall offline, its evidence ledger unavailable, and, for an admin,
// the problems of the rules and records in force), in PyHall's alert
// shape. An alert's id is derived from its code and message, so a
// condition keeps its id while it lasts.
func (s *Server) pyAlerts(w http.ResponseWriter, r *http.Request) {
	type alert struct {
		AlertID      string  `json:"alert_id"`
		CreatedAt    string  `json:"created_at"`
		Level        string  `json:"level"`
		Code         string  `json:"code"`
		Message      string  `json:"message"`
		WorkerID     *string `json:"worker_id"`
		CapabilityID *string `json:"capability_id"`
	}
	now := time.Now().UTC().Format(time.RFC3339Nano)
	out := []alert{}
	add := func(level, code, msg string) {
		sum := sha256.Sum256([]byte(code + "\x00" + msg))
		out = append(out, alert{AlertID: "alr_" + hex.EncodeToString(sum[:8]), CreatedAt: now, Level: level, Code: code, Message: msg})
	}
	if _, err := s.h.Evidence(); err != nil {
		add("critical", CodeEvidence, "the evidence ledger cannot be opened: nothing is decided or dispatched with evidence until it is (see the server log)")
	}
	if !s.h.Online() {
		add("warning", CodeHallOffline, "the Hall is offline: dispatches are refused until POST /api/server/go-online")
	}
	tenant, all := scopeOf(r)
	// Ingested decisions the Hall decided otherwise (the conformance check
	// recorded with each): the newest 50 of the caller's scope.
	if ext, err := s.h.ExternalDecisions(r.Context(), tenant, all, 50); err == nil {
		for _, d := range ext {
			if d.HallAgrees != nil && !*d.HallAgrees {
				a := alert{CreatedAt: d.RecordedAt.UTC().Format(time.RFC3339Nano), Level: "warning", Code: "DECISION_DISAGREEMENT",
					Message: "the Hall decides ingested decision " + d.DecisionID + " of tenant " + d.TenantID + " otherwise (hall receipts external; GET /dispatches)"}
				sum := sha256.Sum256([]byte(d.EntryID))
				a.AlertID = "alr_" + hex.EncodeToString(sum[:8])
				if d.CapabilityID != "" {
					c := d.CapabilityID
					a.CapabilityID = &c
				}
				out = append(out, a)
			}
		}
	}
	if all {
		if err := s.h.Problems(); err != nil {
			var j interface{ Unwrap() []error }
			errs := []error{err}
			if errors.As(err, &j) {
				errs = j.Unwrap()
			}
			for _, e := range errs {
				code := "HALL_PROBLEM"
				var coded interface{ Code() wcp.Code }
				if errors.As(e, &coded) {
					code = string(coded.Code())
				}
				add("critical", code, e.Error())
			}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"alerts": out, "count": len(out)})
}

// pyIngest answers POST /decisions/ingest: a decision made elsewhere,
// recorded in the tenant's decision chain as evidence (host.IngestDecision).
// A tenant token records into its own tenant; an admin token into the
// decision's tenant_id ("" when it names none, as PyHall stores it).
func (s *Server) pyIngest(w http.ResponseWriter, r *http.Request) {
	if e := requireMedia(r, "application/json"); e != nil {
		writeError(w, r, e)
		return
	}
	body, e := readBody(w, r, s.cfg.MaxBody)
	if e != nil {
		writeError(w, r, e)
		return
	}
	if !json.Valid(body) {
		writeError(w, r, errf(http.StatusBadRequest, CodeInvalidJSON, "the decision is not valid JSON"))
		return
	}
	tenant, all := scopeOf(r)
	if all {
		var head struct {
			TenantID any `json:"tenant_id"`
		}
		_ = json.Unmarshal(body, &head)
		if t, ok := head.TenantID.(string); ok {
			tenant = t
		}
	}
	res, err := s.h.IngestDecision(context.WithoutCancel(r.Context()), host.IngestRequest{TenantID: tenant, Decision: body, Actor: tokenActor(r)})
	var ie *host.IngestError
	switch {
	case err == nil:
	case errors.As(err, &ie):
		// Each code answers with its status in wcp.Codes: INVALID_REQUEST
		// 422, TENANT_MISMATCH 403, DECISION_CONFLICT 409.
		writeError(w, r, errf(ie.Code().HTTPStatus(), string(ie.Code()), ie.Message).field(ie.Field))
		return
	default:
		s.evidenceError(w, r, err)
		return
	}
	s.log.Info("hall: decision ingested", "request_id", requestID(r), "decision_id", res.DecisionID, "entry_id", res.EntryID,
		"tenant_id", res.TenantID, "duplicate", res.Duplicate, "token_id", principal(r).ID)
	answer := map[string]any{
		"recorded":             true,
		"decision_id":          res.DecisionID,
		"entry_id":             res.EntryID,
		"tenant_id":            res.TenantID,
		"recorded_at":          res.RecordedAt.UTC().Format(time.RFC3339Nano),
		"decided_by_this_hall": false,
		"duplicate":            res.Duplicate,
	}
	if !res.Duplicate {
		answer["hall_check"] = res.Check
	}
	writeJSON(w, http.StatusCreated, answer)
}

// pyRegistry answers PyHall's registry proxies (GET /wcp/registry/ban-list,
// GET /wcp/registry/verify/{worker_id}) as PyHall answers them when its
// registry service cannot be reached: 503 with "source": "local-only", so a
// PyHall client falls back to local trust. The Hall consults no registry
// service: its trust is its evidence ledger and the keys it is given.
func (s *Server) pyRegistry(w http.ResponseWriter, r *http.Request) {
	e := errf(http.StatusServiceUnavailable, CodeRegistryUnavailable, "the Hall consults no worker registry service; trust comes from its own evidence (hall audit verify) and the keys it is given")
	e.Extra = map[string]any{"source": "local-only"}
	writeError(w, r, e)
}
