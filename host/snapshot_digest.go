package host

import (
	"crypto/sha256"
	"encoding/json"
	"slices"

	"github.com/wcphall/hall/host/wcp"
)

// digest is "sha256:<hex>" over everything the snapshot decides with: the
// rules' digest, the policy set's digest ("none" without one), the
// canonical JSON of the configuration and the sorted record digests of
// the enrolled workers. Two snapshots with the same digest decide alike.
func (s *snapshot) digest() string {
	h := sha256.New()
	h.Write([]byte(s.rulesDigest))
	h.Write([]byte{0})
	if s.policies != nil {
		h.Write([]byte(s.policies.Digest()))
	} else {
		h.Write([]byte("none"))
	}
	h.Write([]byte{0})
	if raw, err := json.Marshal(s.cfg); err == nil {
		if c, err := wcp.CanonicalJSON(raw); err == nil {
			raw = c
		}
		h.Write(raw)
	}
	h.Write([]byte{0})
	recs := make([]string, 0, len(s.workers))
	for _, w := range s.workers {
		recs = append(recs, w.recordDigest.String())
	}
	slices.Sort(recs)
	for _, r := range recs {
		h.Write([]byte(r))
		h.Write([]byte{0})
	}
	var d wcp.Digest
	h.Sum(d[:0])
	return d.String()
}
