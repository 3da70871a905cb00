package server

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/wcphall/hall/host/wcp"
)

// apiOperation describes one endpoint of the JSON API for the OpenAPI
// document served at GET /openapi.json. TestOpenAPIMatchesServer keeps the
// table in step with the routes the server registers and the statuses and
// error codes it answers with.
type apiOperation struct {
	Method, Path string // Path as chi routes it ({name} parameters)
	// Token is who may call: "" (nobody needs one), "admin", "tenant",
	// "any", "audit" (admin or the tenant itself) or "approver".
	Token   string
	Summary string
	// Success maps each success status to its description.
	Success map[int]string
	// Body is the request body's media type ("" for none).
	Body string
}

// apiOperations is every route of the JSON API (the console's HTML pages
// under /console are not part of it).
var apiOperations = []apiOperation{
	{"GET", "/", "", "links to the console, this document and health (HTML for a browser)", map[int]string{200: "the links"}, ""},
	{"GET", "/health", "", "liveness: status, online, version, snapshot_digest", map[int]string{200: "the process serves (online or not)"}, ""},
	{"GET", "/openapi.json", "", "this document", map[int]string{200: "the OpenAPI 3.1 document"}, ""},
	{"GET", "/metrics", "", "Prometheus metrics", map[int]string{200: "Prometheus text exposition"}, ""},
	{"GET", "/wcp/health", "any", "compliance level, enabled checks, workers, rules", map[int]string{200: "the Hall's WCP health"}, ""},
	{"GET", "/wcp/capabilities", "any", "capabilities served, with their species", map[int]string{200: "capabilities"}, ""},
	{"GET", "/wcp/workers", "any", "enrolled registry records", map[int]string{200: "records"}, ""},
	{"GET", "/wcp/workers/{worker_id}", "any", "one enrolled record", map[int]string{200: "the record"}, ""},
	{"POST", "/enroll", "admin", "enroll a worker: a record naming a stored module (JSON) or module and record (multipart)", map[int]string{201: "a new worker", 200: "a worker replaced"}, "application/json"},
	{"PUT", "/artifacts/{digest}", "admin", "store a module under its digest (sha256:<hex>)", map[int]string{201: "stored"}, "application/wasm"},
	{"POST", "/api/server/go-online", "admin", "accept dispatches", map[int]string{200: "online"}, ""},
	{"POST", "/api/server/go-offline", "admin", "refuse dispatches (HALL_OFFLINE)", map[int]string{200: "offline"}, ""},
	{"GET", "/admin/rules", "admin", "the rules document in force, with its ETag", map[int]string{200: "rules.json"}, ""},
	{"PUT", "/admin/rules", "admin", "replace the rules (If-Match: the ETag read)", map[int]string{200: "replaced"}, "application/json"},
	{"GET", "/admin/policy", "admin", "the stored policy set, with its ETag", map[int]string{200: "policy.json"}, ""},
	{"PUT", "/admin/policy", "admin", "replace the policy set (If-Match: the ETag read); a recorded change, in force when answered", map[int]string{200: "replaced"}, "application/json"},
	{"GET", "/admin/config", "admin", "the stored configuration (hall.json), with its ETag", map[int]string{200: "hall.json"}, ""},
	{"PUT", "/admin/config", "admin", "replace the configuration (If-Match: the ETag read); a recorded change, in force when answered", map[int]string{200: "replaced"}, "application/json"},
	{"GET", "/admin/trust", "admin", "the trust policy in force (trust.json, keys inline), with its ETag", map[int]string{200: "trust.json", 404: "no trust policy"}, ""},
	{"PUT", "/admin/trust", "admin", "replace the trust policy (If-Match: the ETag read); recorded", map[int]string{200: "replaced"}, "application/json"},
	{"POST", "/wcp/route", "tenant", "decide a request (fields left out get the CLI's defaults: env dev, data_label INTERNAL, tenant_risk low, qos_class P2, a new correlation_id, named in the Hall-Defaulted header; a denial is a 200 decision, its likely fix in Hall-Hint)", map[int]string{200: "the RouteDecision, allowed or denied"}, "application/json"},
	{"POST", "/wcp/run", "tenant", "decide and run the selected worker; the receipt is committed before the answer (input defaults as /wcp/route; with approval_id and no correlation_id, the held request is resumed under its own)", map[int]string{200: "the worker ran (or a dry run)", 202: "the decision waits for a human approval"}, "application/json"},
	{"POST", "/mcp", "tenant", "MCP Streamable HTTP: the capabilities as tools (docs/MCP.md)", map[int]string{200: "an MCP message or stream", 202: "accepted"}, "application/json"},
	{"GET", "/mcp", "tenant", "MCP Streamable HTTP: the server's event stream", map[int]string{200: "an event stream"}, ""},
	{"DELETE", "/mcp", "tenant", "MCP Streamable HTTP: end the session", map[int]string{200: "ended", 204: "ended"}, ""},
	{"GET", "/wcp/receipts", "audit", "signed receipts, newest first (a tenant sees its own)", map[int]string{200: "receipts"}, ""},
	{"GET", "/wcp/receipts/{receipt_id}", "audit", "one signed receipt; with ?tree=1 the chain of dispatches it belongs to, from its root", map[int]string{200: "the receipt, or its chain as a tree"}, ""},
	{"GET", "/wcp/approvals", "any", "pending and answered human approvals (a tenant sees its own)", map[int]string{200: "approvals"}, ""},
	{"GET", "/wcp/approvals/{approval_id}", "any", "one approval", map[int]string{200: "the approval"}, ""},
	{"POST", "/wcp/approvals/{approval_id}/approve", "approver", "approve a pending request", map[int]string{200: "answered", 202: "answered; the dispatch runs"}, ""},
	{"POST", "/wcp/approvals/{approval_id}/deny", "approver", "deny a pending request", map[int]string{200: "answered", 202: "answered"}, ""},
	// PyHall's Hall API (docs/PYHALL.md).
	{"GET", "/status", "audit", "PyHall's status: workers, decisions today, denials today (a tenant counts its own)", map[int]string{200: "status"}, ""},
	{"GET", "/workers", "any", "PyHall's worker list: enrolled records with enrolled_at and status", map[int]string{200: "workers"}, ""},
	{"GET", "/dispatches", "audit", "PyHall's dispatch log: recorded decisions, the Hall's and ingested, newest first (a tenant sees its own)", map[int]string{200: "decisions"}, ""},
	{"GET", "/dispatches/active", "audit", "dispatches running now (a tenant sees its own)", map[int]string{200: "dispatches"}, ""},
	{"GET", "/alerts", "audit", "conditions that need an operator now", map[int]string{200: "alerts"}, ""},
	{"GET", "/wcp/registry/ban-list", "any", "PyHall's registry proxy: the Hall consults no registry (503 REGISTRY_UNAVAILABLE, source local-only)", map[int]string{}, ""},
	{"GET", "/wcp/registry/verify/{worker_id}", "any", "PyHall's registry proxy: the Hall consults no registry (503 REGISTRY_UNAVAILABLE, source local-only)", map[int]string{}, ""},
	{"POST", "/decisions/ingest", "audit", "record a decision made elsewhere as evidence, not decided by this Hall (idempotent by decision_id)", map[int]string{201: "recorded (or already recorded)"}, "application/json"},
}

