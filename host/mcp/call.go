package mcp

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/approval"
)

// Status values of a result's _meta.status.
const (
	StatusOK              = "ok"               // the worker ran and succeeded
	StatusFailed          = "failed"           // the worker ran and failed (_meta.outcome)
	StatusDenied          = "denied"           // the Hall denied the call (_meta.deny_code); nothing ran
	StatusPendingApproval = "pending_approval" // a human must approve first; nothing ran
	StatusRefused         = "refused"          // the call was not dispatched (bad input, saturation...)
)

func (s *Server) handler(name string) sdk.ToolHandler {
	return func(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
		t := (*s.tools.Load())[name]
		if t == nil {
			return nil, fmt.Errorf("tool %s is no longer served (the Hall changed); list the tools again", name)
		}
		ctx, run := s.startToolSpan(ctx, name, req)
		var r *sdk.CallToolResult
		s.runners.do(ctx, func() { r = s.call(ctx, t, req) })
		endToolSpan(run, r)
		return r, nil
	}
}

// call is one governed dispatch: it builds the RouteInput the operator
// configured (plus the overrides it allows), runs it through
// host.Hall.Run and renders the decision, output and evidence.
func (s *Server) call(ctx context.Context, t *tool, req *sdk.CallToolRequest) *sdk.CallToolResult {
	meta := map[string]any{}
	if req.Params != nil && req.Params.Meta != nil {
		meta = req.Params.Meta
	}
	corr, _ := meta["correlation_id"].(string)
	out := sdk.Meta{"capability_id": t.capability}

	if s.cfgErr != nil {
		return refused(withCorrelation(out, corr), wcp.CodeInternal, "the MCP configuration of this Hall does not load, so no call is dispatched: "+s.cfgErr.Error())
	}
	tenant, err := s.tenant(req)
	if err != nil {
		return refused(withCorrelation(out, corr), wcp.CodeUnauthenticated, err.Error())
	}
	// _meta.approval_id re-submits a call a human approved (with the same
	// arguments); checked like every caller string. Without
	// _meta.correlation_id, the call resumes under the held call's
	// correlation id, which the server drew, not the agent (issue 25;
	// issue 27 item 4) — when the approval is this tenant's and this
	// tool's; otherwise the decision refuses the approval as it would any
	// other, and nothing of another tenant's approval is told.
	var presented string
	if v, ok := meta["approval_id"]; ok {
		str, _ := v.(string)
		if err := approval.CheckID(str); err != nil {
			return refused(withCorrelation(out, corr), wcp.CodeInvalidInput, "_meta.approval_id: "+err.Error())
		}
		presented = str
		if strings.TrimSpace(corr) == "" {
			if a, err := s.h.Approval(ctx, str); err == nil && a.TenantID == tenant && a.CapabilityID == t.capability {
				corr = a.CorrelationID
			}
		}
	}
	if strings.TrimSpace(corr) == "" {
		corr = uuid.NewString()
	}
	out["correlation_id"] = corr
	if v, ok := meta["tenant_id"]; ok && v != tenant {
		return refused(out, wcp.CodeTenantMismatch, fmt.Sprintf("_meta.tenant_id %v is not this session's tenant %q: the tenant comes from the token (HTTP) or the server's configuration (stdio); leave tenant_id out", v, tenant))
	}
	in := wcp.RouteInput{
		CapabilityID: t.capability, TenantID: tenant, CorrelationID: corr,
		Env: s.cfg.Env, DataLabel: s.cfg.DataLabel, TenantRisk: s.cfg.TenantRisk, QoSClass: s.cfg.QoSClass,
	}
	for _, f := range overridable {
		v, ok := meta[f]
		if !ok {
			continue
		}
		if !slices.Contains(s.cfg.AllowOverrides, f) {
			return refused(out, wcp.CodeForbidden, fmt.Sprintf("_meta.%s: the operator does not allow overriding %s per call (it is %q); leave it out, or the operator lists it in allow_overrides of %s", f, f, s.cfg.field(f), ConfigFile))
		}
		str, _ := v.(string)
		switch f {
		case "env":
			in.Env = str
		case "data_label":
			in.DataLabel = str
		case "tenant_risk":
			in.TenantRisk = str
		case "qos_class":
			in.QoSClass = str
		}
	}
	if err := in.Validate(); err != nil {
		return refused(out, wcp.CodeInvalidInput, err.Error())
	}
	payload, msg := t.payload(req.Params.Arguments)
	if msg != "" {
		return refused(out, wcp.CodeInvalidInput, msg)
	}

	release, ok := s.admit()
	if !ok {
		return refused(out, wcp.CodeHallSaturated, "the Hall is running its maximum of dispatches; retry later")
	}
	defer release()
	stop := s.progress(ctx, req, t)
	res, err := s.h.Run(ctx, host.RunRequest{Input: &in, Payload: payload, ApprovalID: presented})
	stop()
	if errors.Is(err, host.ErrOffline) {
		return refused(out, wcp.CodeHallOffline, "the Hall is offline and refuses dispatch")
	}
	if res != nil {
		out["decision_id"] = res.Decision.DecisionID.String()
	}
	if c, ok := wcp.CodeOf(err); ok {
		// A refusal with a code of its own (HALL_SATURATED, HALL_DISK_LOW,
		// MEMORY_BUDGET, ...) says what the agent or operator can do.
		return refused(out, c, strings.TrimPrefix(err.Error(), string(c)+": "))
	}
	if err != nil {
		s.log.Error("mcp: dispatch failed", "correlation_id", corr, "capability_id", t.capability, "error", err.Error())
		return result(out, StatusRefused, true, string(wcp.CodeHallError)+": the Hall failed to complete the dispatch (its log has the details under correlation id "+corr+")", "code", string(wcp.CodeHallError))
	}
	d := &res.Decision
	if d.Denied {
		code := string(d.Code())
		out["deny_code"] = code
		if d.Code() == wcp.DenyRequiresHumanApproval {
			text := "PENDING human approval (" + code + "): " + d.DenyReason.Message
			id := approvalID(d)
			if id == "" {
				return result(out, StatusPendingApproval, true, text)
			}
			out["approval_id"] = id
			exp := ""
			if d.DenyReason.ApprovalExpiresAt != nil {
				exp = *d.DenyReason.ApprovalExpiresAt
				out["approval_expires_at"] = exp
			}
			r := result(out, StatusPendingApproval, true, text+" Approval id: "+id+". To resume once an approver approves it (before "+exp+"), call "+t.def.Name+
				" again with the same arguments and _meta.approval_id \""+id+"\"; no correlation id is needed.")
			resume := resumeHint{Tool: t.def.Name, Meta: map[string]string{"approval_id": id},
				Arguments: "the same arguments as the held call: the approval is bound to their hash"}
			out["resume"] = resume
			// A tool with an output schema gets it in _meta only: clients
			// validate any structuredContent against the output schema,
			// even of an error result (the TypeScript SDK does).
			if t.output == nil {
				r.StructuredContent = pendingContent{
					Status: StatusPendingApproval, ApprovalID: id, ExpiresAt: exp, DenyCode: code, Reason: d.DenyReason.Message, Resume: resume,
				}
			}
			return r
		}
		return result(out, StatusDenied, true, "DENIED "+code+": "+d.DenyReason.Message)
	}
	out["worker_id"] = res.WorkerID
	out["outcome"] = res.Outcome
	out["receipt_id"] = res.ReceiptID
	out["duration_ms"] = float64(res.Duration.Microseconds()) / 1000
	if res.Err != nil {
		return result(out, StatusFailed, true, fmt.Sprintf("%s: %v (receipt %s)", res.Outcome, res.Err, res.ReceiptID))
	}
	r := result(out, StatusOK, false, "")
	if utf8.Valid(res.Output) {
		r.Content = []sdk.Content{&sdk.TextContent{Text: string(res.Output)}}
	} else {
		out["output_encoding"] = "base64"
		r.Content = []sdk.Content{&sdk.TextContent{Text: base64.StdEncoding.EncodeToString(res.Output)}}
	}
	if t.output != nil {
		var v any
		err := json.Unmarshal(res.Output, &v)
		if err == nil {
			err = t.output.Validate(v)
		}
		if err != nil {
			out["status"] = "output_invalid"
			r.IsError = true
			r.Content = append(r.Content, &sdk.TextContent{Text: "The worker's output does not match the output_schema of its record: " + err.Error()})
			return r
		}
		r.StructuredContent = json.RawMessage(res.Output)
	}
	return r
}

