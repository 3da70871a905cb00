package sandbox

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"code.dny.dev/ssrf"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/wcphall/hall/internal/tracing"
)

// Bounds of one hall_http exchange.
const (
	maxHTTPResponse  = 4 << 20
	maxHTTPRedirects = 5
	httpTimeout      = 30 * time.Second
)

// egress is a worker's hall_http client.
//
// Why not Extism AllowedHosts: it checks only the first URL (not
// redirects), ignores ports, lets "*" match dots and uses
// http.DefaultClient (process-wide, honours HTTP_PROXY). Here every URL,
// redirects included, must match an entry exactly on host and port, and the
// dialer refuses every special-purpose address (blocked: loopback,
// private, link-local and cloud metadata, NAT64, 6to4, ...) unless that IP
// literal and port is itself an entry, so a listed name cannot be pointed
// at them through DNS.
type egress struct {
	allow    map[hostPort]bool
	literals map[netip.AddrPort]bool
	client   *http.Client
	// propagate: Policy.PropagateTrace.
	propagate bool
}

type hostPort struct {
	host string
	port int // 0: the scheme's default port
}

type deniedError struct{ msg string }

func (e *deniedError) Error() string { return e.msg }

// egressTestHooks replace name resolution and the TLS roots of an
// Engine's egress clients. Only this package's tests set them (an Engine
// field no caller can reach), to serve plugins that name a public host
// from a local test server.
type egressTestHooks struct {
	dial  func(ctx context.Context, network, addr string) (net.Conn, error)
	roots *x509.CertPool
}

func newEgress(entries []string, hooks *egressTestHooks) *egress {
	e := &egress{allow: map[hostPort]bool{}, literals: map[netip.AddrPort]bool{}}
	for _, ent := range entries {
		h, p, err := parseEgress(ent)
		if err != nil {
			continue // validatePolicy already refused these
		}
		e.allow[hostPort{h, p}] = true
		if a, err := netip.ParseAddr(h); err == nil {
			ports := []int{p}
			if p == 0 {
				ports = []int{80, 443} // the schemes' default ports
			}
			for _, port := range ports {
				e.literals[netip.AddrPortFrom(a.Unmap(), uint16(port))] = true
			}
		}
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	tr := &http.Transport{
		Proxy:                 nil, // never the process-wide proxy settings
		DialContext:           e.dialContext(dialer),
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          16,
		IdleConnTimeout:       30 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: httpTimeout,
	}
	if hooks != nil {
		tr.DialContext = hooks.dial
		tr.TLSClientConfig = &tls.Config{RootCAs: hooks.roots}
	}
	e.client = &http.Client{
		Transport: tr,
		Timeout:   httpTimeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= maxHTTPRedirects {
				return &deniedError{fmt.Sprintf("more than %d redirects", maxHTTPRedirects)}
			}
			return e.check(req.URL)
		},
	}
	return e
}

func defaultPort(scheme string) int {
	if scheme == "https" {
		return 443
	}
	return 80
}

// check reports whether u may be requested.
func (e *egress) check(u *url.URL) error {
	if u.Scheme != "http" && u.Scheme != "https" {
		return &deniedError{fmt.Sprintf("scheme %q is not allowed", u.Scheme)}
	}
	host := strings.ToLower(u.Hostname())
	port := defaultPort(u.Scheme)
	if ps := u.Port(); ps != "" {
		n, err := strconv.Atoi(ps)
		if err != nil {
			return &deniedError{fmt.Sprintf("bad port in %q", u.Host)}
		}
		port = n
	}
	if e.allow[hostPort{host, port}] || (port == defaultPort(u.Scheme) && e.allow[hostPort{host, 0}]) {
		return nil
	}
	return &deniedError{fmt.Sprintf("%s:%d is not in the worker's egress list", host, port)}
}

