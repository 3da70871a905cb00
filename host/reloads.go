package host

import (
	"errors"
	"sync/atomic"
)

// reloadCounts are the outcomes of Reload since Open.
type reloadCounts struct {
	ok, failed atomic.Uint64
	// lastFailed is set by a failed reload and cleared by the next that
	// succeeds, which then says so: a reload that recovered from an
	// invalid file logged nothing (issue 27).
	lastFailed atomic.Bool
}

// ReloadStats are Reload's outcomes since Open: OK reloads (changed
// something or not) and Failed ones (the previous snapshot kept serving).
type ReloadStats struct {
	OK, Failed uint64
}

// Reloads returns Reload's outcomes since Open (hall_reloads_total).
func (h *Hall) Reloads() ReloadStats {
	return ReloadStats{OK: h.reloads.ok.Load(), Failed: h.reloads.failed.Load()}
}

// noteReload counts a reload and logs "hall: reloaded" when it changed the
// snapshot in force or recovered from a failed one. Failures are the
// caller's to report (Watch's report, hall serve's SIGHUP line).
func (h *Hall) noteReload(changed bool, err error) {
	if err != nil {
		if !errors.Is(err, ErrClosed) {
			h.reloads.failed.Add(1)
			h.reloads.lastFailed.Store(true)
		}
		return
	}
	h.reloads.ok.Add(1)
	recovered := h.reloads.lastFailed.Swap(false)
	if changed || recovered {
		s := h.snap.Load()
		h.log.Info("hall: reloaded", "rules", len(s.rules.Rules), "workers", h.Registry().Len(), "snapshot", s.digest(), "recovered", recovered)
	}
}
