package sandbox

import (
	"strings"
	"testing"
)

func TestEnvSecretVarIsWhatEnvSecretsReads(t *testing.T) {
	const name = "db-pass.2"
	if v := EnvSecretVar(name); v != "HALL_SECRET_DB_PASS_2" {
		t.Fatalf("EnvSecretVar(%q) = %q", name, v)
	}
	t.Setenv(EnvSecretVar(name), "pw")
	if v, ok := (EnvSecrets{}).Secret(name); !ok || v != "pw" {
		t.Fatalf("EnvSecrets does not read %s: %q %v", EnvSecretVar(name), v, ok)
	}
	if h := missingSecretHint(EnvSecrets{}, name); !strings.Contains(h, "HALL_SECRET_DB_PASS_2") {
		t.Errorf("hint %q does not name the variable", h)
	}
}
