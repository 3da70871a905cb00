package server_test

// Regression test of issue 9 ("Decided is what runs") over HTTP: a module's
// embedded wcp.record is authoritative, so POST /enroll of a record that
// differs from it is refused and nothing is enrolled.

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/host/server"
	"github.com/wcphall/hall/internal/wasmmod"
)

func TestIntegrityEnrollRecordMismatch(t *testing.T) {
	base := start(t, server.Config{})
	embedded := record(t, "org.test.embedded", "")
	embedded["worker_species_id"] = "wrk.test.embedded"
	embedded["capabilities"] = []string{"cap.test.embedded"}
	sec, _ := json.Marshal(embedded)
	mod, err := wasmmod.SetCustomSection(uniqueModule(t), host.RecordSection, sec)
	if err != nil {
		t.Fatal(err)
	}
	d := digest(mod)
	if r := putArtifact(t, base, "/artifacts/"+d, "application/wasm", mod); r.status != 201 {
		t.Fatalf("upload: %v", r)
	}

	// The embedded record, widened: another risk tier and /etc/ writable.
	var edited map[string]any
	json.Unmarshal(sec, &edited)
	edited["artifact_hash"] = d
	edited["risk_tier"] = "critical"
	edited["privilege_envelope"].(map[string]any)["filesystem_writes"] = []string{"/etc/"}
	r := post(t, base, "/enroll", fx.admin, edited)
	if r.status != 422 || r.errCode() != "RECORD_MISMATCH" {
		t.Errorf("enroll of a record differing from the embedded one: %v, want 422 RECORD_MISMATCH", r)
	}
	var fields []string
	if e, ok := r.body["error"].(map[string]any); ok {
		if f, _ := e["field"].(string); f != "" {
			fields = append(fields, f)
		}
		ps, _ := e["problems"].([]any)
		for _, p := range ps {
			if f, _ := p.(map[string]any)["field"].(string); f != "" {
				fields = append(fields, f)
			}
		}
	}
	for _, want := range []string{"risk_tier", "privilege_envelope.filesystem_writes"} {
		named := false
		for _, f := range fields {
			named = named || strings.HasPrefix(f, want)
		}
		if !named {
			t.Errorf("the error names fields %v, not %s: %s", fields, want, r.raw)
		}
	}
	if w := get(t, base, "/wcp/workers/org.test.embedded", fx.acme); w.status != 404 {
		t.Fatalf("the mismatching record was enrolled: %v", w)
	}

	// The embedded record itself, naming the module, is accepted.
	embedded["artifact_hash"] = d
	if r := post(t, base, "/enroll", fx.admin, embedded); r.status != 201 {
		t.Fatalf("enroll of the embedded record: %v", r)
	}
}
