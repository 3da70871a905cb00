package sandbox

import (
	"context"
	"sync/atomic"
	"time"
)

// sleeper is an instance's WASI sleep (poll_oneoff clock subscriptions,
// sched_yield aside). wazero's own WithSysNanosleep sleeps in the host
// without watching the context, so a guest asking for a one-hour sleep
// under a 500 ms limit held its dispatch slot for an hour at 0% CPU. This
// one ends at the deadline of whatever the instance is doing now (its
// instantiation, then each call): the guest then resumes, and
// CloseOnContextDone stops it at its next function call or loop back-edge.
type sleeper struct {
	done atomic.Pointer[doneChan]
	// cpu is the claim on a core of the call in progress (nil: none): a
	// sleep gives it back (cpu.go).
	cpu atomic.Pointer[cpuHold]
}

type doneChan struct{ c <-chan struct{} }

// watch makes sleeps end when ctx is done.
func (s *sleeper) watch(ctx context.Context) { s.done.Store(&doneChan{ctx.Done()}) }

// sleep implements wazero's sys.Nanosleep.
func (s *sleeper) sleep(ns int64) {
	if ns <= 0 {
		return
	}
	d := s.done.Load()
	if d == nil {
		return // never reached: newInstance watches before instantiating
	}
	select {
	case <-d.c:
		return
	default:
	}
	// A sleeping guest does not use a core; the call's context ending
	// while it waits for one again stops the guest at its next check.
	_ = s.cpu.Load().waiting(func() {
		t := time.NewTimer(time.Duration(ns))
		defer t.Stop()
		select {
		case <-t.C:
		case <-d.c:
		}
	})
}
