package host

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wcphall/hall/host/router"
	"github.com/wcphall/hall/host/wcp"
)

// Shutdown (issue 21). Close used to cancel running calls by closing their
// workers and close the ledger at once, so a `hall serve` stopped while a
// long worker ran lost that dispatch's receipt. Now:
//
//  1. Close stops admitting: Run, Route and RouteJSON return ErrClosed
//     (HALL_CLOSED), Decide denies, and a Run still waiting for a dispatch
//     slot is refused when it gets one, before anything is recorded.
//  2. It waits for the calls already admitted — dispatches and their
//     receipts, recorded decisions — bounded by Options.ShutdownGrace and
//     by Close's ctx.
//  3. At the bound, the calls still running are cancelled: each ends as a
//     cancelled dispatch does, with outcome CANCELLED, and its receipt is
//     written on the evidence context (detached, evidenceTimeout) like
//     any other. Close waits for those receipts too, bounded by
//     evidenceTimeout, and only then closes the workers, the sandbox and
//     the ledger.

// DefaultShutdownGrace is how long Close waits for dispatches in flight
// when Options.ShutdownGrace is zero: longer than the default worker time
// limit (DefaultTimeout), so that under default limits every admitted
// dispatch ends on its own, and short enough to finish inside the 30 s a
// container runtime usually grants between SIGTERM and SIGKILL.
const DefaultShutdownGrace = 15 * time.Second

// errShutdown is the cause of a call cancelled by Close.
var errShutdown = errors.New("the Hall is shutting down: the dispatch was still running when Close's wait ended")

// lifecycle admits calls until Close and counts those in flight. The zero
// value admits.
type lifecycle struct {
	// shut mirrors shutting for readers that take no lock (Decide).
	shut     atomic.Bool
	mu       sync.Mutex
	shutting bool          // Close has begun: nothing new is admitted
	inflight int           // admitted calls not yet returned
	idle     chan struct{} // closed when inflight reaches 0 after shutting
	// stop is cancelled at the end of the grace period; every admitted
	// call's context follows it.
	stop       context.Context
	cancelStop context.CancelCauseFunc
	// done is closed when the first Close has finished; err is its result.
	done chan struct{}
	err  error
}

// enter admits one call and returns the context it runs under (ctx, also
// cancelled when Close's grace period ends) and the function that ends
// it; ok is false once Close has begun.
func (l *lifecycle) enter(ctx context.Context) (_ context.Context, exit func(), ok bool) {
	l.mu.Lock()
	if l.shutting {
		l.mu.Unlock()
		return ctx, nil, false
	}
	if l.stop == nil {
		l.stop, l.cancelStop = context.WithCancelCause(context.Background())
	}
	l.inflight++
	stop := l.stop
	l.mu.Unlock()
	cctx, cancel := context.WithCancelCause(ctx)
	unhook := context.AfterFunc(stop, func() { cancel(context.Cause(stop)) })
	return cctx, func() {
		unhook()
		cancel(nil)
		l.mu.Lock()
		l.inflight--
		if l.inflight == 0 && l.idle != nil {
			close(l.idle)
			l.idle = nil
		}
		l.mu.Unlock()
	}, true
}

// closing reports whether Close has begun.
func (l *lifecycle) closing() bool { return l.shut.Load() }

// begin starts the shutdown. first is false when another Close began it
// (done is closed when that one finishes). idle is closed once no call is
// in flight (nil: none is now), n how many are.
func (l *lifecycle) begin() (first bool, done chan struct{}, idle <-chan struct{}, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.shutting {
		return false, l.done, nil, 0
	}
	l.shutting = true
	l.shut.Store(true)
	l.done = make(chan struct{})
	if l.inflight > 0 {
		l.idle = make(chan struct{})
		return true, l.done, l.idle, l.inflight
	}
	return true, l.done, nil, 0
}

// cutOff cancels every call still in flight (with cause errShutdown) and
// returns how many there were.
func (l *lifecycle) cutOff() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cancelStop != nil {
		l.cancelStop(errShutdown)
	}
	return l.inflight
}

// finish records the first Close's result and releases later Closes.
func (l *lifecycle) finish(err error) {
	l.mu.Lock()
	l.err = err
	l.mu.Unlock()
	close(l.done)
}

func (l *lifecycle) result() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// shutdownGrace is the wait Close grants calls in flight.
func (h *Hall) shutdownGrace() time.Duration {
	switch g := h.opts.ShutdownGrace; {
	case g == 0:
		return DefaultShutdownGrace
	case g < 0:
		return 0
	default:
		return g
	}
}

// drain waits for the calls in flight when Close began: until they end,
// the grace period ends or ctx is done; then cancels those still running
// and waits, bounded by evidenceTimeout, for them to record their
// outcome. It reports how many were cut off and how many never returned.
func (h *Hall) drain(ctx context.Context, idle <-chan struct{}, n int) (cut int, stuck bool) {
	if idle == nil {
		return 0, false
	}
	h.log.Info("hall: closing; waiting for the dispatches in flight", "in_flight", n, "grace", h.shutdownGrace().String())
	grace := time.NewTimer(h.shutdownGrace())
	defer grace.Stop()
	select {
	case <-idle:
		return 0, false
	case <-grace.C:
	case <-ctx.Done():
	}
	cut = h.life.cutOff()
	h.log.Warn("hall: closing; cancelling the dispatches still running, each recorded with outcome CANCELLED", "in_flight", cut)
	// A cancelled call writes its receipt on a context of its own, bounded
	// by evidenceTimeout; wait that long (and a little) for it.
	bound := time.NewTimer(evidenceTimeout + time.Second)
	defer bound.Stop()
	select {
	case <-idle:
		return cut, false
	case <-bound.C:
		return cut, true
	}
}

// closedDecision is the decision of a Hall that is closing: denied, with
// nothing routed.
func closedDecision(ctx context.Context, in *wcp.RouteInput) wcp.RouteDecision {
	dec := router.Decide(ctx, in, &router.RuleSet{}, nil, router.Options{})
	msg := ErrClosed.Error() + "; nothing was decided or dispatched."
	dec.Denied = true
	dec.DenyReason = &wcp.DenyReason{Code: wcp.DenyInternalError, Message: msg}
	dec.SelectedWorkerSpeciesID = ""
	dec.ArtifactHash = ""
	dec.TelemetryEnvelopes = []wcp.Event{{
		EventID: wcp.EvtTaskDenied, Timestamp: dec.Timestamp, CorrelationID: dec.CorrelationID,
		TenantID: dec.TenantID, CapabilityID: dec.CapabilityID, DenyCode: wcp.DenyInternalError, DenyMessage: msg, MatchedRuleID: dec.MatchedRuleID,
	}}
	return dec
}

// codedError is a sentinel error with a stable code (ErrClosed).
type codedError struct {
	code wcp.Code
	msg  string
}

func (e *codedError) Error() string  { return fmt.Sprintf("%s: %s", e.code, e.msg) }
func (e *codedError) Code() wcp.Code { return e.code }
