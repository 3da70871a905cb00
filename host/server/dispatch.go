package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/approval"
	"github.com/wcphall/hall/internal/pyval"
)

// routeInput builds the RouteInput of a request body with the token's
// tenant: the token, not the body, determines tenant_id (a body naming
// another tenant is refused, one naming none gets the token's). Fields
// left out get the CLI's defaults (host.DefaultRequest), named in the
// Hall-Defaulted header; a run presenting approvalID with no correlation
// id resumes the held request under its own (host.ResumeCorrelation).
func (s *Server) routeInput(w http.ResponseWriter, r *http.Request, raw []byte, approvalID string) (*wcp.RouteInput, *apiError) {
	v, err := pyval.Decode(raw)
	if err != nil {
		return nil, errf(http.StatusBadRequest, CodeInvalidJSON, "the RouteInput is not valid JSON: "+err.Error()).field("input")
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, errf(http.StatusUnprocessableEntity, CodeInvalidInput, "the RouteInput must be a JSON object").field("input")
	}
	tenant := principal(r).Scope.Tenant
	switch t := obj["tenant_id"].(type) {
	case nil:
		obj["tenant_id"] = tenant
	case string:
		if t != tenant {
			return nil, errf(http.StatusForbidden, CodeTenantMismatch, fmt.Sprintf("tenant_id %q is not the token's tenant %q (leave tenant_id out: the token determines it)", t, tenant)).field("tenant_id")
		}
	}
	_, hasCorrelation := obj["correlation_id"]
	if approvalID != "" && !hasCorrelation && approval.CheckID(approvalID) == nil {
		if t, ok := obj["tenant_id"].(string); ok {
			if corr := s.h.ResumeCorrelation(r.Context(), approvalID, t); corr != "" {
				obj["correlation_id"] = corr
			}
		}
	}
	if filled := host.DefaultRequest(obj); len(filled) > 0 {
		w.Header().Set("Hall-Defaulted", strings.Join(filled, ", "))
	}
	in, err := wcp.RouteInputFromMap(obj)
	if err != nil {
		var ie *wcp.InputError
		if errors.As(err, &ie) && len(ie.Problems) > 0 {
			e := errf(http.StatusUnprocessableEntity, CodeInvalidInput, ie.Error()).field(ie.Problems[0].Field)
			e.Problems = ie.Problems
			return nil, e
		}
		return nil, errf(http.StatusUnprocessableEntity, CodeInvalidInput, err.Error())
	}
	state(r).correlationID = in.CorrelationID
	return &in, nil
}

// route answers POST /wcp/route: the decision only, always a dry run, and
// recorded in the ledger. A denial is a decision, so it is a 200 as well.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	body, ok := s.jsonBody(w, r)
	if !ok {
		return
	}
	in, e := s.routeInput(w, r, body, "")
	if e != nil {
		writeError(w, r, e)
		return
	}
	in.DryRun = true
	release, ok := s.admitRoute(w, r)
	if !ok {
		return
	}
	defer release()
	dec, body, err := s.h.RouteJSON(context.WithoutCancel(r.Context()), in)
	if errors.Is(err, host.ErrClosed) {
		// Closing: nothing was decided (HALL_CLOSED, 503).
		writeError(w, r, errf(wcp.CodeHallClosed.HTTPStatus(), string(wcp.CodeHallClosed), err.Error()))
		return
	}
	s.metrics.decision("route", dec.Denied, string(dec.Code()))
	if err != nil {
		s.log.Error("hall: decision not recorded", "request_id", requestID(r), "correlation_id", in.CorrelationID, "error", err)
		writeError(w, r, unavailableOr(err, &apiError{Status: http.StatusInternalServerError, Code: CodeEvidence,
			Message: "the decision could not be recorded in the evidence ledger", Extra: map[string]any{"decision": dec}}))
		return
	}
	if hint := s.h.DenyHint(&dec); hint != "" {
		// The body is the decision as recorded: the advice goes beside it.
		w.Header().Set("Hall-Hint", hint)
	}
	writeRawJSON(w, http.StatusOK, body) // the decision as recorded, encoded once
}

