package ledger

import (
	"bytes"
	"context"
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

// TestDecisionTelemetryGiven: a decision whose envelopes the caller hands
// over (DecisionRecord.Telemetry, now ignored) is stored as one whose
// envelopes the ledger reads from the decision.
func TestDecisionTelemetryGiven(t *testing.T) {
	s := openT(t, t.TempDir())
	ctx := context.Background()
	parsed := newDecision("org.a", "allowed", 1)
	given := newDecision("org.a", "allowed", 2)
	var env struct {
		TelemetryEnvelopes []json.RawMessage `json:"telemetry_envelopes"`
	}
	if err := json.Unmarshal(given.Decision, &env); err != nil {
		t.Fatal(err)
	}
	given.Telemetry = env.TelemetryEnvelopes
	for _, d := range []DecisionRecord{parsed, given} {
		if err := s.RecordDecision(ctx, d); err != nil {
			t.Fatal(err)
		}
		evs, err := s.Events(ctx, d.CorrelationID)
		// Read back from the signed entry, in canonical form.
		want, _ := canonical(env.TelemetryEnvelopes[0])
		if err != nil || len(evs) != 1 || !bytes.Equal(evs[0], want) && d.Telemetry != nil {
			t.Errorf("events of %s: %s, %v", d.DecisionID, evs, err)
		}
	}
	verifyOK(t, s, nil)
}

// TestExportLineIsMarshalJSON: the export fast path writes what
// Receipt.MarshalJSON writes for the stored receipt.
func TestExportLineIsMarshalJSON(t *testing.T) {
	s := openT(t, t.TempDir(), WithPayloads())
	ctx := context.Background()
	for i := range 4 {
		r := newReceipt("org.a", i)
		r.CorrelationID += "\u2028<&>\x01"
		if i%2 == 0 {
			r.Envelope = json.RawMessage(`{"z":1.0,"a":[]}`)
			r.RecordDigest = "sha256:" + string(bytes.Repeat([]byte("0"), 64))
		}
		if err := s.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := s.r.Query(`SELECT body, receipt_hash, signature FROM receipts`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var body, hash, sig string
		rows.Scan(&body, &hash, &sig)
		got, err := exportLine(body, hash, sig)
		if err != nil {
			t.Fatal(err)
		}
		r, err := decodeReceipt(body, hash, sig)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := r.MarshalJSON()
		if !bytes.Equal(got, want) {
			t.Errorf("export line\n got %s\nwant %s", got, want)
		}
		n++
	}
	if n != 4 {
		t.Fatalf("%d receipts", n)
	}
}
