package sandbox

import (
	"bufio"
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
)

// engineOverhead is what one call costs the host beyond its linear
// memories and tables: the Extism kernel module, wazero's module instance,
// the call's value stack as far as ordinary guests use it, and the Go
// objects of one dispatch. Measured for the Go test guest at about 3 MiB
// (RATIONALE.md, "Memory budget"); 8 MiB leaves room.
const engineOverhead = 8 << 20

// callCharge is the host memory one call of a worker may take: its two
// linear memories (the guest's and the Extism kernel's, each capped at
// memoryBytes), its tables (boundTables), its call stack and the engine
// overhead.
//
// The stack: wasmmod.GuardStack bounds the frames of the guest's own
// functions by stackBytes; the Extism kernel's and the guard's trap add a
// few frames (stackSlack). wazero keeps the stack in one Go slice that it
// doubles when full (newLen = 2·len + need), so the slice stays below 3×
// what is used, and old and new slices are both alive while it copies:
// 4 × (stackBytes + stackSlack) covers the peak.
func callCharge(memoryBytes, tableBytes, stackBytes uint64) uint64 {
	return 2*memoryBytes + tableBytes + 4*(stackBytes+stackSlack) + engineOverhead
}

// stackSlack is the stack beyond the guest's own charged frames: the
// Extism kernel's functions the guest calls (a few frames, no recursion)
// and the entry of the call.
const stackSlack = 64 << 10

// memoryBudget admits concurrent calls only while the sum of their charges
// fits total: a mix of hostile calls, each within its own limits, cannot
// exhaust the host together. Waiters are served first come, first served
// so a large call is not starved by a stream of small ones.
type memoryBudget struct {
	total uint64

	mu      sync.Mutex
	used    uint64
	waiters []*budgetWaiter
}

type budgetWaiter struct {
	n     uint64
	ready chan struct{}
}

func newMemoryBudget(total uint64) *memoryBudget { return &memoryBudget{total: total} }

// acquire takes n bytes of the budget, waiting until they fit or ctx is
// done.
func (b *memoryBudget) acquire(ctx context.Context, n uint64) error {
	b.mu.Lock()
	if len(b.waiters) == 0 && b.used+n <= b.total {
		b.used += n
		b.mu.Unlock()
		return nil
	}
	w := &budgetWaiter{n: n, ready: make(chan struct{})}
	b.waiters = append(b.waiters, w)
	b.mu.Unlock()
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		b.mu.Lock()
		select {
		case <-w.ready:
			// Granted while giving up: hand it back.
			b.used -= n
		default:
			for i, x := range b.waiters {
				if x == w {
					b.waiters = append(b.waiters[:i], b.waiters[i+1:]...)
					break
				}
			}
		}
		b.grantLocked()
		b.mu.Unlock()
		return ctx.Err()
	}
}

// acquireNow takes n bytes of the budget if they fit now, ahead of any
// waiting call, and otherwise fails at once without waiting: a
// sub-dispatch's ancestors hold their own charges while it runs, so
// waiting behind other calls could wait on them (Request.Hop).
func (b *memoryBudget) acquireNow(ctx context.Context, n uint64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.total {
		return errBudgetFull
	}
	b.used += n
	return nil
}

var errBudgetFull = errors.New("memory budget full")

func (b *memoryBudget) release(n uint64) {
	b.mu.Lock()
	b.used -= n
	b.grantLocked()
	b.mu.Unlock()
}

func (b *memoryBudget) grantLocked() {
	for len(b.waiters) > 0 && b.used+b.waiters[0].n <= b.total {
		w := b.waiters[0]
		b.waiters = b.waiters[1:]
		b.used += w.n
		close(w.ready)
	}
}

// inUse returns the bytes currently admitted.
func (b *memoryBudget) inUse() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// DefaultMemoryBudgetFraction is the share of physical memory the Hall
// admits calls against when Config.MemoryBudget is zero.
const DefaultMemoryBudgetFraction = 0.5

// defaultMemoryBudget is half of the machine's physical memory (MemTotal
// of /proc/meminfo), or 4 GiB where that cannot be read.
func defaultMemoryBudget() uint64 {
	if n := memTotal(); n > 0 {
		return uint64(float64(n) * DefaultMemoryBudgetFraction)
	}
	return 4 << 30
}

func memTotal() uint64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, err := strconv.ParseUint(fields[1], 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return 0
}