// blocked reports addresses a name must never resolve to: every range of
// the IANA IPv4 and IPv6 Special-Purpose Address Registries (loopback,
// private-use, link-local with the 169.254.169.254 metadata endpoint,
// shared address space, benchmarking, reserved, documentation, ...), IPv4
// and IPv6 multicast, and all IPv6 space outside global unicast 2000::/3,
// which takes in IPv4-mapped ::ffff:0:0/96, IPv4-compatible ::/96 and the
// NAT64 prefixes 64:ff9b::/96 and 64:ff9b:1::/48 (a translator would
// carry them to the IPv4 address inside); 6to4 2002::/16 and Teredo
// 2001::/32 are refused within it for the same reason. The list is
// code.dny.dev/ssrf's, generated from the registries (RATIONALE.md,
// "Network"); TestEgressSpecialPurposeRanges checks it range by range
// against a table of the registries written independently.
func blocked(a netip.Addr) bool {
	return addrGuard.SafeAddr(a) != nil
}

// addrGuard checks addresses only: hosts and ports are egress's own
// checks (check, literals).
var addrGuard = ssrf.New(ssrf.WithAnyNetwork(), ssrf.WithAnyPort())

func (e *egress) dialContext(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return e.dialContextWith(d.DialContext)
}

// dialContextWith resolves addr, drops every address blocked refuses (unless
// that IP and port is itself an egress entry) and dials the first of the
// others that answers with dial, by IP.
func (e *egress) dialContextWith(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		portNum, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			return nil, err
		}
		var addrs []netip.Addr
		if a, err := netip.ParseAddr(host); err == nil {
			addrs = []netip.Addr{a}
		} else {
			ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
			if err != nil {
				return nil, err
			}
			addrs = ips
		}
		var lastErr error = &deniedError{fmt.Sprintf("%s resolves only to refused addresses", host)}
		for _, a := range addrs {
			a = a.Unmap()
			if blocked(a) && !e.literals[netip.AddrPortFrom(a, uint16(portNum))] {
				continue
			}
			// Dial the checked IP, never the name again: no second lookup
			// that DNS rebinding could answer differently.
			c, err := dial(ctx, network, net.JoinHostPort(a.String(), port))
			if err == nil {
				return c, nil
			}
			lastErr = err
		}
		return nil, lastErr
	}
}

type httpRequest struct {
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers"`
	Body    []byte            `json:"body"` // base64 in JSON
}

type httpResponse struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers"`
	Body    []byte            `json:"body"`
}

// fetchError is why an exchange failed: Code is a guest code
// (EGRESS_DENIED, HTTP_FAILED, RESPONSE_TOO_LARGE, BAD_REQUEST).
type fetchError struct {
	Code string
	Msg  string
}

func (e *fetchError) Error() string { return e.Msg }

