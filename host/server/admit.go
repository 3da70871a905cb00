package server

import (
	"fmt"
	"net/http"
)

// admitRoute bounds the decisions in flight on POST /wcp/route, as the
// dispatch semaphore bounds /wcp/run: a flood of decisions (each one a
// ledger write) is refused with 503 instead of queued without limit.
func (s *Server) admitRoute(w http.ResponseWriter, r *http.Request) (release func(), ok bool) {
	select {
	case s.routeSem <- struct{}{}:
		return func() { <-s.routeSem }, true
	default:
		s.metrics.rejected.WithLabelValues("saturated").Inc()
		writeError(w, r, &apiError{Status: http.StatusServiceUnavailable, Code: CodeSaturated, RetryAfter: 1,
			Message: fmt.Sprintf("the Hall is answering its maximum of %d decisions; retry later", cap(s.routeSem))})
		return nil, false
	}
}

// admitOwn takes a place under the server's own bound on dispatches in
// flight (Config.MaxConcurrent), when it has one. The Hall's fair dispatch
// slots are taken afterwards, in host.Hall.Run, by every entry point.
func (s *Server) admitOwn() (release func(), ok bool) {
	if s.sem == nil {
		return func() {}, true
	}
	select {
	case s.sem <- struct{}{}:
		return func() { <-s.sem }, true
	default:
		return nil, false
	}
}

// maxConcurrent is the bound on dispatches in flight the server reports:
// the Hall's slots, or the server's own bound when that is lower.
func (s *Server) maxConcurrent() int {
	n := s.h.Admission().Slots
	if s.sem != nil && cap(s.sem) < n {
		n = cap(s.sem)
	}
	return n
}
