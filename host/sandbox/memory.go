package sandbox

import (
	"sync/atomic"

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
	return &linearMemory{guard: g, limit: limit, initialCap: capacity}
}

type linearMemory struct {
	guard      *memoryGuard
	limit      uint64
	initialCap uint64
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
	copy(nb, m.buf)
	m.buf = nb
	return nb
}

// Free implements experimental.LinearMemory.
func (m *linearMemory) Free() {
	m.buf = nil
	if m.unmap != nil {
		m.unmap()
		m.unmap = nil
	}
}
