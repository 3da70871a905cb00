package host

import "sync"

// watchers are the callbacks OnChange registered.
type watchers struct {
	mu   sync.Mutex
	next int
	fns  map[int]func()
}

// OnChange registers fn to be called after every change of the Hall's
// snapshot (an enrollment, a rules replacement, a reload that changed
// anything on disk), for example to tell MCP clients that the tool list
// changed. fn runs on its own goroutine and must not block for long; the
// returned function unregisters it.
func (h *Hall) OnChange(fn func()) (cancel func()) {
	w := &h.watchers
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fns == nil {
		w.fns = map[int]func(){}
	}
	id := w.next
	w.next++
	w.fns[id] = fn
	return func() {
		w.mu.Lock()
		delete(w.fns, id)
		w.mu.Unlock()
	}
}

// swap installs s as the snapshot in force and tells the watchers.
// changeMu must be held (or the Hall not yet shared).
func (h *Hall) swap(s *snapshot) {
	h.snap.Store(s)
	w := &h.watchers
	w.mu.Lock()
	fns := make([]func(), 0, len(w.fns))
	for _, fn := range w.fns {
		fns = append(fns, fn)
	}
	w.mu.Unlock()
	for _, fn := range fns {
		go fn()
	}
}