// tenant is the tenant a call runs as: the bearer token's on HTTP, the
// configured one on stdio.
func (s *Server) tenant(req *sdk.CallToolRequest) (string, error) {
	if req.Extra != nil && req.Extra.TokenInfo != nil && req.Extra.TokenInfo.UserID != "" {
		return req.Extra.TokenInfo.UserID, nil
	}
	if req.Extra != nil && req.Extra.Header != nil && req.Extra.Header.Get(hdrStdio) == "" {
		return "", errors.New("this HTTP request carries no authenticated tenant")
	}
	if s.cfg.Tenant == "" {
		return "", errors.New("no tenant is configured for this session (hall mcp --tenant)")
	}
	return s.cfg.Tenant, nil
}

// payload is the worker's input: the JSON arguments, checked against the
// record's input_schema, or the "input" string of the default schema.
func (t *tool) payload(args json.RawMessage) ([]byte, string) {
	args = bytes.TrimSpace(args)
	if len(args) == 0 || string(args) == "null" {
		args = []byte("{}")
	}
	if t.input != nil {
		var v any
		if err := json.Unmarshal(args, &v); err != nil {
			return nil, "arguments: not valid JSON: " + err.Error()
		}
		if err := t.input.Validate(v); err != nil {
			return nil, "arguments do not match the tool's input schema: " + err.Error()
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, args); err != nil {
			return nil, "arguments: " + err.Error()
		}
		return buf.Bytes(), ""
	}
	var a map[string]json.RawMessage
	if err := json.Unmarshal(args, &a); err != nil {
		return nil, `arguments must be an object {"input": "<the worker's input>"}`
	}
	for k := range a {
		if k != "input" {
			return nil, fmt.Sprintf(`arguments: unknown member %q; this tool takes {"input": "<the worker's input>"}`, k)
		}
	}
	raw, ok := a["input"]
	if !ok {
		return nil, ""
	}
	var str string
	if err := json.Unmarshal(raw, &str); err != nil {
		return nil, `arguments.input: must be a string (the worker's input)`
	}
	return []byte(str), ""
}

