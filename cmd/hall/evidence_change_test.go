package main

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/ledger"
)

func evDigest(s string) string { return wcp.Digest(sha256.Sum256([]byte(s))).String() }

// evidenceHome writes a ledger straight into dir/.hall (the state directory
// hallIn uses): three receipts, one without record digest and envelope as
// older Halls wrote them, one with an empty envelope, one with a declared
// envelope; and two changes. It returns the receipts in that order.
func evidenceHome(t *testing.T, dir string) []*ledger.Receipt {
	t.Helper()
	s, err := ledger.Open(filepath.Join(dir, ".hall"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	envelopes := []string{"", `{}`, `{"network_egress": ["api.example.com"], "filesystem_writes": ["/tmp/out"]}`}
	var rs []*ledger.Receipt
	for i, env := range envelopes {
		r := &ledger.Receipt{
			TenantID: "org.acme", CorrelationID: fmt.Sprintf("corr-%d", i), DecisionID: fmt.Sprintf("dec-%d", i),
			DispatchedAt: time.Now(), WorkerID: "org.acme.summarizer", CapabilityID: "cap.doc.summarize",
			PolicyDecision: "ALLOW", ArtifactHash: evDigest("module"), RequestHash: evDigest("request"),
			InputHash: evDigest("input"), Outcome: "ok",
		}
		if env != "" {
			r.RecordDigest = evDigest("record")
			r.Envelope = json.RawMessage(env)
		}
		if err := s.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	for _, c := range []*ledger.Change{
		{Kind: ledger.ChangeEnroll, Subject: "org.acme.summarizer", Digest: evDigest("record"), ArtifactHash: evDigest("module"),
			Body: json.RawMessage(`{"worker_id":"org.acme.summarizer"}`), Actor: "local:alice"},
		{Kind: ledger.ChangeRules, Subject: filepath.Join(dir, "rules.json"), Digest: evDigest("rules"), Actor: "token:tok_0123456789ab"},
	} {
		if err := s.RecordChange(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	return rs
}

func TestReceiptsShowRecordAndEnvelope(t *testing.T) {
	dir := t.TempDir()
	rs := evidenceHome(t, dir)
	for i, tc := range []struct {
		name     string
		record   string
		envelope []string // lines the human output must contain
	}{
		{"older receipt", "record digest  not recorded", []string{"privilege envelope: not recorded"}},
		{"empty envelope", "record digest  " + evDigest("record"), []string{"privilege envelope: none declared"}},
		{"declared envelope", "record digest  " + evDigest("record"), []string{
			"privilege envelope: {", `  "filesystem_writes": [`, `    "/tmp/out"`, `  "network_egress": [`, `    "api.example.com"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := hallIn(t, dir, "", nil, "receipts", "show", rs[i].ReceiptID)
			mustOK(t, r, "receipts show")
			for _, want := range append([]string{
				"receipt        " + rs[i].ReceiptID + " (tenant org.acme, sequence " + fmt.Sprint(i+1) + ")",
				"worker         org.acme.summarizer",
				"artifact hash  " + evDigest("module"),
				tc.record,
				"signed receipt:",
				`"receipt_hash": "` + rs[i].ReceiptHash + `"`,
			}, tc.envelope...) {
				if !strings.Contains(r.stdout, want) {
					t.Errorf("receipts show lacks %q:\n%s", want, r.stdout)
				}
			}

			r = hallIn(t, dir, "", nil, "receipts", "show", "--json", rs[i].ReceiptID)
			mustOK(t, r, "receipts show --json")
			var got map[string]any
			if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
				t.Fatalf("receipts show --json: %v\n%s", err, r.stdout)
			}
			_, hasRecord := got["record_digest"]
			_, hasEnvelope := got["privilege_envelope"]
			if hasRecord != (rs[i].RecordDigest != "") || hasEnvelope != (len(rs[i].Envelope) > 0) {
				t.Errorf("--json has record_digest %v, privilege_envelope %v; receipt has %q, %s", hasRecord, hasEnvelope, rs[i].RecordDigest, rs[i].Envelope)
			}
			if hasRecord && got["record_digest"] != rs[i].RecordDigest {
				t.Errorf("record_digest %v, want %s", got["record_digest"], rs[i].RecordDigest)
			}
			if got["worker_id"] != "org.acme.summarizer" || got["artifact_hash"] != evDigest("module") {
				t.Errorf("--json worker_id %v artifact_hash %v", got["worker_id"], got["artifact_hash"])
			}
		})
	}
}

func TestAuditVerifyChangeChain(t *testing.T) {
	dir := t.TempDir()
	evidenceHome(t, dir)
	r := hallIn(t, dir, "", nil, "audit", "verify")
	mustOK(t, r, "audit verify")
	if !strings.Contains(r.stdout, "verified 3 receipt(s) in 1 stream(s) and 3 change(s)") {
		t.Fatalf("audit verify: %s", r.stdout)
	}

	for _, tc := range []struct {
		name string
		sql  string
	}{
		// Change 1 is the schema change of the ledger's creation; 2 is the enrollment.
		{"altered change", `UPDATE changes SET body = replace(body, '"actor":"local:alice"', '"actor":"local:mallory"') WHERE seq = 2`},
		{"deleted change", `DELETE FROM changes WHERE seq = 2`},
		{"altered envelope", `UPDATE receipts SET body = replace(body, '"network_egress":["api.example.com"]', '"network_egress":["*"]') WHERE seq = 3`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			evidenceHome(t, dir)
			db, err := sql.Open("sqlite", filepath.Join(dir, ".hall", ledger.DBFile))
			if err != nil {
				t.Fatal(err)
			}
			for _, q := range []string{
				"DROP TRIGGER receipts_no_update", "DROP TRIGGER receipts_no_delete",
				"DROP TRIGGER changes_no_update", "DROP TRIGGER changes_no_delete", tc.sql,
			} {
				if res, err := db.Exec(q); err != nil {
					t.Fatalf("%s: %v", q, err)
				} else if n, _ := res.RowsAffected(); q == tc.sql && n != 1 {
					t.Fatalf("%s changed %d rows", q, n)
				}
			}
			db.Close()

			r := hallIn(t, dir, "", nil, "audit", "verify")
			want := "BROKEN change chain: change chg_"
			if strings.Contains(tc.name, "envelope") {
				want = "BROKEN tenant org.acme: receipt "
			}
			if r.code != exitError || !strings.Contains(r.stdout, want) || !strings.Contains(r.stderr, "audit failed") {
				t.Fatalf("tampering not reported (want %q): exit %d\n%s%s", want, r.code, r.stdout, r.stderr)
			}
		})
	}
}
