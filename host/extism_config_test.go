package host_test

import (
	"strings"
	"testing"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/internal/registry"
)

// Plugin config (issue 16): a record's config and hall.json's per-worker
// overrides may not name the Hall's own wcp.* keys; both say so at load.
func TestPluginConfigReservedKeys(t *testing.T) {
	if _, err := host.ParseConfig([]byte(`{"workers": {"org.x.w": {"config": {"wcp.tenant_id": "evil"}}}}`)); err == nil || !strings.Contains(err.Error(), `key "wcp.tenant_id" is not allowed`) {
		t.Errorf("hall.json with a wcp.* config key: %v", err)
	}
	c, err := host.ParseConfig([]byte(`{"workers": {"org.x.w": {"config": {"greeting": "Hi"}}}}`))
	if err != nil || c.Workers["org.x.w"].Config["greeting"] != "Hi" {
		t.Errorf("hall.json config override: %v %v", c.Workers, err)
	}
	rec := func(config string) []byte {
		return []byte(`{"worker_id":"org.x.w","worker_species_id":"wrk.x.w","capabilities":["cap.x.w"],"risk_tier":"low","config":` + config + `}`)
	}
	for _, bad := range []string{`{"wcp.tenant_id":"evil"}`, `{"n":1}`, `{"":"x"}`, `["a"]`} {
		if _, err := registry.Validate(rec(bad)); err == nil || !strings.Contains(err.Error(), "config") {
			t.Errorf("record config %s: %v, want a problem naming config", bad, err)
		}
	}
	r, err := registry.Validate(rec(`{"greeting":"Howdy","wcpx":"ok"}`))
	if err != nil || r.Config["greeting"] != "Howdy" {
		t.Errorf("record config: %v %v", r, err)
	}
}
