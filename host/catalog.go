package host

import (
	"slices"
	"strings"

	"github.com/wcphall/hall/host/wcp"
)

// Catalog is a read-only view of the workers enrolled in one snapshot of a
// Hall. Records it returns are copies: changing them changes nothing in
// the Hall. Enrolling goes through Hall.Enroll only.
type Catalog struct{ s *snapshot }

// Registry returns the enrolled workers as of now.
func (h *Hall) Registry() Catalog { return Catalog{h.snap.Load()} }

// Len is the number of enrolled workers whose records loaded.
func (c Catalog) Len() int {
	n := 0
	for _, w := range c.s.workers {
		if w.tampered == nil {
			n++
		}
	}
	return n
}

// Records returns copies of the enrolled records, by worker id. Records
// that failed their seal are not enrolled (see Hall.Problems).
func (c Catalog) Records() []*wcp.Record {
	out := make([]*wcp.Record, 0, len(c.s.workers))
	for _, w := range c.s.workers {
		if w.tampered != nil {
			continue
		}
		if rec, err := cloneRecord(w.rec); err == nil {
			out = append(out, rec)
		}
	}
	slices.SortFunc(out, func(a, b *wcp.Record) int { return strings.Compare(a.WorkerID, b.WorkerID) })
	return out
}

// Record returns a copy of the record enrolled under worker id.
func (c Catalog) Record(workerID string) (*wcp.Record, bool) {
	w := c.s.workers[workerID]
	if w == nil || w.tampered != nil {
		return nil, false
	}
	rec, err := cloneRecord(w.rec)
	return rec, err == nil
}

// Capabilities returns every capability served, with its species.
func (c Catalog) Capabilities() map[string][]string { return c.s.reg.Capabilities() }

// Controls returns the controls present fleet-wide, sorted.
func (c Catalog) Controls() []string { return c.s.reg.Controls() }
