package server

import (
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Quotas bound what callers create through the API and the console
// (docs/HTTP.md, "Quotas"). Zero fields take the defaults below; a
// negative one turns that bound off where the field says so.
//
// # Notes
//
//   - None of them changes what is decided or what runs: they bound the
//     server's own state (sessions, sign-in attempts), so they are
//     settings of the server (hall serve flags), not of the sealed
//     snapshot. The quota that does bear on decisions, pending approvals
//     per tenant, is hall.json's quotas.pending_approvals_per_tenant.
type Quotas struct {
	// ConsoleSessionsPerToken is how many console sessions one token may
	// hold; signing in once more evicts that token's oldest session, never
	// another principal's (default DefaultConsoleSessionsPerToken).
	ConsoleSessionsPerToken int
	// ConsoleSessions bounds all console sessions; at the bound, signing
	// in evicts the oldest session of the token that holds the most
	// (default DefaultConsoleSessions). Nobody is refused.
	ConsoleSessions int
	// SigninPerMinute is how many console sign-in attempts one source
	// address may make per minute, after a burst of as many; beyond, 429
	// SIGNIN_THROTTLED with Retry-After (default DefaultSigninPerMinute;
	// negative: no throttle).
	SigninPerMinute int
	// MCPSessionsPerToken is how many MCP sessions one token may hold
	// open over /mcp; one more is refused 429 SESSION_QUOTA (default
	// DefaultMCPSessionsPerToken).
	MCPSessionsPerToken int
}

// Defaults of Quotas' zero fields.
const (
	DefaultConsoleSessionsPerToken = 8
	DefaultConsoleSessions         = 1024
	DefaultSigninPerMinute         = 10
	DefaultMCPSessionsPerToken     = 64
)

func (q Quotas) withDefaults() Quotas {
	if q.ConsoleSessionsPerToken <= 0 {
		q.ConsoleSessionsPerToken = DefaultConsoleSessionsPerToken
	}
	if q.ConsoleSessions <= 0 {
		q.ConsoleSessions = DefaultConsoleSessions
	}
	if q.ConsoleSessions < q.ConsoleSessionsPerToken {
		q.ConsoleSessions = q.ConsoleSessionsPerToken
	}
	if q.SigninPerMinute == 0 {
		q.SigninPerMinute = DefaultSigninPerMinute
	}
	if q.MCPSessionsPerToken <= 0 {
		q.MCPSessionsPerToken = DefaultMCPSessionsPerToken
	}
	return q
}

// admitSession adds a session of tokenID under id, first evicting what
// the quotas require: the token's oldest sessions beyond its own bound,
// then, at the global bound, the oldest session of the token holding the
// most. It returns how many sessions it evicted. c.mu is held.
func (c *console) admitSession(id string, s *session, now time.Time) (evicted int) {
	for k, old := range c.sessions {
		if now.After(old.expires) {
			delete(c.sessions, k)
		}
	}
	evictOldest := func(tokenID string) {
		var oldestID string
		var oldest *session
		for k, o := range c.sessions {
			if o.tokenID == tokenID && (oldest == nil || o.created.Before(oldest.created)) {
				oldestID, oldest = k, o
			}
		}
		if oldest != nil {
			delete(c.sessions, oldestID)
			evicted++
		}
	}
	for c.countSessions(s.tokenID) >= c.quotas.ConsoleSessionsPerToken {
		evictOldest(s.tokenID)
	}
	for len(c.sessions) >= c.quotas.ConsoleSessions {
		per := map[string]int{}
		top := ""
		for _, o := range c.sessions {
			per[o.tokenID]++
			if n := per[o.tokenID]; n > per[top] || (n == per[top] && o.tokenID < top) {
				top = o.tokenID
			}
		}
		evictOldest(top)
	}
	c.sessions[id] = s
	return evicted
}

func (c *console) countSessions(tokenID string) int {
	n := 0
	for _, o := range c.sessions {
		if o.tokenID == tokenID {
			n++
		}
	}
	return n
}

// throttle is a token bucket per source address: SigninPerMinute
// attempts a minute after a burst of as many. It keeps at most
// maxThrottled addresses, forgetting first those whose bucket is full
// again (they would be admitted anyway).
type throttle struct {
	mu      sync.Mutex
	perMin  int
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

const maxThrottled = 4096

func newThrottle(perMin int) *throttle {
	return &throttle{perMin: perMin, buckets: map[string]*bucket{}}
}

// allow takes one attempt of source at now, or says how long to wait.
func (t *throttle) allow(source string, now time.Time) (ok bool, wait time.Duration) {
	if t == nil || t.perMin < 0 {
		return true, 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	rate := float64(t.perMin) / 60 // per second
	refill := func(b *bucket) {
		b.tokens = min(float64(t.perMin), b.tokens+now.Sub(b.at).Seconds()*rate)
		b.at = now
	}
	b := t.buckets[source]
	if b == nil {
		if len(t.buckets) >= maxThrottled {
			for k, o := range t.buckets {
				if refill(o); o.tokens >= float64(t.perMin) {
					delete(t.buckets, k)
				}
			}
			if len(t.buckets) >= maxThrottled {
				// Every address is mid-burst: the table is full of attackers;
				// a new address waits like them rather than grow it.
				return false, time.Duration(float64(time.Second) / rate)
			}
		}
		b = &bucket{tokens: float64(t.perMin), at: now}
		t.buckets[source] = b
	}
	refill(b)
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / rate * float64(time.Second))
}

// sourceOf is the address a request came from: the connection's peer,
// never a header a client could set.
func sourceOf(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// retryAfter is a Retry-After value in whole seconds, at least 1.
func retryAfter(d time.Duration) string {
	s := int(d.Seconds() + 0.999)
	return strconv.Itoa(max(s, 1))
}
