package server

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/ledger"
)

func sprint(v ...any) string { return fmt.Sprint(v...) }

func now() string { return time.Now().UTC().Format(time.RFC3339Nano) }

// health is the liveness probe (no token): 200 while the process serves,
// with the online state.
func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	status := "ok"
	if !s.h.Online() {
		status = "offline"
	}
	body := map[string]any{
		"status":  status,
		"online":  s.h.Online(),
		"version": s.cfg.Version,
		// Which Hall this is (rules, policies, configuration, records,
		// trust): hall status compares it with the folder it runs in, and
		// nodes of one database converge on it.
		"snapshot_digest": s.h.SnapshotDigest(),
		"timestamp":       now(),
	}
	if db := sharedDatabase(r.Context(), s.cfg.Tokens); db != nil {
		body["database"] = db
	}
	if k := signingKey(r.Context(), s.h); k != nil {
		// It decides nothing (503 KEY_NOT_ADMITTED) until admitted.
		body["status"] = "key_not_admitted"
		body["signing_key"] = k
	}
	writeJSON(w, http.StatusOK, body)
}

func (s *Server) wcpHealth(w http.ResponseWriter, r *http.Request) {
	level, enabled := Compliance(s.h)
	_, lerr := s.h.Evidence()
	body := map[string]any{
		"status":           map[bool]string{true: "ok", false: "offline"}[s.h.Online()],
		"online":           s.h.Online(),
		"compliance_level": level,
		"enabled":          enabled,
		"workers":          s.h.Registry().Len(),
		"capabilities":     len(s.h.Registry().Capabilities()),
		"rules":            len(s.h.Rules().Rules),
		"max_concurrent":   s.maxConcurrent(),
		// The fair share of the dispatch slots (host/admission.go) and the
		// Hall-wide memory budget (0: half of physical memory).
		"tenant_max_concurrent": s.h.Admission().TenantSlots,
		"memory_budget_mb":      s.h.MemoryBudget() >> 20,
		"timestamp":             now(),
	}
	if lerr != nil {
		s.log.Error("http: evidence ledger unavailable", "request_id", requestID(r), "error", lerr)
		body["ledger_error"] = "the evidence ledger cannot be opened (see the server log)"
	}
	writeJSON(w, http.StatusOK, body)
}

func (s *Server) capabilities(w http.ResponseWriter, r *http.Request) {
	caps := s.h.Registry().Capabilities()
	ids := make([]string, 0, len(caps))
	for c := range caps {
		ids = append(ids, c)
	}
	slices.Sort(ids)
	type capability struct {
		CapabilityID string   `json:"capability_id"`
		Species      []string `json:"worker_species"`
	}
	out := make([]capability, len(ids))
	for i, c := range ids {
		out[i] = capability{c, caps[c]}
	}
	writeJSON(w, http.StatusOK, map[string]any{"capabilities": out, "count": len(out), "controls_present": s.h.Registry().Controls()})
}

// workers lists enrolled records. A record names the secrets a worker may
// read (privilege_envelope.secrets_access), never their values; the server
// adds nothing to it.
func (s *Server) workers(w http.ResponseWriter, r *http.Request) {
	recs := s.h.Registry().Records()
	writeJSON(w, http.StatusOK, map[string]any{"workers": recs, "count": len(recs)})
}

// pathParam returns a path parameter, unescaped (chi matches on the escaped
// path, so "..%2F.." arrives here as one segment and is decoded before it
// is validated).
func pathParam(r *http.Request, name string) (string, bool) {
	v, err := url.PathUnescape(chi.URLParam(r, name))
	return v, err == nil
}

