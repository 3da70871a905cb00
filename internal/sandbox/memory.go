package sandbox

import (
	"sync"
	"sync/atomic"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

const wasmPageSize = 65536

// memoryGuard is the per-instance wazero memory allocator that enforces
// Limits.MemoryBytes on every linear memory of the instance (the guest's and
// the Extism kernel's) and remembers whether a grow was refused.
//
// Why not RuntimeConfig.WithMemoryLimitPages alone: when a grow exceeds that
// limit wazero fails memory.grow without telling anyone, and the guest then
// dies in its own way (Go: "fatal error: out of memory" and exit 2, Rust:
// "unreachable"). The runtime limit is left at wazero's maximum so that every
// grow reaches Reallocate, where the refusal is both enforced and recorded;
// the call is then reported as LIMIT_MEMORY.
type memoryGuard struct {
	limit uint64
	hit   atomic.Bool
	// copies counts grows that had to move a memory to a larger buffer.
	copies atomic.Int64
	// sizes, shared by the instances of one Worker, may be nil.
	sizes *sizeHints
	// held is the capacity of the instance's linear memories now: what an
	// idle instance keeps (Config.IdleMemory).
	held atomic.Int64
	// mems are the linear memories allocated for the instance, in order:
	// the Extism kernel's and the guest's (guestMemory). Allocate runs
	// only while the instance is instantiated, on one goroutine.
	mems []*linearMemory
}

// sizeHints remembers, per declared initial size of a linear memory (the
// Extism kernel's and the guest's differ), the size that memory had when its
// last instance was freed. A new instance reserves that much capacity up
// front, so a guest that grows the way its predecessor did (a Go guest grows
// once or twice during _initialize) never grows by copying: it costs one
// zeroed allocation instead of two plus a copy.
//
// The hint is the last final size, not the largest ever seen: a single call
// that grew memory a lot makes the next instance allocate that much, and the
// next ordinary call brings the hint back down. It never exceeds the
// memory's limit, and only capacity depends on it: the size wazero sees, and
// so LIMIT_MEMORY, do not.
type sizeHints struct{ m sync.Map } // initial size -> *atomic.Uint64

func (h *sizeHints) get(initial uint64) uint64 {
	if h == nil {
		return 0
	}
	if v, ok := h.m.Load(initial); ok {
		return v.(*atomic.Uint64).Load()
	}
	return 0
}

func (h *sizeHints) set(initial, size uint64) {
	if h == nil || size == 0 {
		return
	}
	v, ok := h.m.Load(initial)
	if !ok {
		v, _ = h.m.LoadOrStore(initial, new(atomic.Uint64))
	}
	v.(*atomic.Uint64).Store(size)
}

// Allocate implements experimental.MemoryAllocator.
func (g *memoryGuard) Allocate(capacity, max uint64) experimental.LinearMemory {
	limit := g.limit
	if max < limit {
		limit = max
	}
	if capacity > limit {
		capacity = limit
	}
	initial := capacity
	if h := g.sizes.get(initial); h > capacity {
		capacity = min(h, limit)
	}
	m := &linearMemory{guard: g, limit: limit, initial: initial, initialCap: capacity}
	g.mems = append(g.mems, m)
	return m
}

// guestMemory returns the guest module's own linear memory: the one the
// guard allocated that is not the Extism kernel's (kernel), or nil when
// there is not exactly one such memory (a module without a memory).
//
// Extism hands host functions only the kernel's memory (CurrentPlugin
// Memory) and never the calling module, but every linear memory of an
// instance is allocated by its guard, and wazero's view of a memory is
// the very slice Reallocate returned: reading linearMemory.buf is reading
// the guest's memory as wazero sees it (its length is the memory's size).
// The kernel's is told apart by its backing array.
func (g *memoryGuard) guestMemory(kernel api.Memory) *linearMemory {
	var kb []byte
	if kernel != nil {
		kb, _ = kernel.Read(0, kernel.Size())
	}
	var guest *linearMemory
	for _, m := range g.mems {
		if len(m.buf) > 0 && len(kb) > 0 && &m.buf[0] == &kb[0] {
			continue
		}
		if guest != nil || m.unmap != nil {
			return nil
		}
		guest = m
	}
	return guest
}

// span returns the n bytes of the memory at off, or false when they are
// not all inside it. The slice aliases the memory: valid until the guest
// runs again (a memory.grow may move it).
func (m *linearMemory) span(off, n uint32) ([]byte, bool) {
	if m == nil || uint64(off)+uint64(n) > uint64(len(m.buf)) {
		return nil, false
	}
	return m.buf[off : off+n], true
}

type linearMemory struct {
	guard      *memoryGuard
	limit      uint64
	initial    uint64 // capacity wazero asked for: the sizeHints key
	initialCap uint64 // capacity of the first allocation
	buf        []byte
	unmap      func()
}

// Reallocate implements experimental.LinearMemory.
//
// # Notes
//
//   - Growing copies, as wazero's own default does. The backing array is Go
//     memory, so even a module closed under a running call cannot turn into
//     a use-after-free. (A whole-limit mmap reservation avoids the copies but
//     made no measurable difference on a loaded 2-core machine; not worth
//     the unmap hazard.) Worker.Close nevertheless stops and waits for
//     running calls before closing the Runtime.
func (m *linearMemory) Reallocate(size uint64) []byte {
	if size > m.limit {
		m.guard.hit.Store(true)
		if m.buf == nil {
			// wazero requires the initial (declared minimum) allocation to
			// succeed, and the runtime limit is wazero's maximum (4 GiB).
			// Such a memory is backed by a lazily committed mapping, never
			// runs guest code (Extism disables start functions) and the
			// instance is refused right after instantiation because hit is
			// set.
			m.buf, m.unmap = reserve(size)
			return m.buf
		}
		return nil
	}
	if size <= uint64(cap(m.buf)) {
		m.buf = m.buf[:size]
		return m.buf
	}
	newCap := max(size, 2*uint64(cap(m.buf)), m.initialCap)
	newCap = min(newCap, m.limit)
	nb := make([]byte, size, newCap)
	m.guard.held.Add(int64(newCap) - int64(cap(m.buf)))
	if m.buf != nil {
		m.guard.copies.Add(1)
	}
	copy(nb, m.buf)
	m.buf = nb
	return nb
}

// Free implements experimental.LinearMemory.
func (m *linearMemory) Free() {
	if m.unmap == nil {
		m.guard.sizes.set(m.initial, uint64(len(m.buf)))
		m.guard.held.Add(-int64(cap(m.buf)))
	}
	m.buf = nil
	if m.unmap != nil {
		m.unmap()
		m.unmap = nil
	}
}
