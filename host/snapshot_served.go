package host

// SnapshotDigest is the digest of the snapshot in force (the digest the
// decisions made now name, recorded as a signed snapshot change before
// the first of them), or "" when it cannot be computed. Nodes sharing one
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
