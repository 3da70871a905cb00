package ledger

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestDecisionsListAndCount: Decisions reads a chain's decisions from
// their signed entries, newest first, one tenant's or every tenant's;
// External keeps the ingested ones only; DecisionCounts counts them; an
// entry edited in the database is an error, not a listing.
func TestDecisionsListAndCount(t *testing.T) {
	ctx := context.Background()
	s := openT(t, t.TempDir())
	rec := func(id, tenant string, denied bool, body string, at time.Time) {
		t.Helper()
		d := DecisionRecord{DecisionID: id, CorrelationID: "c-" + id, TenantID: tenant, CapabilityID: "cap.x", Denied: denied,
			Decision: json.RawMessage(body), Timestamp: at}
		if denied {
			d.DenyCode = "DENY_X"
		}
		if err := s.RecordDecision(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	yesterday := time.Now().Add(-36 * time.Hour)
	rec("d1", "org.a", false, `{"env":"dev"}`, yesterday)
	rec("d2", "org.a", true, `{"external":true,"decided_by_this_hall":false,"decision_id":"ext-1","submitted":{}}`, time.Now())
	rec("d3", "org.b", true, `{"env":"prod"}`, time.Now())

	ds, err := s.Decisions(ctx, DecisionFilter{TenantID: "org.a"})
	if err != nil || len(ds) != 2 || ds[0].DecisionID != "d2" || ds[1].DecisionID != "d1" || !ds[0].Denied || ds[0].DenyCode != "DENY_X" {
		t.Fatalf("org.a: %v %+v", err, ds)
	}
	if ds, _ := s.Decisions(ctx, DecisionFilter{AllTenants: true, Limit: 2}); len(ds) != 2 || ds[0].DecisionID != "d3" {
		t.Errorf("all tenants, limit 2: %+v", ds)
	}
	if ds, _ := s.Decisions(ctx, DecisionFilter{AllTenants: true, External: true}); len(ds) != 1 || ds[0].DecisionID != "d2" {
		t.Errorf("external: %+v", ds)
	}
	since := time.Now().Add(-time.Hour)
	total, n, denied, err := s.DecisionCounts(ctx, DecisionFilter{TenantID: "org.a", Since: since})
	if err != nil || total != 2 || n != 1 || denied != 1 {
		t.Errorf("counts org.a: %d %d %d %v", total, n, denied, err)
	}
	if total, n, denied, _ := s.DecisionCounts(ctx, DecisionFilter{AllTenants: true, Since: since}); total != 3 || n != 2 || denied != 2 {
		t.Errorf("counts all: %d %d %d", total, n, denied)
	}
	if total, n, denied, _ := s.DecisionCounts(ctx, DecisionFilter{TenantID: "org.none", Since: since}); total != 0 || n != 0 || denied != 0 {
		t.Errorf("counts of an empty tenant: %d %d %d", total, n, denied)
	}

	for _, q := range []string{"DROP TRIGGER entries_no_update", `UPDATE entries SET body = replace(body, '"prod"', '"dev"') WHERE entry_id = 'd3'`} {
		if _, err := s.w.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Decisions(ctx, DecisionFilter{TenantID: "org.b"}); err == nil || !strings.Contains(err.Error(), "d3") {
		t.Errorf("an edited entry: %v", err)
	}
}
