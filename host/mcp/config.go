package mcp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/wcphall/hall/host/wcp"
)

// ConfigFile is the MCP configuration file, beside hall.json in the Hall's
// directory. It is optional.
const ConfigFile = "mcp.json"

// overridable request fields: the _meta keys a client may set on a
// tools/call when the operator lists them in allow_overrides.
var overridable = []string{"env", "data_label", "tenant_risk", "qos_class"}

// Overridable returns the request fields a client may set per call (in a
// tools/call's _meta) when the operator lists them in allow_overrides. The
// slice is the caller's copy.
func Overridable() []string { return slices.Clone(overridable) }

// Config is what the operator decides for MCP calls (mcp.json): the
// request fields of every dispatch and which of them a client may change
// per call.
type Config struct {
	// Tenant is the tenant of stdio sessions (`hall mcp`; --tenant and
	// HALL_TENANT take precedence). Over HTTP the bearer token names the
	// tenant and this is ignored.
	Tenant string `json:"tenant,omitempty"`
	// Env, DataLabel, TenantRisk and QoSClass are the RouteInput fields of
	// every call (defaults: dev, INTERNAL, low, P2, as `hall run`).
	Env        string `json:"env,omitempty"`
	DataLabel  string `json:"data_label,omitempty"`
	TenantRisk string `json:"tenant_risk,omitempty"`
	QoSClass   string `json:"qos_class,omitempty"`
	// AllowOverrides lists the fields of Overridable() a client may set per
	// call in the request's _meta; any other is refused.
	AllowOverrides []string `json:"allow_overrides,omitempty"`
	// ProgressMS is how often a call that runs longer sends
	// notifications/progress to a client that asked for it (default 1000).
	ProgressMS int `json:"progress_ms,omitempty"`
}

// DefaultConfig is the configuration without mcp.json.
func DefaultConfig() Config {
	return Config{Env: "dev", DataLabel: "INTERNAL", TenantRisk: "low", QoSClass: "P2", ProgressMS: 1000}
}

// LoadConfig reads dir/mcp.json over DefaultConfig (a missing file is the
// defaults). Unknown keys and values outside WCP's sets are errors naming
// the file and the field.
func LoadConfig(dir string) (Config, error) {
	path := filepath.Join(dir, ConfigFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return DefaultConfig(), nil
	}
	if err != nil {
		return Config{}, err
	}
	c, err := ParseConfig(data)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// ParseConfig decodes an mcp.json document over DefaultConfig and checks it.
func ParseConfig(data []byte) (Config, error) {
	c := DefaultConfig()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("not a valid MCP configuration: %w (known keys: tenant, env, data_label, tenant_risk, qos_class, allow_overrides, progress_ms)", err)
	}
	return c, c.Check()
}

// Check reports the first field of c that is not acceptable.
func (c Config) Check() error {
	for _, f := range []struct {
		name, v string
		set     []string
	}{{"env", c.Env, wcp.Envs()}, {"data_label", c.DataLabel, wcp.DataLabels()}, {"tenant_risk", c.TenantRisk, wcp.TenantRisks()}, {"qos_class", c.QoSClass, wcp.QoSClasses()}} {
		if !slices.Contains(f.set, f.v) {
			return fmt.Errorf("%s: %q is not one of %s", f.name, f.v, strings.Join(f.set, ", "))
		}
	}
	for i, o := range c.AllowOverrides {
		if !slices.Contains(overridable, o) {
			return fmt.Errorf("allow_overrides[%d]: %q cannot be overridden per call; the fields that can: %s", i, o, strings.Join(overridable, ", "))
		}
	}
	if c.ProgressMS < 0 {
		return fmt.Errorf("progress_ms: must be positive")
	}
	return nil
}

func (c Config) field(name string) string {
	switch name {
	case "env":
		return c.Env
	case "data_label":
		return c.DataLabel
	case "tenant_risk":
		return c.TenantRisk
	}
	return c.QoSClass
}

func (c Config) isZero() bool {
	return c.Tenant == "" && c.Env == "" && c.DataLabel == "" && c.TenantRisk == "" && c.QoSClass == "" && c.AllowOverrides == nil && c.ProgressMS == 0
}

// withDefaults fills the empty fields of c from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	for _, f := range []struct {
		dst *string
		def string
	}{{&c.Env, d.Env}, {&c.DataLabel, d.DataLabel}, {&c.TenantRisk, d.TenantRisk}, {&c.QoSClass, d.QoSClass}} {
		if *f.dst == "" {
			*f.dst = f.def
		}
	}
	if c.ProgressMS == 0 {
		c.ProgressMS = d.ProgressMS
	}
	return c
}
