package server_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The HTTP benchmarks' load generator: a minimal HTTP/1.1 keep-alive
// client, as wrk is. The benchmarks run the server and the client on the
// same (2-core) machine, where net/http's client (transport, request
// building, response parsing) and a json.Unmarshal of every answer cost
// a noticeable share of the CPU the server is measured with. Here each
// connection is one net.Conn writing the same pre-built request bytes and
// parsing the status line, the headers it needs (Content-Length,
// Transfer-Encoding: chunked, Connection) and the body into a reused
// buffer; every answer is still checked, by a scan of its bytes.

// A load is what a load run sends, and how each answer is checked.
type load struct {
	url   string // base URL: http://host:port, optionally with a path prefix
	path  string // appended to url's path
	token string // bearer token; none when empty
	body  []byte // the JSON body of every request
	// check returns why an answer is not the one expected.
	check func(status int, body []byte) error
}

// request is the bytes of one request of l, and the address to dial.
func (l load) request() (addr string, req []byte, err error) {
	u, err := url.Parse(l.url)
	if err != nil {
		return "", nil, err
	}
	if u.Scheme != "http" || u.Host == "" {
		return "", nil, fmt.Errorf("%q: the load generator speaks plain http://host:port only", l.url)
	}
	addr = u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: %s\r\n", u.EscapedPath()+l.path, u.Host)
	if l.token != "" {
		fmt.Fprintf(&b, "Authorization: Bearer %s\r\n", l.token)
	}
	fmt.Fprintf(&b, "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(l.body))
	b.Write(l.body)
	return addr, b.Bytes(), nil
}

// run sends b.N requests of l over conns connections, each connection
// one request at a time, and returns every request's latency, sorted,
// and the wall time of the whole. The connections are opened before the
// timer is reset; the timer is stopped when the last answer is in. The
// first failed request (an error, or an answer check refuses) stops the
// run and fails the benchmark.
func (l load) run(b *testing.B, conns int) (lat []time.Duration, elapsed time.Duration) {
	b.Helper()
	return runLoads(b, []load{l}, conns)
}

// runLoads is load.run with several loads: connection i sends
// loads[i%len(loads)] (another tenant's token, another server), and the
// answers are checked by that load's check.
func runLoads(b *testing.B, loads []load, conns int) (lat []time.Duration, elapsed time.Duration) {
	b.Helper()
	b.ResetTimer()
	lat, elapsed = runLoadsN(b, loads, conns, b.N)
	b.StopTimer()
	return lat, elapsed
}

// runLoadsN is runLoads sending n requests, the benchmark's timer left
// alone (for benchmarks that alternate loads and report their own
// figures).
func runLoadsN(b *testing.B, loads []load, conns, n int) (lat []time.Duration, elapsed time.Duration) {
	b.Helper()
	cs := make([]*loadConn, conns)
	reqs := make([][]byte, conns)
	for i := range cs {
		addr, req, err := loads[i%len(loads)].request()
		if err != nil {
			b.Fatal(err)
		}
		reqs[i] = req
		cs[i] = &loadConn{addr: addr}
		if err := cs[i].dial(); err != nil {
			b.Fatal(err)
		}
	}
	defer func() {
		for _, c := range cs {
			c.close()
		}
	}()
	var (
		next   atomic.Int64
		failed atomic.Pointer[error]
		wg     sync.WaitGroup
		lats   = make([][]time.Duration, conns)
	)
	start := time.Now()
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			own := make([]time.Duration, 0, n/conns+1)
			l := loads[i%len(loads)]
			for failed.Load() == nil && next.Add(1) <= int64(n) {
				t0 := time.Now()
				status, body, err := c.roundTrip(reqs[i])
				if err == nil {
					err = l.check(status, body)
				}
				if err != nil {
					failed.CompareAndSwap(nil, &err)
					break
				}
				own = append(own, time.Since(t0))
			}
			lats[i] = own
		}()
	}
	wg.Wait()
	elapsed = time.Since(start)
	if err := failed.Load(); err != nil {
		b.Fatalf("POST %s%s: %v", loads[0].url, loads[0].path, *err)
	}
	lat = slices.Concat(lats...)
	slices.Sort(lat)
	return lat, elapsed
}

