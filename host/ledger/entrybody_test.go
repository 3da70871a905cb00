package ledger

import (
	"bytes"
	"encoding/json"
	"testing"
)

// TestEntryBodyIsCanonical holds the hand-written entry encoder to what
// it replaces: encoding/json followed by RFC 8785 canonicalization.
func TestEntryBodyIsCanonical(t *testing.T) {
	tr, fa := true, false
	code, empty := "DENY_POLICY", ""
	prev := "sha256:" + string(bytes.Repeat([]byte("ab"), 32))
	odd := "a\u2028b\u2029<&>\"\\\b\t\n\f\r\x01\x1f\x7f é 😀 \xff end"
	dec, err := canonical(json.RawMessage(`{"z":1.0,"a":[1e2,"x"],"telemetry_envelopes":[{"event_id":"evt.x"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	ev, _ := canonical(json.RawMessage(`{"event_id":"evt.w","n":2}`))
	for _, tc := range []struct {
		name string
		e    entryJSON
	}{
		{"decision", entryJSON{Version: formatV2, EntryID: "d1", Kind: entryDecision, TenantID: "org.acme", Sequence: 1,
			SigningKeyID: "ed25519:0123", CorrelationID: "c1", RecordedAt: "2026-01-02T03:04:05.000006Z", DecisionID: "d1",
			CapabilityID: "cap.x", Denied: &fa, DenyCode: &empty, DryRun: &tr, Decision: dec}},
		{"denied, chained", entryJSON{Version: formatV2, EntryID: "d2", Kind: entryDecision, TenantID: "", Sequence: 9007199254740991,
			PrevHash: &prev, SigningKeyID: "k", CorrelationID: odd, RecordedAt: "t", DecisionID: "d2",
			Denied: &tr, DenyCode: &code, DryRun: &fa, Decision: dec}},
		{"events", entryJSON{Version: formatV2, EntryID: "evt_1", Kind: entryEvents, TenantID: odd, Sequence: 3, PrevHash: &prev,
			SigningKeyID: "k", CorrelationID: "c", RecordedAt: "t", Events: []json.RawMessage{ev, ev}}},
		{"sealed", entryJSON{Version: formatV2, EntryID: "e", Kind: entryEvents, Sequence: 1, Hash: prev, Signature: "c2ln",
			SigningKeyID: "k", Events: []json.RawMessage{ev}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, err := canonicalMarshal(&tc.e)
			if err != nil {
				t.Fatal(err)
			}
			if got := appendEntryBody(nil, &tc.e); !bytes.Equal(got, want) {
				t.Errorf("appendEntryBody\n got %s\nwant %s", got, want)
			}
		})
	}
}

// FuzzEntryBody compares the two encoders on arbitrary strings.
func FuzzEntryBody(f *testing.F) {
	f.Add("c", "org.acme", "cap.x", "\u2028<\x00\xff")
	f.Fuzz(func(t *testing.T, corr, tenant, capability, id string) {
		fa := false
		e := entryJSON{Version: formatV2, EntryID: id, Kind: entryDecision, TenantID: tenant, Sequence: 7,
			SigningKeyID: id, CorrelationID: corr, RecordedAt: corr, DecisionID: id, CapabilityID: capability,
			Denied: &fa, DenyCode: &capability, DryRun: &fa, Decision: json.RawMessage(`{}`)}
		want, err := canonicalMarshal(&e)
		if err != nil {
			t.Skip()
		}
		if got := appendEntryBody(nil, &e); !bytes.Equal(got, want) {
			t.Errorf("appendEntryBody\n got %s\nwant %s", got, want)
		}
	})
}