// fetch performs one exchange under the worker's egress rules, for
// hall_http and Extism's http_request alike, and records it in the
// call's telemetry (egressEvent). The response headers are lower-cased,
// multiple values joined with ",", as Extism does.
func (e *egress) fetch(ctx context.Context, rec *egressLog, via, method, rawURL string, headers map[string]string, body []byte) (*httpResponse, *fetchError) {
	start := time.Now()
	if method == "" {
		method = http.MethodGet
	}
	method = strings.ToUpper(method)
	ev := egressEvent{Import: via, Method: method, URL: redactURL(rawURL)}
	var tracer trace.Tracer
	if rec != nil {
		tracer = rec.tracer
	}
	ctx, span := tracing.Start(ctx, tracer, "hall.egress", trace.SpanKindClient)
	finish := func(resp *httpResponse, fe *fetchError) (*httpResponse, *fetchError) {
		ev.DurationMS = float64(time.Since(start).Microseconds()) / 1000
		ev.Outcome = "ok"
		if fe != nil {
			ev.Outcome, ev.Message = fe.Code, fe.Msg
		}
		if resp != nil {
			ev.Status, ev.ResponseBytes = resp.Status, len(resp.Body)
		}
		rec.add(ev)
		if span.IsRecording() {
			egressAttributes(span, method, rawURL, ev)
		}
		span.End()
		return resp, fe
	}
	if e == nil {
		return finish(nil, &fetchError{GuestEgressDenied, "the worker's policy allows no network egress"})
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return finish(nil, &fetchError{GuestBadRequest, fmt.Sprintf("bad url %q", rawURL)})
	}
	if err := e.check(u); err != nil {
		return finish(nil, &fetchError{GuestEgressDenied, err.Error()})
	}
	if u.User != nil {
		return finish(nil, &fetchError{GuestBadRequest, "credentials in the url are not allowed"})
	}
	ctx, cancel := context.WithTimeout(ctx, httpTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
	if err != nil {
		return finish(nil, &fetchError{GuestBadRequest, err.Error()})
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	if e.propagate && span.IsRecording() {
		// Only a worker whose sealed record opts in sends its trace
		// upstream (Policy.PropagateTrace), and only from a traced call;
		// the guest's own traceparent header, if any, is replaced, never
		// merged.
		req.Header.Del("traceparent")
		req.Header.Del("tracestate")
		tracing.Inject(ctx, propagation.HeaderCarrier(req.Header))
	}
	resp, err := e.client.Do(req)
	if err != nil {
		var de *deniedError
		if errors.As(err, &de) {
			return finish(nil, &fetchError{GuestEgressDenied, de.Error()})
		}
		return finish(nil, &fetchError{GuestHTTPFailed, err.Error()})
	}
	defer resp.Body.Close()
	if final := resp.Request.URL.String(); final != u.String() {
		ev.FinalURL = redactURL(final)
	}
	got, err := io.ReadAll(io.LimitReader(resp.Body, maxHTTPResponse+1))
	if err != nil {
		return finish(nil, &fetchError{GuestHTTPFailed, fmt.Sprintf("reading response: %v", err)})
	}
	if len(got) > maxHTTPResponse {
		ev.Status = resp.StatusCode
		return finish(nil, &fetchError{GuestResponseTooLarge, fmt.Sprintf("response body exceeds %d bytes", maxHTTPResponse)})
	}
	out := &httpResponse{Status: resp.StatusCode, Headers: map[string]string{}, Body: got}
	for k, v := range resp.Header {
		out.Headers[strings.ToLower(k)] = strings.Join(v, ",")
	}
	return finish(out, nil)
}

// do performs one hall_http request and returns the response or error JSON.
func (e *egress) do(ctx context.Context, rec *egressLog, raw []byte) []byte {
	var r httpRequest
	if err := json.Unmarshal(raw, &r); err != nil {
		return errorJSON(GuestBadRequest, "request is not valid JSON: %v", err)
	}
	resp, fe := e.fetch(ctx, rec, "hall_http", r.Method, r.URL, r.Headers, r.Body)
	if fe != nil {
		return errorJSON(fe.Code, "%s", fe.Msg)
	}
	b, _ := json.Marshal(resp)
	return b
}

// egressAttributes describes one exchange on its span: method, host, port,
// status and outcome, never the path's query, the headers or the body.
func egressAttributes(span trace.Span, method, rawURL string, ev egressEvent) {
	span.SetAttributes(tracing.HTTPMethod.String(method), tracing.Outcome.String(ev.Outcome))
	if u, err := url.Parse(rawURL); err == nil {
		span.SetAttributes(tracing.ServerAddress.String(u.Hostname()), tracing.URLScheme.String(u.Scheme))
		if p := u.Port(); p != "" {
			if n, err := strconv.Atoi(p); err == nil {
				span.SetAttributes(tracing.ServerPort.Int(n))
			}
		}
	}
	if ev.Status != 0 {
		span.SetAttributes(tracing.HTTPStatus.Int(ev.Status))
	}
	if ev.Outcome != "ok" {
		span.SetStatus(codes.Error, ev.Outcome)
		span.SetAttributes(tracing.ErrorType.String(ev.Outcome))
	}
}