// reportLoad reports the rate of answers (unit, e.g. "decisions/s") and
// the p50 and p99 latencies in milliseconds.
func reportLoad(b *testing.B, lat []time.Duration, elapsed time.Duration, unit string) {
	b.Helper()
	if len(lat) == 0 {
		b.Fatal("no request was answered")
	}
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), unit)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// A loadConn is one keep-alive connection. It reconnects (within the
// timed request) when the server closes after an answer (Connection:
// close, HTTP/1.0, or a body delimited by the end of the connection).
type loadConn struct {
	addr string
	c    net.Conn
	r    *bufio.Reader
	buf  []byte // the last answer's body, reused
}

func (lc *loadConn) dial() error {
	c, err := net.Dial("tcp", lc.addr)
	if err != nil {
		return err
	}
	lc.c = c
	if lc.r == nil {
		lc.r = bufio.NewReaderSize(c, 32<<10)
	} else {
		lc.r.Reset(c)
	}
	return nil
}

func (lc *loadConn) close() {
	if lc.c != nil {
		lc.c.Close()
		lc.c = nil
	}
}

var errMalformed = errors.New("malformed HTTP/1.1 answer")

// roundTrip writes req and reads one answer: its status and its body,
// valid until the next call.
func (lc *loadConn) roundTrip(req []byte) (status int, body []byte, err error) {
	if lc.c == nil {
		if err := lc.dial(); err != nil {
			return 0, nil, err
		}
	}
	status, body, keep, err := lc.exchange(req)
	if err != nil || !keep {
		lc.close()
	}
	return status, body, err
}

func (lc *loadConn) exchange(req []byte) (status int, body []byte, keep bool, err error) {
	if _, err := lc.c.Write(req); err != nil {
		return 0, nil, false, err
	}
	// Status line: HTTP/1.x SSS reason.
	line, err := lc.line()
	if err != nil {
		return 0, nil, false, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return 0, nil, false, fmt.Errorf("%w: status line %q", errMalformed, line)
	}
	if status, err = strconv.Atoi(string(line[9:12])); err != nil {
		return 0, nil, false, fmt.Errorf("%w: status line %q", errMalformed, line)
	}
	keep = line[7] == '1' // HTTP/1.1 keeps the connection unless told otherwise
	length, chunked := -1, false
	for {
		line, err := lc.line()
		if err != nil {
			return 0, nil, false, err
		}
		if len(line) == 0 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return 0, nil, false, fmt.Errorf("%w: header line %q", errMalformed, line)
		}
		name, value := line[:colon], bytes.TrimSpace(line[colon+1:])
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(value)); err != nil || length < 0 {
				return 0, nil, false, fmt.Errorf("%w: Content-Length %q", errMalformed, value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
			if !chunked {
				return 0, nil, false, fmt.Errorf("unsupported Transfer-Encoding %q", value)
			}
		case bytes.EqualFold(name, []byte("Connection")):
			if bytes.EqualFold(value, []byte("close")) {
				keep = false
			} else if bytes.EqualFold(value, []byte("keep-alive")) {
				keep = true
			}
		}
	}
	body = lc.buf[:0]
	switch {
	case status == 204 || status == 304 || status < 200:
	case chunked:
		body, err = lc.chunked(body)
	case length >= 0:
		body = slices.Grow(body, length)[:length]
		_, err = io.ReadFull(lc.r, body)
	default: // delimited by the end of the connection
		var rest []byte
		rest, err = io.ReadAll(lc.r)
		body, keep = append(body, rest...), false
	}
	lc.buf = body
	return status, body, keep, err
}

// line reads one header line without its CRLF.
func (lc *loadConn) line() ([]byte, error) {
	line, err := lc.r.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("%w: a header line over %d bytes", errMalformed, lc.r.Size())
		}
		return nil, err
	}
	return bytes.TrimRight(line, "\r\n"), nil
}

