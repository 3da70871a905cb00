package host

// SnapshotDigest is the digest ("sha256:<hex>") of the snapshot in force:
// the rules, policies, configuration, enrolled records and trust settings
// every decision is taken under, recorded as a signed snapshot change
// before the first of them; "" when it cannot be computed. Two Halls with
// the same digest decide alike: hall status compares its own with the
// server's (GET /health). Nodes sharing one
// database serve the same snapshot once they have all loaded its changes:
// /health, hall status and /metrics report it so that an operator can
// see which snapshot each node serves.
func (h *Hall) SnapshotDigest() string {
	s := h.snap.Load()
	if s == nil {
		return ""
	}
	return s.digest()
}
