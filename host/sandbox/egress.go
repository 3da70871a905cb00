package sandbox

import (
	"bytes"
	"context"
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
// dialer refuses loopback, link-local and cloud metadata addresses unless
// that IP literal is itself an entry, so a listed name cannot be pointed at
// them through DNS.
type egress struct {
	allow    map[hostPort]bool
	literals map[netip.AddrPort]bool
	client   *http.Client
}

type hostPort struct {
	host string
	port int // 0: the scheme's default port
}

type deniedError struct{ msg string }

func (e *deniedError) Error() string { return e.msg }

func newEgress(entries []string) *egress {
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

// blocked reports addresses a name must never resolve to: loopback,
// link-local (169.254.0.0/16 includes the IMDS 169.254.169.254), the AWS IPv6
// metadata endpoint, private (10/8, 172.16/12, 192.168/16, fc00::/7),
// CGNAT (100.64/10), unspecified, multicast.
func blocked(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsPrivate() || cgnat.Contains(a) ||
		a.IsMulticast() || a.IsUnspecified() || a.IsInterfaceLocalMulticast() ||
		a == netip.MustParseAddr("fd00:ec2::254") ||
		a == netip.MustParseAddr("100.100.100.200") || // Alibaba Cloud metadata
		netip.MustParsePrefix("0.0.0.0/8").Contains(a)
}

var cgnat = netip.MustParsePrefix("100.64.0.0/10")

func (e *egress) dialContext(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
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
			c, err := d.DialContext(ctx, network, net.JoinHostPort(a.String(), port))
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

// do performs one hall_http request and returns the response or error JSON.
func (e *egress) do(ctx context.Context, raw []byte) []byte {
	var r httpRequest
	if err := json.Unmarshal(raw, &r); err != nil {
		return errorJSON(GuestBadRequest, "request is not valid JSON: %v", err)
	}
	if r.Method == "" {
		r.Method = http.MethodGet
	}
	u, err := url.Parse(r.URL)
	if err != nil {
		return errorJSON(GuestBadRequest, "bad url %q", r.URL)
	}
	if err := e.check(u); err != nil {
		return errorJSON(GuestEgressDenied, "%v", err)
	}
	if u.User != nil {
		return errorJSON(GuestBadRequest, "credentials in the url are not allowed")
	}
	ctx, cancel := context.WithTimeout(ctx, httpTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, strings.ToUpper(r.Method), u.String(), bytes.NewReader(r.Body))
	if err != nil {
		return errorJSON(GuestBadRequest, "%v", err)
	}
	for k, v := range r.Headers {
		req.Header.Set(k, v)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		var de *deniedError
		if errors.As(err, &de) {
			return errorJSON(GuestEgressDenied, "%v", de)
		}
		return errorJSON(GuestHTTPFailed, "%v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxHTTPResponse+1))
	if err != nil {
		return errorJSON(GuestHTTPFailed, "reading response: %v", err)
	}
	if len(body) > maxHTTPResponse {
		return errorJSON(GuestResponseTooLarge, "response body exceeds %d bytes", maxHTTPResponse)
	}
	out := httpResponse{Status: resp.StatusCode, Headers: map[string]string{}, Body: body}
	for k, v := range resp.Header {
		out.Headers[strings.ToLower(k)] = strings.Join(v, ",")
	}
	b, _ := json.Marshal(out)
	return b
}
