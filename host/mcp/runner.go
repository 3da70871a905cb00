package mcp

import (
	"context"
	"runtime/pprof"
	"sync"
	"time"
)

// runners run dispatches on long-lived goroutines.
//
// The SDK calls a tool handler on a new goroutine for every request, which
// starts with the runtime's smallest stack; a dispatch (decision, sandbox,
// ledger) needs a much deeper one, so every call paid for growing it, copy
// by copy (runtime.newstack: about a fifth of what MCP added to a call's
// server CPU in BenchmarkMCPOverhead's profile). POST /wcp/run does not
// pay it: net/http serves a connection's requests on one goroutine, whose
// stack stays grown. A runner is such a goroutine: it keeps its stack
// between dispatches, and exits after idle without work, so that the
// number of runners follows the concurrency of recent calls. gRPC's
// NumStreamWorkers server option exists for the same cost.
type runners struct {
	jobs chan func() // unbuffered: a send succeeds only to an idle runner
	idle time.Duration
	quit chan struct{}
	stop sync.Once
}

func newRunners(idle time.Duration) *runners {
	return &runners{jobs: make(chan func()), idle: idle, quit: make(chan struct{})}
}

// do runs f on a runner and returns when it has returned; a panic in f is
// raised again in the caller. The runner takes the profiler labels of ctx
// (runtime/pprof), as a goroutine started for the call would have.
func (r *runners) do(ctx context.Context, f func()) {
	done := make(chan any, 1)
	job := func() {
		defer func() { done <- recover() }()
		pprof.SetGoroutineLabels(ctx)
		f()
	}
	select {
	case r.jobs <- job:
	default:
		go r.loop(job)
	}
	if p := <-done; p != nil {
		panic(p)
	}
}

func (r *runners) loop(job func()) {
	t := time.NewTimer(r.idle)
	defer t.Stop()
	for {
		job()
		t.Reset(r.idle)
		select {
		case job = <-r.jobs:
		case <-t.C:
			return
		case <-r.quit:
			return
		}
	}
}

// close makes idle runners exit; do still works (on new goroutines that
// exit when idle).
func (r *runners) close() {
	r.stop.Do(func() { close(r.quit) })
}