// apiErrorCodes are the error codes an API caller can receive, with the
// status each is answered with: every code of wcp.Codes that has one.
func apiErrorCodes() []wcp.CodeInfo {
	var out []wcp.CodeInfo
	for _, info := range wcp.Codes() {
		if info.HTTPStatus != 0 && info.Kind != wcp.KindGuest {
			out = append(out, info)
		}
	}
	return out
}

// errorStatuses are the error statuses an operation documents: those of
// authentication, of request bodies, and 500/503 for every operation.
func (op apiOperation) errorStatuses() []int {
	st := []int{http.StatusInternalServerError}
	if op.Token != "" {
		st = append(st, http.StatusUnauthorized, http.StatusForbidden)
	}
	if op.Body != "" {
		st = append(st, http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity, http.StatusConflict)
	}
	if strings.Contains(op.Path, "{") {
		st = append(st, http.StatusNotFound, http.StatusBadRequest)
	}
	if op.Path == "/wcp/run" || op.Path == "/mcp" {
		// Denials (deny codes) and worker outcomes answer with the
		// statuses of wcp.Codes.
		for _, info := range apiErrorCodes() {
			if info.Kind == wcp.KindDeny || info.Kind == wcp.KindOutcome || info.Kind == wcp.KindHTTP {
				st = append(st, info.HTTPStatus)
			}
		}
	}
	if op.Path == "/wcp/route" || op.Path == "/wcp/run" || op.Path == "/mcp" {
		st = append(st, http.StatusServiceUnavailable, http.StatusTooManyRequests)
	}
	if op.Path == "/admin/rules" && op.Method == "PUT" {
		st = append(st, http.StatusPreconditionFailed, http.StatusPreconditionRequired)
	}
	if op.Path == "/admin/policy" || op.Path == "/admin/config" {
		// No document yet (GET); If-Match not naming the stored one (PUT).
		st = append(st, http.StatusNotFound, http.StatusPreconditionFailed)
	}
	if op.Token != "" {
		// STATE_UNAVAILABLE: the shared database of --database-url
		// cannot be reached (the token itself is read from it).
		st = append(st, http.StatusServiceUnavailable)
	}
	if op.Path == "/wcp/run" || op.Path == "/enroll" || strings.HasPrefix(op.Path, "/wcp/registry/") {
		st = append(st, http.StatusServiceUnavailable)
	}
	slices.Sort(st)
	return slices.Compact(st)
}