// chunked appends a chunked body to body, trailers read and dropped.
func (lc *loadConn) chunked(body []byte) ([]byte, error) {
	for {
		line, err := lc.line()
		if err != nil {
			return body, err
		}
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i] // chunk extensions
		}
		size, err := strconv.ParseUint(string(bytes.TrimSpace(line)), 16, 31)
		if err != nil {
			return body, fmt.Errorf("%w: chunk size %q", errMalformed, line)
		}
		if size == 0 {
			for { // trailers, up to the empty line
				line, err := lc.line()
				if err != nil || len(line) == 0 {
					return body, err
				}
			}
		}
		n := len(body)
		body = slices.Grow(body, int(size))[:n+int(size)]
		if _, err := io.ReadFull(lc.r, body[n:]); err != nil {
			return body, err
		}
		if crlf, err := lc.line(); err != nil || len(crlf) != 0 {
			return body, fmt.Errorf("%w: no CRLF after a chunk (%v)", errMalformed, err)
		}
	}
}

// Answer checks, by a scan of the body rather than a JSON decode. The
// occurrences they read are the top-level keys: in a RouteDecision (in
// PyHall's key order, as the Hall writes it, or sorted), the objects
// before decision_id and denied (candidate workers) hold neither key, and
// the telemetry that repeats decision fields comes after both; in
// /wcp/run's answer (keys sorted), the top-level receipt_id is the last
// one, after the nested decision and the worker's output (a JSON string,
// in which a quote is escaped, so no key can be forged there).

// jsonValue returns what follows `"key":` (white space allowed around
// the colon) at key's first occurrence, or at its last when last is set.
func jsonValue(body []byte, key string, last bool) ([]byte, bool) {
	k := []byte(`"` + key + `"`)
	i := bytes.Index(body, k)
	if last {
		i = bytes.LastIndex(body, k)
	}
	if i < 0 {
		return nil, false
	}
	rest := bytes.TrimLeft(body[i+len(k):], " \t\r\n")
	if len(rest) == 0 || rest[0] != ':' {
		return nil, false
	}
	return bytes.TrimLeft(rest[1:], " \t\r\n"), true
}

// jsonString returns the value of key when it is a JSON string without
// escapes (ids are).
func jsonString(body []byte, key string, last bool) ([]byte, bool) {
	v, ok := jsonValue(body, key, last)
	if !ok || len(v) < 2 || v[0] != '"' {
		return nil, false
	}
	end := bytes.IndexByte(v[1:], '"')
	if end < 0 || bytes.IndexByte(v[1:1+end], '\\') >= 0 {
		return nil, false
	}
	return v[1 : 1+end], true
}

// answerError is a refused answer: its status and the start of its body.
func answerError(status int, body []byte, why string) error {
	if len(body) > 2048 {
		body = body[:2048]
	}
	return fmt.Errorf("%s: %d %s", why, status, body)
}

// allowedDecision checks an answer of POST /wcp/route: a 200 whose
// decision has a decision id (a UUID, 36 characters) and is not denied.
func allowedDecision(status int, body []byte) error {
	if status != 200 {
		return answerError(status, body, "not a 200")
	}
	if id, ok := jsonString(body, "decision_id", false); !ok || len(id) != 36 {
		return answerError(status, body, "no decision_id")
	}
	if v, ok := jsonValue(body, "denied", false); !ok || !bytes.HasPrefix(v, []byte("false")) {
		return answerError(status, body, "not an allowed decision")
	}
	return nil
}

// committedRun checks an answer of POST /wcp/run: a 200 with a receipt
// id.
func committedRun(status int, body []byte) error {
	if status != 200 {
		return answerError(status, body, "not a 200")
	}
	if id, ok := jsonString(body, "receipt_id", true); !ok || len(id) == 0 {
		return answerError(status, body, "no receipt_id")
	}
	return nil
}

