package ledger

import (
	"strconv"

	"github.com/wcphall/hall/host/wcp"
)

// appendEntryBody appends the RFC 8785 form of e (what canonicalMarshal(e)
// returns) without going through encoding/json: members in the byte order
// of their names (all ASCII, where UTF-16 order is byte order), e.Decision
// and e.Events appended as they are, since both are canonical already.
func appendEntryBody(b []byte, e *entryJSON) []byte {
	b = append(b, '{')
	sep := func(name string) {
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, '"', ':')
	}
	str := func(name, v string) {
		sep(name)
		b = appendJCSString(b, v)
	}
	boolean := func(name string, v *bool) {
		if v != nil {
			sep(name)
			b = strconv.AppendBool(b, *v)
		}
	}
	if e.CapabilityID != "" {
		str("capability_id", e.CapabilityID)
	}
	str("correlation_id", e.CorrelationID)
	if len(e.Decision) > 0 {
		sep("decision")
		b = append(b, e.Decision...)
	}
	str("decision_id", e.DecisionID)
	boolean("denied", e.Denied)
	if e.DenyCode != nil {
		str("deny_code", *e.DenyCode)
	}
	boolean("dry_run", e.DryRun)
	str("entry_id", e.EntryID)
	if len(e.Events) > 0 {
		sep("events")
		b = append(b, '[')
		for i, ev := range e.Events {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, ev...)
		}
		b = append(b, ']')
	}
	if e.Hash != "" {
		str("hash", e.Hash)
	}
	str("kind", e.Kind)
	if e.PrevHash != nil {
		str("prev_hash", *e.PrevHash)
	} else {
		sep("prev_hash")
		b = append(b, "null"...)
	}
	str("recorded_at", e.RecordedAt)
	sep("sequence")
	b = strconv.AppendUint(b, e.Sequence, 10)
	if e.Signature != "" {
		str("signature", e.Signature)
	}
	str("signing_key_id", e.SigningKeyID)
	if e.Snapshot != "" {
		str("snapshot", e.Snapshot)
	}
	str("tenant_id", e.TenantID)
	sep("version")
	b = strconv.AppendInt(b, int64(e.Version), 10)
	return append(b, '}')
}

// appendJCSString appends s as RFC 8785 writes a string: the Hall's one
// string encoder (host/wcp).
func appendJCSString(b []byte, s string) []byte { return wcp.AppendJSONString(b, s) }