func (s *Server) worker(w http.ResponseWriter, r *http.Request) {
	id, ok := pathParam(r, "worker_id")
	if !ok || !wcp.ValidID(wcp.KindWorker, id) {
		writeError(w, r, errf(http.StatusBadRequest, CodeInvalidRequest, fmt.Sprintf("%q is not a worker id (org.<name>.<worker> or x.<name>.<worker>)", id)).field("worker_id"))
		return
	}
	rec, found := s.h.Registry().Record(id)
	if !found {
		writeError(w, r, errf(http.StatusNotFound, CodeWorkerNotFound, "no worker "+id+" is enrolled").field("worker_id"))
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

// Receipt listing bounds.
const (
	defaultReceiptLimit = 50
	maxReceiptLimit     = 1000
)

func (s *Server) receipts(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := ledger.Filter{
		CorrelationID: q.Get("correlation_id"),
		WorkerID:      q.Get("worker_id"),
		TenantID:      q.Get("tenant"),
		Limit:         defaultReceiptLimit,
	}
	if f.TenantID == "" {
		f.TenantID = q.Get("tenant_id")
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxReceiptLimit {
			writeError(w, r, errf(http.StatusBadRequest, CodeInvalidRequest, fmt.Sprintf("limit must be an integer from 1 to %d", maxReceiptLimit)).field("limit"))
			return
		}
		f.Limit = n
	}
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			writeError(w, r, errf(http.StatusBadRequest, CodeInvalidRequest, "since must be an RFC 3339 time").field("since"))
			return
		}
		f.Since = t
	}
	if tok := principal(r); !tok.Scope.Admin {
		if f.TenantID != "" && f.TenantID != tok.Scope.Tenant {
			writeError(w, r, errf(http.StatusForbidden, CodeTenantMismatch, "a tenant token reads its own tenant's receipts only ("+tok.Scope.Tenant+")").field("tenant"))
			return
		}
		f.TenantID = tok.Scope.Tenant
	}
	state(r).correlationID = f.CorrelationID
	store, err := s.h.Evidence()
	if err != nil {
		s.evidenceError(w, r, err)
		return
	}
	rs, err := store.Receipts(r.Context(), f)
	if err != nil {
		s.evidenceError(w, r, err)
		return
	}
	if rs == nil {
		rs = []ledger.Receipt{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"receipts": rs, "count": len(rs)})
}

func (s *Server) receipt(w http.ResponseWriter, r *http.Request) {
	id, ok := pathParam(r, "receipt_id")
	if _, err := uuid.Parse(id); !ok || err != nil || len(id) != 36 {
		writeError(w, r, errf(http.StatusBadRequest, CodeInvalidRequest, fmt.Sprintf("%q is not a receipt id (a UUID)", id)).field("receipt_id"))
		return
	}
	store, err := s.h.Evidence()
	if err != nil {
		s.evidenceError(w, r, err)
		return
	}
	rc, err := store.Receipt(r.Context(), id)
	// Another tenant's receipt is reported as missing: a tenant token does
	// not learn that it exists.
	if errors.Is(err, ledger.ErrNotFound) || (err == nil && !principal(r).Scope.Admin && rc.TenantID != principal(r).Scope.Tenant) {
		writeError(w, r, errf(http.StatusNotFound, CodeReceiptNotFound, "no receipt "+id).field("receipt_id"))
		return
	}
	if err != nil {
		s.evidenceError(w, r, err)
		return
	}
	state(r).correlationID = rc.CorrelationID
	if r.URL.Query().Get("tree") == "1" {
		// The chain lies in the receipt's own tenant stream
		// (host.ReceiptTree reads that tenant and correlation id only).
		tree, err := host.ReceiptTree(r.Context(), store, id)
		if err != nil {
			s.evidenceError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, tree)
		return
	}
	writeJSON(w, http.StatusOK, rc)
}

func (s *Server) evidenceError(w http.ResponseWriter, r *http.Request, err error) {
	s.log.Error("http: evidence ledger failed", "request_id", requestID(r), "error", err)
	writeError(w, r, unavailableOr(err, errf(http.StatusInternalServerError, CodeEvidence, "the evidence ledger could not be read or written (see the server log)")))
}

func (s *Server) goOnline(w http.ResponseWriter, r *http.Request)  { s.setOnline(w, r, true) }
func (s *Server) goOffline(w http.ResponseWriter, r *http.Request) { s.setOnline(w, r, false) }

func (s *Server) setOnline(w http.ResponseWriter, r *http.Request, online bool) {
	was := s.h.Online()
	s.h.SetOnline(online)
	s.log.Warn("hall: standing changed", "request_id", requestID(r), "token_id", principal(r).ID, "online", online, "was_online", was)
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "online": online, "was_online": was})
}