var openAPIDoc = sync.OnceValue(func() []byte {
	codes := apiErrorCodes()
	enum := make([]string, len(codes))
	table := make([]map[string]any, len(codes))
	for i, c := range codes {
		enum[i] = string(c.Code)
		table[i] = map[string]any{"code": c.Code, "status": c.HTTPStatus, "kind": c.Kind, "meaning": c.Meaning}
	}
	paths := map[string]map[string]any{}
	for _, op := range apiOperations {
		responses := map[string]any{}
		for st, desc := range op.Success {
			responses[strconv.Itoa(st)] = map[string]any{"description": desc}
		}
		for _, st := range op.errorStatuses() {
			responses[strconv.Itoa(st)] = map[string]any{
				"description": http.StatusText(st),
				"content":     map[string]any{"application/json": map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/Error"}}},
			}
		}
		o := map[string]any{
			"summary":     op.Summary,
			"operationId": strings.ToLower(op.Method) + strings.NewReplacer("/", "_", "{", "", "}", "", "-", "_", ".", "_").Replace(op.Path),
			"responses":   responses,
		}
		if op.Token != "" {
			o["security"] = []any{map[string]any{"bearer": []string{}}}
			o["x-token-scope"] = op.Token
		} else {
			o["security"] = []any{}
		}
		var params []any
		for _, seg := range strings.Split(op.Path, "/") {
			if strings.HasPrefix(seg, "{") {
				params = append(params, map[string]any{"name": strings.Trim(seg, "{}"), "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
			}
		}
		if params != nil {
			o["parameters"] = params
		}
		if op.Body != "" {
			content := map[string]any{op.Body: map[string]any{"schema": map[string]any{}}}
			if op.Path == "/enroll" {
				content["multipart/form-data"] = map[string]any{"schema": map[string]any{"type": "object", "properties": map[string]any{
					"module": map[string]any{"type": "string", "contentMediaType": "application/wasm"},
					"record": map[string]any{"type": "string", "contentMediaType": "application/json"},
				}, "required": []string{"module"}}}
			}
			if op.Body == "application/wasm" {
				content["application/octet-stream"] = map[string]any{"schema": map[string]any{}}
			}
			o["requestBody"] = map[string]any{"required": true, "content": content}
		}
		if paths[op.Path] == nil {
			paths[op.Path] = map[string]any{}
		}
		paths[op.Path][strings.ToLower(op.Method)] = o
	}
	doc := map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{
			"title":       "Hall API",
			"version":     "1",
			"description": "The Hall's HTTP API (docs/HTTP.md): enrollment, discovery, governed dispatch, receipts. Every error is {\"error\": {\"code\", \"message\", \"request_id\", ...}} with a code of x-error-codes.",
		},
		"paths": paths,
		"components": map[string]any{
			"securitySchemes": map[string]any{"bearer": map[string]any{"type": "http", "scheme": "bearer", "description": "a token from hall tokens create (--admin, --tenant ID, ...)"}},
			"schemas": map[string]any{
				"ErrorCode": map[string]any{"type": "string", "enum": enum},
				"Error": map[string]any{
					"type":     "object",
					"required": []string{"error"},
					"properties": map[string]any{"error": map[string]any{
						"type":     "object",
						"required": []string{"code", "message", "request_id"},
						"properties": map[string]any{
							"code":       map[string]any{"$ref": "#/components/schemas/ErrorCode"},
							"message":    map[string]any{"type": "string"},
							"request_id": map[string]any{"type": "string"},
							"field":      map[string]any{"type": "string"},
						},
					}},
				},
			},
		},
		"x-error-codes": table,
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		panic("server: OpenAPI document: " + err.Error())
	}
	return append(b, '\n')
})

// OpenAPI returns the OpenAPI 3.1 document of the API, as served at
// GET /openapi.json.
func OpenAPI() []byte { return openAPIDoc() }

func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(OpenAPI())
}
