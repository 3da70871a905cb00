package sandbox

import (
	"context"
	"sync"
	"testing"
	"time"
)

// recordingCPU is a CPU that grants at once and records what the sandbox
// asked of it.
type recordingCPU struct {
	mu                        sync.Mutex
	acquires, releases, yield int
	held                      bool
	heldAtYield               bool // every Yield came while holding
}

func (c *recordingCPU) Acquire(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.acquires++
	c.held = true
	return nil
}

func (c *recordingCPU) Release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.releases++
	c.held = false
}

func (c *recordingCPU) Yield(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.yield == 0 {
		c.heldAtYield = c.held
	} else {
		c.heldAtYield = c.heldAtYield && c.held
	}
	c.yield++
	return nil
}

// Issue 25, item 1: a spinning guest reaches its yield points (where a
// scheduler can pre-empt it) while it holds its core, and gives the core
// back at the end of the call; a sleeping guest gives the core back while
// it sleeps.
func TestCallUsesCPU(t *testing.T) {
	e := newEngine(t, Config{})
	t.Run("spin yields", func(t *testing.T) {
		w := load(t, e, fixtures.adversary, Spec{Name: "spin", Pool: -1})
		cpu := &recordingCPU{}
		_, err := w.Call(context.Background(), Request{Export: "spin", Timeout: 200 * time.Millisecond, CPU: cpu})
		wantCode(t, err, CodeLimitTimeout)
		if cpu.yield == 0 || !cpu.heldAtYield || cpu.acquires != 1 || cpu.releases != 1 || cpu.held {
			t.Fatalf("%+v: want yields while holding the core, one acquire and its release", cpu)
		}
	})
	t.Run("sleep releases", func(t *testing.T) {
		w := load(t, e, fixtures.sleep, Spec{Name: "sleep", Pool: -1})
		cpu := &recordingCPU{}
		_, err := w.Call(context.Background(), Request{Export: "sleep_hour", Timeout: 100 * time.Millisecond, CPU: cpu})
		wantCode(t, err, CodeLimitTimeout)
		if cpu.acquires != 2 || cpu.releases != 2 || cpu.held {
			t.Fatalf("%+v: want the core taken, given back for the sleep, taken again and given back", cpu)
		}
	})
}
