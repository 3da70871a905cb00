package host_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wcphall/hall/host"
)

// TestCORSOriginsInSnapshot: hall.json's http.cors_origins decides nothing,
// yet, like every hall.json member, it is part of the sealed snapshot: a
// change of the origins allowed is a recorded snapshot change.
func TestCORSOriginsInSnapshot(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	write := func(name, data string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("rules.json", rules)
	write("hall.json", `{}`)
	h, err := host.Open(ctx, host.Options{Dir: dir, Pool: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)
	h.Decide(ctx, input(t, "cap.test.tiny", "org.acme"))
	first := lastSealed(t, h)
	write("hall.json", `{"http": {"cors_origins": ["https://dash.example.com"]}}`)
	if err := h.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if got := h.Config().HTTP.CORSOrigins; len(got) != 1 || got[0] != "https://dash.example.com" {
		t.Fatalf("cors_origins in force: %v", got)
	}
	h.Decide(ctx, input(t, "cap.test.tiny", "org.acme"))
	last := lastSealed(t, h)
	if last.Sequence == first.Sequence || last.Manifest.Config == first.Manifest.Config ||
		!strings.Contains(string(last.Changed["config"]), `"cors_origins":["https://dash.example.com"]`) {
		t.Fatalf("the cors_origins change is not recorded: %s", last.Changed["config"])
	}
}

// TestCheckCORSOrigin: an origin is what a browser sends in Origin, or
// "*"; anything else is refused naming the fix, in hall.json too.
func TestCheckCORSOrigin(t *testing.T) {
	for _, ok := range []string{"*", "https://dash.example.com", "http://127.0.0.1:8080", "http://[::1]:3000"} {
		if err := host.CheckCORSOrigin(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "dash.example.com", "https://dash.example.com/", "https://dash.example.com/x", "ftp://x", "https://Dash.example.com", "https://u@x", "https://x?", "null"} {
		if err := host.CheckCORSOrigin(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	_, err := host.ParseConfig([]byte(`{"http": {"cors_origins": ["https://ok.example", "https://bad.example/"]}}`))
	if err == nil || !strings.Contains(err.Error(), "http.cors_origins[1]") {
		t.Errorf("hall.json with a bad origin: %v", err)
	}
}
