package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"go.opentelemetry.io/otel/trace"
	"net/url"
	"strings"

	extism "github.com/extism/go-sdk"
)

// extismHTTPNamespace is the host module that serves a guest's Extism
// http_request, http_status_code and http_headers imports (routeExtismHTTP).
const extismHTTPNamespace = "hall:extism/env"

// extismHTTPImports are the imports of extism:host/env the Hall serves
// itself, with the signatures Extism gives them.
var extismHTTPImports = map[string]bool{"http_request": true, "http_status_code": true, "http_headers": true}

// EgressEventID is the event_id of the telemetry event the Hall adds to a
// call's Result.Events for every HTTP exchange a guest attempts, through
// hall_http or Extism's http_request, allowed or refused. Guests cannot
// emit events under the "evt.hall." prefix (hall_emit drops them), so these
// are always the Hall's own.
const EgressEventID = "evt.hall.egress.request"

// reservedEventPrefix is the event_id prefix only the Hall writes.
const reservedEventPrefix = "evt.hall."

// maxEgressEvents bounds the egress events kept for one call; the rest are
// counted in a final evt.hall.egress.dropped event.
const maxEgressEvents = 256

// egressEvent is one recorded exchange (docs/ABI.md, "Telemetry").
type egressEvent struct {
	EventID string `json:"event_id"`
	// Import is the host function used: "hall_http" or "http_request".
	Import string `json:"import"`
	Method string `json:"method"`
	// URL and FinalURL (after redirects) are redacted: no user info, query
	// or fragment, which may carry credentials.
	URL           string  `json:"url"`
	FinalURL      string  `json:"final_url,omitempty"`
	Status        int     `json:"status,omitempty"`
	ResponseBytes int     `json:"response_bytes"`
	DurationMS    float64 `json:"duration_ms"`
	// Outcome is "ok" or the code of the failure (EGRESS_DENIED,
	// HTTP_FAILED, RESPONSE_TOO_LARGE, BAD_REQUEST).
	Outcome string `json:"outcome"`
	Message string `json:"message,omitempty"`
}

// egressLog collects a call's egress events. Host functions run on the
// guest's goroutine, one at a time per call, so it needs no lock.
type egressLog struct {
	events  []json.RawMessage
	dropped int
	// tracer traces each exchange (Request.Tracer; nil: off).
	tracer trace.Tracer
}

func (l *egressLog) add(ev egressEvent) {
	if l == nil {
		return
	}
	if len(l.events) >= maxEgressEvents {
		l.dropped++
		return
	}
	ev.EventID = EgressEventID
	b, _ := json.Marshal(ev)
	l.events = append(l.events, b)
}

// take returns the events, with the count of dropped ones last.
func (l *egressLog) take() []json.RawMessage {
	out := l.events
	if l.dropped > 0 {
		b, _ := json.Marshal(map[string]any{"event_id": "evt.hall.egress.dropped", "dropped": l.dropped})
		out = append(out, b)
	}
	return out
}

// redactURL keeps the scheme, host and path of a URL.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable url)"
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
	return u.String()
}

// extismHTTPState is what Extism keeps per plugin instance about the last
// http_request: its status code and response headers.
type extismHTTPState struct {
	status  int32
	headers map[string]string
}

