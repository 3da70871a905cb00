package wasmtest

import (
	"os"
	"slices"
	"testing"

	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/registry"
	"github.com/wcphall/hall/internal/wasmmod"
)

// CheckRecord checks the plugin's registry_record.json against its module:
// the record validates, serves exactly capability, every entrypoint is
// exported, and the envelope grants no network and no secret, so the
// module must not import hall_http or hall_secret. It returns the record
// and the module's shape for plugin-specific checks.
func CheckRecord(t *testing.T, wasm []byte, capability string) (*wcp.Record, wasmmod.Info) {
	t.Helper()
	data, err := os.ReadFile("registry_record.json")
	if err != nil {
		t.Fatal(err)
	}
	rec, err := registry.Validate(data)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rec.Capabilities, []string{capability}) {
		t.Errorf("record serves %v, want [%s]", rec.Capabilities, capability)
	}
	info, err := wasmmod.Inspect(wasm)
	if err != nil {
		t.Fatal(err)
	}
	for c, export := range rec.Entrypoints {
		if !info.HasExport(export, wasmmod.KindFunc) {
			t.Errorf("entrypoint %s -> %s is not exported", c, export)
		}
	}
	env := rec.PrivilegeEnvelope
	if env == nil || !env.NetworkEgress.None() || len(env.SecretsAccess) != 0 {
		t.Fatalf("envelope %+v: want no egress and no secrets", env)
	}
	for _, name := range []string{"hall_http", "hall_secret"} {
		if info.HasImport("extism:host/user", name) {
			t.Errorf("module imports %s, which its envelope cannot grant", name)
		}
	}
	return rec, info
}
