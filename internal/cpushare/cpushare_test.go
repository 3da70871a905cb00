package cpushare

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock that moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newFake(cores int) (*Scheduler, *fakeClock) {
	s := New(cores)
	clk := &fakeClock{t: time.Unix(0, 0)}
	s.now = clk.now
	return s, clk
}

// Two cores held by tenant A's spinning dispatches; tenant B's dispatch
// waits until one of A's reaches a yield point, takes that core, and A's
// gets it back when B's dispatch is over (until then A is held to its
// share, one core).
func TestNewcomerTakesACoreAtTheNextYield(t *testing.T) {
	ctx := context.Background()
	s, clk := newFake(2)
	a1, a2 := s.Claim("a", 1), s.Claim("a", 1)
	if err := a1.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a2.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	b := s.Claim("b", 1)
	bDone := make(chan error)
	go func() { bDone <- b.Acquire(ctx) }()
	for s.Stats().Waiting != 1 {
		time.Sleep(time.Millisecond) // until B is in line (no assertion on time)
	}
	clk.add(time.Millisecond) // A's dispatches ran meanwhile
	yielded := make(chan error)
	go func() { yielded <- a1.Yield(ctx) }()
	if err := <-bDone; err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Running != 2 || st.Waiting != 1 {
		t.Fatalf("after the yield: %+v, want B and one of A's running, the other of A's waiting", st)
	}
	b.Release()
	// B's dispatch is still in flight (its work outside guest code): A
	// stays at its share, one core.
	if st := s.Stats(); st.Running != 1 || st.Waiting != 1 {
		t.Fatalf("B between cores: %+v, want A at its share (one running, one waiting)", st)
	}
	b.Done()
	if err := <-yielded; err != nil {
		t.Fatal(err)
	}
	a1.Release()
	a2.Release()
	a1.Done()
	a2.Done()
	if st := s.Stats(); st.Running != 0 || st.Waiting != 0 || st.Tenants != 0 {
		t.Fatalf("at the end: %+v", st)
	}
}

// On one core, tenants of weights 1 and 2 that both spin get turns in
// the ratio of their weights.
func TestWeightsShareTheCore(t *testing.T) {
	ctx := context.Background()
	s, clk := newFake(1)
	turns := map[string]int{}
	var mu sync.Mutex
	const total = 300
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for _, tc := range []struct {
		tenant string
		weight int
	}{{"light", 1}, {"heavy", 2}} {
		c := s.Claim(tc.tenant, tc.weight)
		defer c.Done()
		if tc.tenant == "light" {
			if err := c.Acquire(ctx); err != nil {
				t.Fatal(err)
			}
		}
		wg.Go(func() {
			if tc.tenant == "heavy" {
				if err := c.Acquire(ctx); err != nil {
					t.Error(err)
					return
				}
			} else {
				for s.Stats().Waiting == 0 {
					time.Sleep(time.Millisecond) // polling until heavy is in line
				}
			}
			defer c.Release()
			for {
				// Holding the core (only one claim runs at a time): run
				// for 1 ms of the fake clock, then offer it.
				mu.Lock()
				turns[tc.tenant]++
				n := turns["light"] + turns["heavy"]
				mu.Unlock()
				if n == total {
					close(stop)
				}
				if n >= total {
					return
				}
				clk.add(time.Millisecond)
				select {
				case <-stop:
					return
				default:
				}
				if err := c.Yield(ctx); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	ratio := float64(turns["heavy"]) / float64(turns["light"])
	if ratio < 1.8 || ratio > 2.2 {
		t.Fatalf("turns %v: heavy/light %.2f, want about 2 (the weights)", turns, ratio)
	}
}

// A dispatch whose context ends while it waits leaves the line; the core
// it would have had goes to the next.
func TestCancelledWaiterLeaves(t *testing.T) {
	s, _ := newFake(1)
	a := s.Claim("a", 1)
	if err := a.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b := s.Claim("b", 1)
	if err := b.Acquire(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want the context's error", err)
	}
	if st := s.Stats(); st.Waiting != 0 || st.Running != 1 {
		t.Fatalf("%+v", st)
	}
	b.Done()
	a.Release()
	a.Done()
	c := s.Claim("c", 1)
	if err := c.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.Release()
	c.Done()
	if st := s.Stats(); st.Tenants != 0 {
		t.Fatalf("%+v", st)
	}
}