// extismHTTPFunctions implement Extism's http_request, http_status_code and
// http_headers over the worker's egress (egress.go), in the module
// routeExtismHTTP points the guest's imports at.
//
// Why not Extism's own: it checks only the first URL (not redirects),
// ignores ports, lets "*" match dots, dials any address a name resolves
// to and uses http.DefaultClient (RATIONALE.md, "Network"). Here the
// plugin gets Extism's semantics and the Hall's checks: the exact host and
// port of network_egress, redirects re-checked, private and metadata
// addresses refused, the response bounded, every exchange in telemetry.
//
// # Notes
//
//   - A refused request traps the call as Extism's does, with Extism's
//     message ("HTTP request to '<url>' is not allowed") and the outcome
//     EGRESS_DENIED. A request that fails on the network (or whose response
//     is too large) traps it too, as in Extism, with the outcome
//     WORKER_TRAP. A request still in flight when the call's time limit
//     ends makes the call's outcome LIMIT_TIMEOUT (a caller that left:
//     the call is abandoned), never a trap. A response with any status, 4xx and 5xx included, is a
//     response: the guest reads the status with http_status_code.
//   - As in Extism, the host frees the request and body blocks it was given
//     and returns 0 for an empty response body.
//   - http_headers is always enabled (Extism's EnableHttpResponseHeaders):
//     a JSON object of the last response's headers, lower-cased, values
//     joined with ",".
func extismHTTPFunctions() []extism.HostFunction {
	i64 := []extism.ValueType{extism.ValueTypeI64}
	i32 := []extism.ValueType{extism.ValueTypeI32}
	fns := []extism.HostFunction{
		extism.NewHostFunctionWithStack("http_request", extismHTTPRequest, []extism.ValueType{extism.ValueTypeI64, extism.ValueTypeI64}, i64),
		extism.NewHostFunctionWithStack("http_status_code", extismHTTPStatusCode, nil, i32),
		extism.NewHostFunctionWithStack("http_headers", extismHTTPHeaders, nil, i64),
	}
	for i := range fns {
		fns[i].SetNamespace(extismHTTPNamespace)
	}
	return fns
}

// extismRequest is Extism's HttpRequest JSON.
type extismRequest struct {
	URL     string            `json:"url"`
	Method  string            `json:"method"`
	Headers map[string]string `json:"headers"`
}

func extismHTTPRequest(ctx context.Context, p *extism.CurrentPlugin, stack []uint64) {
	cs := stateOf(ctx)
	st := cs.http()
	st.status, st.headers = 0, map[string]string{}
	raw := readBlock(ctx, p, stack[0])
	_ = p.FreeWithContext(ctx, stack[0])
	var body []byte
	if stack[1] != 0 {
		body = readBlock(ctx, p, stack[1])
		_ = p.FreeWithContext(ctx, stack[1])
	}
	var r extismRequest
	if err := json.Unmarshal(raw, &r); err != nil {
		panic(errorf(CodeWorkerTrap, "%s: http_request: invalid http request: %v", cs.w.name, err))
	}
	var resp *httpResponse
	var fe *fetchError
	if err := cs.cpu.waiting(func() {
		resp, fe = cs.w.egress.fetch(ctx, &cs.egress, "http_request", r.Method, r.URL, r.Headers, body)
	}); err != nil {
		panic(fmt.Errorf("%s: http_request: %w", cs.w.name, err))
	}
	if fe != nil {
		if ctx.Err() != nil {
			// The call's time limit ended (or its caller left) while the
			// request was in flight: that, not the network, is the outcome,
			// and classify names it (LIMIT_TIMEOUT or the caller's
			// cancellation) from the context.
			panic(fmt.Errorf("%s: http_request %s %s cut: %w", cs.w.name, strings.ToUpper(orGET(r.Method)), redactURL(r.URL), ctx.Err()))
		}
		if fe.Code == GuestEgressDenied {
			panic(errorf(CodeEgressDenied, "%s: HTTP request to '%s' is not allowed: %s", cs.w.name, redactURL(r.URL), fe.Msg))
		}
		panic(errorf(CodeWorkerTrap, "%s: http_request %s %s: %s: %s", cs.w.name, strings.ToUpper(orGET(r.Method)), redactURL(r.URL), fe.Code, fe.Msg))
	}
	st.status, st.headers = int32(resp.Status), resp.Headers
	if len(resp.Body) == 0 {
		stack[0] = 0
		return
	}
	stack[0] = writeBlock(p, resp.Body)
}

func orGET(m string) string {
	if m == "" {
		return "GET"
	}
	return m
}

func extismHTTPStatusCode(ctx context.Context, _ *extism.CurrentPlugin, stack []uint64) {
	stack[0] = extism.EncodeI32(stateOf(ctx).http().status)
}

