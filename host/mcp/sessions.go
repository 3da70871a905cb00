package mcp

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"sync"

	"github.com/wcphall/hall/host/wcp"
)

// sessionQuota bounds the MCP sessions one principal (a token) holds open
// over Streamable HTTP (issue 25: one tenant opened 5,000 sessions in 13 s,
// +76 MiB, none of them bounded but by the idle timeout). A session is
// counted from the answer that opens it (its Mcp-Session-Id) until the SDK
// no longer holds it (ended by DELETE, or idle past the timeout).
type sessionQuota struct {
	max       int
	principal func(*http.Request) string
	live      func() map[string]bool
	log       *slog.Logger

	mu sync.Mutex
	// open holds each principal's session ids; opening counts the
	// initialize requests still being answered, so that concurrent ones
	// cannot overshoot the bound.
	open    map[string]map[string]bool
	opening map[string]int
}

// limit refuses a request that would open one session more than the
// principal's bound: 429 with code SESSION_QUOTA, before the SDK sees it.
func (q *sessionQuota) limit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Mcp-Session-Id") != "" {
			next.ServeHTTP(w, r)
			return
		}
		p := q.principal(r)
		q.mu.Lock()
		ids := q.open[p]
		if len(ids)+q.opening[p] >= q.max {
			live := q.live()
			for id := range ids {
				if !live[id] {
					delete(ids, id)
				}
			}
		}
		if n := len(ids) + q.opening[p]; n >= q.max {
			q.mu.Unlock()
			q.log.Warn("mcp: session refused: the token has its maximum of sessions open", "principal", p, "code", string(wcp.CodeSessionQuota), "open", n, "bound", q.max)
			refuseSession(w, n, q.max)
			return
		}
		q.opening[p]++
		q.mu.Unlock()
		next.ServeHTTP(w, r)
		id := w.Header().Get("Mcp-Session-Id")
		q.mu.Lock()
		defer q.mu.Unlock()
		if q.opening[p]--; q.opening[p] == 0 {
			delete(q.opening, p)
		}
		if id == "" {
			return
		}
		if q.open[p] == nil {
			q.open[p] = map[string]bool{}
		}
		q.open[p][id] = true
	})
}

func refuseSession(w http.ResponseWriter, open, bound int) {
	msg := "this token has " + strconv.Itoa(open) + " MCP sessions open, its maximum (hall serve --mcp-sessions-per-token " + strconv.Itoa(bound) +
		"): reuse one, end one with DELETE /mcp and its Mcp-Session-Id, or wait for an idle one to time out"
	b, _ := json.Marshal(map[string]any{"error": map[string]string{"code": string(wcp.CodeSessionQuota), "message": msg}})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Retry-After", "60")
	w.WriteHeader(http.StatusTooManyRequests)
	_, _ = w.Write(append(b, '\n'))
}

// liveSessions returns the ids of the sessions the SDK holds now.
func (s *Server) liveSessions() map[string]bool {
	out := map[string]bool{}
	for ss := range s.srv.Sessions() {
		out[ss.ID()] = true
	}
	return out
}
