package host

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/router"
)

// Shutdown (issue 21). Close used to cancel running calls by closing their
// workers and close the ledger at once, so a `hall serve` stopped while a
// long worker ran lost that dispatch's receipt. Now:
//
//  1. Close stops admitting: Run, Route, RouteJSON, Replay, Enroll and
//     EnrollStored return ErrClosed (HALL_CLOSED), Decide denies, and a
//     Run still waiting for a dispatch slot is refused when it gets one,
//     before anything is recorded.
//  2. It waits for the calls already admitted — dispatches and their
//     receipts, recorded decisions, replays, enrollments and their seals —
//     bounded by Options.ShutdownGrace and by Close's ctx.
//  3. At the bound, the calls still running are cancelled: each ends as a
//     cancelled dispatch does, with outcome CANCELLED, and its receipt is
//     written on the evidence context (detached, evidenceTimeout) like
//     any other. Close waits for those receipts too, bounded by
//     evidenceTimeout, and only then closes the workers, the sandbox and
//     the ledger.
//
// Shutdown is steps 1-3 alone: `hall serve` calls it on SIGTERM, beside
// the HTTP server's shutdown, so that requests still being answered (a
// receipt read) find the ledger open; Close, after the server stopped,
// releases it.

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
	// drained is closed when the first Shutdown has finished draining;
	// drainErr is its result.
	drained  chan struct{}
	drainErr error
	// released is closed when the first Close has released the Hall;
	// closeErr is its result.
	releasing bool
	released  chan struct{}
	closeErr  error
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
		l.exitBrief()
	}, true
}

// enterBrief admits one short call that Close need not cancel (a
// decision being recorded): counted like enter, without the derived
// context enter builds, which the route hot path would pay for on every
// request. ok is false once Close has begun.
func (l *lifecycle) enterBrief() (exit func(), ok bool) {
	l.mu.Lock()
	if l.shutting {
		l.mu.Unlock()
		return nil, false
	}
	l.inflight++
	l.mu.Unlock()
	return l.exitBrief, true
}

func (l *lifecycle) exitBrief() {
	l.mu.Lock()
	l.inflight--
	if l.inflight == 0 && l.idle != nil {
		close(l.idle)
		l.idle = nil
	}
	l.mu.Unlock()
}

// closing reports whether Close has begun.
func (l *lifecycle) closing() bool { return l.shut.Load() }

// begin starts the shutdown. first is false when another call began it
// (drained is closed when that one has drained). idle is closed once no
// call is in flight (nil: none is now), n how many are.
func (l *lifecycle) begin() (first bool, drained chan struct{}, idle <-chan struct{}, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.shutting {
		return false, l.drained, nil, 0
	}
	l.shutting = true
	l.shut.Store(true)
	l.drained = make(chan struct{})
	if l.inflight > 0 {
		l.idle = make(chan struct{})
		return true, l.drained, l.idle, l.inflight
	}
	return true, l.drained, nil, 0
}

// waitDrained waits for the drain another call began; ctx ending is
// the bound reached: the calls still running are cancelled at once, and
// the wait goes on for their receipts (the drain bounds it).
func (l *lifecycle) waitDrained(ctx context.Context, drained chan struct{}) error {
	select {
	case <-drained:
	case <-ctx.Done():
		l.cutOff()
		<-drained
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.drainErr
}

func (l *lifecycle) finishDrain(err error) {
	l.mu.Lock()
	l.drainErr = err
	l.mu.Unlock()
	close(l.drained)
}

// beginRelease reports whether the caller is the first to release the
// Hall; released is closed when that one has.
func (l *lifecycle) beginRelease() (first bool, released chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.releasing {
		return false, l.released
	}
	l.releasing = true
	l.released = make(chan struct{})
	return true, l.released
}

func (l *lifecycle) finishRelease(err error) {
	l.mu.Lock()
	l.closeErr = err
	l.mu.Unlock()
	close(l.released)
}

func (l *lifecycle) releaseResult() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closeErr
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

// Shutdown stops admitting and waits for the calls in flight, as Close
// does, but keeps the Hall's resources open: evidence stays readable
// (Evidence, Registry) until Close. A server calls it when told to stop,
// then Close once its requests in flight are answered.
//
// # Notes
//
//   - From the moment Shutdown is called, Run, Route, RouteJSON, Replay,
//     Enroll and EnrollStored return ErrClosed (HALL_CLOSED) and Decide
//     denies; a Run still waiting for a dispatch slot is refused, with
//     nothing recorded.
//   - Dispatches already running are waited for, with their receipts, for
//     at most Options.ShutdownGrace (DefaultShutdownGrace) and until ctx
//     is done. Those still running then are cancelled and recorded with
//     outcome CANCELLED (each receipt within the evidence write bound of
//     30 s), and Shutdown returns once they are.
//   - Shutdown is idempotent: a later call (or Close) waits for the first
//     one's drain; its ctx ending cuts the dispatches off at once.
func (h *Hall) Shutdown(ctx context.Context) error {
	first, drained, idle, n := h.life.begin()
	if !first {
		return h.life.waitDrained(ctx, drained)
	}
	var err error
	if cut, stuck := h.drain(ctx, idle, n); stuck {
		err = fmt.Errorf("%s: %d dispatches cancelled at shutdown had not returned %v later; their receipts may be missing", wcp.CodeHallClosed, cut, evidenceTimeout)
	}
	h.life.finishDrain(err)
	return err
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