func extismHTTPHeaders(ctx context.Context, p *extism.CurrentPlugin, stack []uint64) {
	h := stateOf(ctx).http().headers
	if h == nil {
		h = map[string]string{}
	}
	b, err := json.Marshal(h)
	if err != nil {
		panic(errorf(CodeWorkerTrap, "http_headers: %v", err))
	}
	stack[0] = writeBlock(p, b)
}

// routeExtismHTTP returns wasm with its imports of extism:host/env
// http_request, http_status_code and http_headers moved to
// extismHTTPNamespace, where the Hall serves them: Extism instantiates
// extism:host/env itself, with its own http_request, and a host module of
// the same name cannot be added beside it.
//
// Only the module name of those imports changes; their field names,
// types and order, and every other byte outside the import section, stay
// as they were. The rewrite is deterministic (the compilation cache keeps
// hitting) and the caller's bytes are never modified. A module whose
// import section does not parse is returned as is: it then links against
// Extism's http_request, which allows no host (the Hall never sets
// AllowedHosts), so an unparsed module fails closed.
func routeExtismHTTP(wasm []byte) []byte {
	secs, err := rawSections(wasm)
	if err != nil {
		return wasm
	}
	for _, s := range secs {
		if s.id != 2 {
			continue
		}
		body, changed, err := rewriteImports(wasm[s.start:s.end])
		if err != nil || !changed {
			return wasm
		}
		out := make([]byte, 0, len(wasm)+64)
		out = append(out, wasm[:s.header]...)
		out = append(out, 2)
		out = appendULEB(out, uint64(len(body)))
		out = append(out, body...)
		return append(out, wasm[s.end:]...)
	}
	return wasm
}

// rewriteImports re-encodes an import section with the Extism HTTP imports
// moved to extismHTTPNamespace.
func rewriteImports(b []byte) ([]byte, bool, error) {
	r := byteReader{b: b}
	n := r.uleb()
	if r.err != nil || n > uint64(len(b)) {
		return nil, false, fmt.Errorf("bad import count")
	}
	out := make([]byte, 0, len(b)+64)
	out = appendULEB(out, n)
	changed := false
	for range n {
		mod := r.name()
		field := r.name()
		descStart := r.off
		skipImportDesc(&r)
		if r.err != nil {
			return nil, false, r.err
		}
		if mod == "extism:host/env" && extismHTTPImports[field] {
			mod, changed = extismHTTPNamespace, true
		}
		out = appendULEB(out, uint64(len(mod)))
		out = append(out, mod...)
		out = appendULEB(out, uint64(len(field)))
		out = append(out, field...)
		out = append(out, b[descStart:r.off]...)
	}
	if r.off != len(b) {
		return nil, false, fmt.Errorf("import section has %d trailing bytes", len(b)-r.off)
	}
	return out, changed, nil
}

// skipImportDesc skips one import description (func, table, memory,
// global or tag).
func skipImportDesc(r *byteReader) {
	switch kind := r.byte1(); kind {
	case 0: // func: type index
		r.uleb()
	case 1: // table: reftype, limits
		r.byte1()
		skipLimits(r)
	case 2: // memory: limits
		skipLimits(r)
	case 3: // global: valtype, mutability
		r.byte1()
		r.byte1()
	case 4: // tag: attribute, type index
		r.byte1()
		r.uleb()
	default:
		if r.err == nil {
			r.err = fmt.Errorf("import kind %d", kind)
		}
	}
}

// skipLimits skips limits whose flag byte says whether a maximum follows
// (bit 0); the shared and 64-bit bits do not change the encoding's shape.
func skipLimits(r *byteReader) {
	flag := r.byte1()
	if flag > 7 && r.err == nil {
		r.err = fmt.Errorf("limits flag %#x", flag)
		return
	}
	r.uleb()
	if flag&1 != 0 {
		r.uleb()
	}
}

// name reads a length-prefixed UTF-8 name.
func (r *byteReader) name() string {
	n := r.uleb()
	if r.err != nil {
		return ""
	}
	if n > uint64(len(r.b)-r.off) {
		r.err = fmt.Errorf("name overruns section")
		return ""
	}
	s := string(r.b[r.off : r.off+int(n)])
	r.off += int(n)
	return s
}