// runRequest is the body of POST /wcp/run.
type runRequest struct {
	Input json.RawMessage `json:"input"`
	// Payload is the worker's input: a JSON string is passed as its UTF-8
	// bytes, any other JSON value as its JSON text.
	Payload json.RawMessage `json:"payload"`
	// PayloadBase64 is the worker's input as standard base64 (binary input).
	PayloadBase64 *string `json:"payload_base64"`
	// TimeoutMS lowers the worker's time limit for this run.
	TimeoutMS *int64 `json:"timeout_ms"`
	// ApprovalID re-submits a request a human approved (docs/POLICY.md).
	ApprovalID string `json:"approval_id"`
}

func isNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || string(t) == "null"
}

func (s *Server) parseRun(w http.ResponseWriter, r *http.Request, body []byte) (*host.RunRequest, *apiError) {
	if !json.Valid(body) {
		return nil, errf(http.StatusBadRequest, CodeInvalidJSON, "the request body is not valid JSON")
	}
	var req runRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, errf(http.StatusUnprocessableEntity, CodeInvalidRequest, `the body must be {"input": <RouteInput>, "payload": <string or JSON> | "payload_base64": <base64>, "timeout_ms"?: <int>, "approval_id"?: "apr_…"}: `+err.Error())
	}
	if isNull(req.Input) {
		return nil, errf(http.StatusUnprocessableEntity, CodeInvalidRequest, "input (the RouteInput) is required").field("input")
	}
	in, e := s.routeInput(w, r, req.Input, req.ApprovalID)
	if e != nil {
		return nil, e
	}
	if req.ApprovalID != "" {
		// Bounded and of one form before it reaches a decision, a
		// message or the ledger (host.Run checks it too).
		if err := approval.CheckID(req.ApprovalID); err != nil {
			return nil, errf(http.StatusUnprocessableEntity, CodeInvalidRequest, "approval_id: "+err.Error()).field("approval_id")
		}
	}
	rr := &host.RunRequest{Input: in, ApprovalID: req.ApprovalID}
	switch {
	case !isNull(req.Payload) && req.PayloadBase64 != nil:
		return nil, errf(http.StatusUnprocessableEntity, CodeInvalidRequest, "give payload or payload_base64, not both").field("payload_base64")
	case req.PayloadBase64 != nil:
		b, err := base64.StdEncoding.DecodeString(*req.PayloadBase64)
		if err != nil {
			return nil, errf(http.StatusUnprocessableEntity, CodeInvalidRequest, "payload_base64 is not standard base64: "+err.Error()).field("payload_base64")
		}
		rr.Payload = b
	case !isNull(req.Payload):
		if bytes.TrimSpace(req.Payload)[0] == '"' {
			var str string
			if err := json.Unmarshal(req.Payload, &str); err != nil {
				return nil, errf(http.StatusUnprocessableEntity, CodeInvalidRequest, "payload: "+err.Error()).field("payload")
			}
			rr.Payload = []byte(str)
		} else {
			rr.Payload = bytes.TrimSpace(req.Payload)
		}
	}
	if req.TimeoutMS != nil {
		if *req.TimeoutMS <= 0 {
			return nil, errf(http.StatusUnprocessableEntity, CodeInvalidRequest, "timeout_ms must be positive").field("timeout_ms")
		}
		rr.Timeout = time.Duration(*req.TimeoutMS) * time.Millisecond
	}
	return rr, nil
}

// outcomeStatus is the HTTP status of a dispatch whose worker ran and
// failed: the Hall is a gateway to the worker, so a worker failure is a 502,
// a worker that ran out of time a 504, an input over the worker's limit a
// 413.
func outcomeStatus(outcome string) int {
	if info, ok := wcp.Code(outcome).Info(); ok && info.HTTPStatus >= 400 && info.Code != wcp.CodeCancelled {
		return info.HTTPStatus
	}
	return http.StatusBadGateway
}

