package host_test

import (
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// publicPackages are the only importable packages of the module outside
// internal/ (issue 21, "a small public API"): the embeddable Hall, the wire
// types, the guest SDK and the HTTP and MCP handlers. Everything that can
// run guest code or sign evidence without a decision lives under internal/,
// so that an embedder reaches it only through host.
var publicPackages = []string{
	"github.com/wcphall/hall/host",
	"github.com/wcphall/hall/host/mcp",
	"github.com/wcphall/hall/host/server",
	"github.com/wcphall/hall/host/wcp",
	"github.com/wcphall/hall/sdk",
}

type listedPackage struct {
	ImportPath string
	Name       string
}

func listModule(t *testing.T) []listedPackage {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", "github.com/wcphall/hall/...")
	cmd.Env = append(cmd.Environ(), "GOOS=linux", "GOARCH=amd64")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p listedPackage
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// TestPublicPackages fails when a library package is importable from
// outside the module without being one of publicPackages.
func TestPublicPackages(t *testing.T) {
	var public []string
	for _, p := range listModule(t) {
		if p.Name == "main" || strings.Contains(p.ImportPath, "/internal/") || strings.HasSuffix(p.ImportPath, "/internal") {
			continue
		}
		public = append(public, p.ImportPath)
	}
	slices.Sort(public)
	if !slices.Equal(public, publicPackages) {
		t.Errorf("importable packages outside internal/:\n got %q\nwant %q\n(a new engine belongs under internal/; a new public package needs a reason in the issue that adds it)", public, publicPackages)
	}
}