// TestLoadGen: the load generator reads answers framed by
// Content-Length, chunked (with an extension and a trailer), closed after
// the answer, and delimited by the end of the connection, reconnecting
// when the server closed; and its answer checks refuse what they must.
func TestLoadGen(t *testing.T) {
	const decision = `{"decision_id": "0b7d8a4e-2f0c-4c55-9d1e-3c2b1a000001", "denied": false, "telemetry_envelopes": [{"denied": true}]}`
	answers := []string{
		"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(decision)) + "\r\n\r\n" + decision,
		"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n10;x=y\r\n" + decision[:16] + "\r\n" +
			strconv.FormatInt(int64(len(decision)-16), 16) + "\r\n" + decision[16:] + "\r\n0\r\nX-Trailer: 1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: " + strconv.Itoa(len(decision)) + "\r\n\r\n" + decision,
		"HTTP/1.0 200 OK\r\n\r\n" + decision,
	}
	ln := listen(t)
	defer ln.Close()
	var served atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					// Read one request: headers, then Content-Length bytes.
					length := 0
					for {
						line, err := r.ReadString('\n')
						if err != nil {
							return
						}
						if v, ok := bytes.CutPrefix([]byte(line), []byte("Content-Length: ")); ok {
							length, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
						}
						if line == "\r\n" {
							break
						}
					}
					if _, err := io.CopyN(io.Discard, r, int64(length)); err != nil {
						return
					}
					a := answers[int(served.Add(1)-1)%len(answers)]
					c.Write([]byte(a))
					if bytes.Contains([]byte(a), []byte("close")) || bytes.HasPrefix([]byte(a), []byte("HTTP/1.0")) {
						return
					}
				}
			}()
		}
	}()
	addr, req, err := load{url: "http://" + ln.Addr().String(), path: "/wcp/route", token: "tok", body: []byte(`{}`)}.request()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(req, []byte("POST /wcp/route HTTP/1.1\r\nHost: ")) || !bytes.Contains(req, []byte("Authorization: Bearer tok\r\n")) ||
		!bytes.HasSuffix(req, []byte("Content-Length: 2\r\n\r\n{}")) {
		t.Fatalf("request:\n%s", req)
	}
	c := &loadConn{addr: addr}
	defer c.close()
	for i := range 2 * len(answers) {
		status, body, err := c.roundTrip(req)
		if err != nil || status != 200 || string(body) != decision {
			t.Fatalf("answer %d: %d %q %v", i, status, body, err)
		}
		if err := allowedDecision(status, body); err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
	}

	for _, tc := range []struct {
		status int
		body   string
		ok     bool
	}{
		{200, `{"decision_id":"0b7d8a4e-2f0c-4c55-9d1e-3c2b1a000001","denied":false}`, true},
		{200, `{"decision_id":"0b7d8a4e-2f0c-4c55-9d1e-3c2b1a000001","denied":true}`, false},
		{200, `{"decision_id":"","denied":false}`, false},
		{200, `{"denied":false}`, false},
		{403, `{"decision_id":"0b7d8a4e-2f0c-4c55-9d1e-3c2b1a000001","denied":false}`, false},
	} {
		if err := allowedDecision(tc.status, []byte(tc.body)); (err == nil) != tc.ok {
			t.Errorf("allowedDecision(%d, %s) = %v", tc.status, tc.body, err)
		}
	}
	for _, tc := range []struct {
		status int
		body   string
		ok     bool
	}{
		{200, `{"decision":{},"output":"\"receipt_id\":\"x\"","receipt_id":"r_1","worker_id":"w"}`, true},
		{200, `{"decision":{},"output":"\"receipt_id\":\"x\"","receipt_id":"","worker_id":"w"}`, false},
		{200, `{"decision":{},"ran":false}`, false},
		{500, `{"receipt_id":"r_1"}`, false},
	} {
		if err := committedRun(tc.status, []byte(tc.body)); (err == nil) != tc.ok {
			t.Errorf("committedRun(%d, %s) = %v", tc.status, tc.body, err)
		}
	}
}