// pendingContent is the structured content of a call held for a human
// (docs/MCP.md, "Approvals").
type pendingContent struct {
	Status     string     `json:"status"`
	ApprovalID string     `json:"approval_id"`
	ExpiresAt  string     `json:"approval_expires_at"`
	DenyCode   string     `json:"deny_code"`
	Reason     string     `json:"reason"`
	Resume     resumeHint `json:"resume"`
}

// resumeHint says how an agent resumes a held call.
type resumeHint struct {
	Tool      string            `json:"tool"`
	Meta      map[string]string `json:"_meta"`
	Arguments string            `json:"arguments"`
}

// withCorrelation sets the correlation id of a refusal before the call's
// is settled: the caller's, else a fresh one.
func withCorrelation(meta sdk.Meta, corr string) sdk.Meta {
	if strings.TrimSpace(corr) == "" {
		corr = uuid.NewString()
	}
	meta["correlation_id"] = corr
	return meta
}

func refused(meta sdk.Meta, code wcp.Code, msg string) *sdk.CallToolResult {
	return result(meta, StatusRefused, true, string(code)+": "+msg, "code", string(code))
}

func result(meta sdk.Meta, status string, isErr bool, text string, kv ...string) *sdk.CallToolResult {
	meta["status"] = status
	for i := 0; i+1 < len(kv); i += 2 {
		meta[kv[i]] = kv[i+1]
	}
	r := &sdk.CallToolResult{Meta: meta, IsError: isErr, Content: []sdk.Content{}}
	if text != "" {
		r.Content = []sdk.Content{&sdk.TextContent{Text: text}}
	}
	return r
}

// approvalID is the id of the pending approval a decision created ("" when
// none): the Hall's own id (apr_ and 32 hex digits), never caller input.
func approvalID(d *wcp.RouteDecision) string { return host.PendingApproval(d) }

// progress sends notifications/progress every ProgressMS while a call
// runs, when the client asked for them (a progress token); the returned
// function stops it.
func (s *Server) progress(ctx context.Context, req *sdk.CallToolRequest, t *tool) (stop func()) {
	var token any
	if req.Params != nil {
		token = req.Params.GetProgressToken()
	}
	if token == nil || req.Session == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	start := time.Now()
	wg.Go(func() {
		tick := time.NewTicker(time.Duration(s.cfg.ProgressMS) * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
				el := time.Since(start)
				req.Session.NotifyProgress(ctx, &sdk.ProgressNotificationParams{
					ProgressToken: token,
					Progress:      el.Seconds(),
					Message:       fmt.Sprintf("%s: worker %s running for %s", t.capability, t.workerID, el.Round(time.Millisecond)),
				})
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}