// run answers POST /wcp/run: decide, dispatch and record, through
// host.Hall.Run, bounded by the dispatch semaphore.
func (s *Server) run(w http.ResponseWriter, r *http.Request) {
	body, ok := s.jsonBody(w, r)
	if !ok {
		return
	}
	req, e := s.parseRun(w, r, body)
	if e != nil {
		writeError(w, r, e)
		return
	}
	if !s.h.Online() {
		s.metrics.rejected.WithLabelValues("offline").Inc()
		writeError(w, r, errf(http.StatusServiceUnavailable, CodeHallOffline, "the Hall is offline and refuses dispatch (an administrator brings it online with POST /api/server/go-online)"))
		return
	}
	releaseOwn, ok := s.admitOwn()
	if !ok {
		s.metrics.rejected.WithLabelValues("saturated").Inc()
		writeError(w, r, &apiError{Status: http.StatusServiceUnavailable, Code: CodeSaturated, RetryAfter: 1,
			Message: fmt.Sprintf("the Hall is running its maximum of %d dispatches; retry later", cap(s.sem))})
		return
	}
	defer releaseOwn()

	s.metrics.inFlight.Inc()
	start := time.Now()
	// Detached from the request: a client hanging up must not cancel a
	// running worker half-way or the commit of its receipt.
	res, err := s.h.Run(context.WithoutCancel(r.Context()), *req)
	elapsed := time.Since(start)
	s.metrics.inFlight.Dec()

	if errors.Is(err, host.ErrOffline) {
		s.metrics.rejected.WithLabelValues("offline").Inc()
		writeError(w, r, errf(http.StatusServiceUnavailable, CodeHallOffline, "the Hall is offline and refuses dispatch (an administrator brings it online with POST /api/server/go-online)"))
		return
	}
	var sat *host.SaturatedError
	if errors.As(err, &sat) {
		// No fair dispatch slot for this tenant (host/admission.go):
		// nothing ran, nothing was recorded; the client may retry.
		s.metrics.rejected.WithLabelValues("saturated").Inc()
		writeError(w, r, &apiError{Status: http.StatusServiceUnavailable, Code: CodeSaturated, RetryAfter: 1, Message: sat.Error()})
		return
	}
	if res != nil {
		s.metrics.decision("run", res.Decision.Denied, string(res.Decision.Code()))
	}
	if err != nil {
		s.log.Error("hall: dispatch failed", "request_id", requestID(r), "correlation_id", req.Input.CorrelationID, "error", err)
		e := errf(http.StatusInternalServerError, CodeInternal, "the Hall failed to complete the dispatch (see the server log under request id "+requestID(r)+")")
		if c, ok := wcp.CodeOf(err); ok {
			// A refusal with a code of its own (HALL_DISK_LOW, MEMORY_BUDGET,
			// ...) says what the operator can do, with its own status.
			e = errf(c.HTTPStatus(), string(c), err.Error())
		}
		if res != nil {
			e.Extra = map[string]any{"decision": res.Decision, "ran": res.Ran}
		}
		if res == nil || !res.Ran {
			// Nothing ran: a lost database is a 503 to retry.
			e = unavailableOr(err, e)
		}
		writeError(w, r, e)
		return
	}
	d := &res.Decision
	if d.Denied && pendingRun(w, res) {
		return
	}
	if d.Denied {
		extra := map[string]any{"decision": res.Decision, "ran": false}
		if hint := s.h.DenyHint(d); hint != "" {
			extra["hint"] = hint
			w.Header().Set("Hall-Hint", hint)
		}
		writeError(w, r, &apiError{Status: d.Code().HTTPStatus(), Code: string(d.Code()), Message: d.DenyReason.Message, Extra: extra})
		return
	}
	if !res.Ran {
		writeJSON(w, http.StatusOK, map[string]any{"decision": res.Decision, "ran": false, "outcome": "dry_run"})
		return
	}
	s.metrics.ran(res, elapsed.Seconds())
	out := map[string]any{
		"decision":    res.Decision,
		"ran":         true,
		"worker_id":   res.WorkerID,
		"outcome":     res.Outcome,
		"receipt_id":  res.ReceiptID,
		"duration_ms": float64(res.Duration.Microseconds()) / 1000,
	}
	if res.Err != nil {
		if hint := s.h.FailureHint(res.Outcome, res.Err); hint != "" {
			out["hint"] = hint
		}
		writeError(w, r, &apiError{Status: outcomeStatus(res.Outcome), Code: res.Outcome, Message: res.Err.Error(), Extra: out})
		return
	}
	if utf8.Valid(res.Output) {
		out["output"], out["output_encoding"] = string(res.Output), "utf-8"
	} else {
		out["output"], out["output_encoding"] = res.Output, "base64"
	}
	writeJSON(w, http.StatusOK, out)
}

// jsonBody reads a JSON request body within the size limit; on failure it
// has written the error response.
func (s *Server) jsonBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	if e := requireMedia(r, "application/json"); e != nil {
		writeError(w, r, e)
		return nil, false
	}
	body, e := readBody(w, r, s.cfg.MaxBody)
	if e != nil {
		writeError(w, r, e)
		return nil, false
	}
	return body, true
}
