package mcp

import (
	"context"
	"sync"
	"testing"
	"time"
)

func TestRunners(t *testing.T) {
	r := newRunners(time.Minute)
	defer r.close()
	// Concurrent jobs all run, each to completion before do returns.
	var mu sync.Mutex
	ran := 0
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 10 {
				done := false
				r.do(context.Background(), func() {
					mu.Lock()
					ran++
					mu.Unlock()
					done = true
				})
				if !done {
					t.Error("do returned before its job did")
				}
			}
		})
	}
	wg.Wait()
	if ran != 160 {
		t.Fatalf("%d jobs ran, want 160", ran)
	}
	// A panic in a job is raised again in the caller; the runners go on.
	func() {
		defer func() {
			if p := recover(); p != "boom" {
				t.Fatalf("recovered %v, want the job's panic", p)
			}
		}()
		r.do(context.Background(), func() { panic("boom") })
	}()
	// After close, jobs still run.
	r.close()
	ok := false
	r.do(context.Background(), func() { ok = true })
	if !ok {
		t.Fatal("do after close did not run its job")
	}
}
