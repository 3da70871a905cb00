package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestBuildReproducibleScaffoldTravels is the newcomer's report (issue 27):
// the same scaffold built in two folders gave two digests, and its go.mod
// named the clone that built hall. A scaffold is made, copied to another
// folder (the original removed, as when it is shared), and built in both
// places under two users' GOPATHs and build caches: the modules must be
// the same bytes, and go.mod must name no absolute path.
func TestBuildReproducibleScaffoldTravels(t *testing.T) {
	work := t.TempDir()
	if r := hallWith(t, work, "", nil, "new", "wordcount"); r.code != 0 {
		t.Fatalf("new: exit %d: %s", r.code, r.stderr)
	}
	src := filepath.Join(work, "wordcount")
	mod, err := os.ReadFile(filepath.Join(src, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if abs := regexp.MustCompile(`=>\s*(/|[A-Za-z]:\\)`).FindString(string(mod)); abs != "" {
		t.Errorf("the scaffold's go.mod replaces the SDK with an absolute path (%q): it cannot be shared\n%s", abs, mod)
	}

	// A copy two folders deeper, elsewhere; the first one built from a
	// second user's empty GOPATH and build cache.
	moved := filepath.Join(t.TempDir(), "team", "shared", "wordcount")
	if err := os.MkdirAll(filepath.Dir(moved), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-r", src, moved).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	user2 := t.TempDir()
	out1 := filepath.Join(t.TempDir(), "a.wasm")
	r := hallWith(t, work, "", []string{"GOPATH=" + filepath.Join(user2, "go"), "GOCACHE=" + filepath.Join(user2, "cache")},
		"build", src, "--no-input", "--no-store", "-o", out1)
	if r.code != 0 {
		t.Fatalf("build in %s: exit %d: %s", src, r.code, r.stderr)
	}
	if err := os.RemoveAll(src); err != nil {
		t.Fatal(err)
	}
	out2 := filepath.Join(t.TempDir(), "b.wasm")
	r = hallWith(t, filepath.Dir(moved), "", []string{"HALL_PROGRESS_AFTER=0"}, "build", moved, "--no-input", "--no-store", "-o", out2)
	if r.code != 0 {
		t.Fatalf("build of the moved scaffold (original removed): exit %d: %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, "toolchain: go1.") {
		t.Errorf("hall build does not name the Go release the digest depends on:\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr, "hall: building "+moved) || !strings.Contains(r.stderr, "done in") {
		t.Errorf("hall build announces no progress on standard error:\n%s", r.stderr)
	}
	if a, b := digestOf(t, out1), digestOf(t, out2); a != b {
		t.Errorf("the same scaffold built in two folders gave two digests: %s and %s", a, b)
	}
	// Nothing of either folder or GOPATH is in the module.
	for _, p := range []string{work, user2, filepath.Dir(moved)} {
		for _, f := range []string{out1, out2} {
			b, _ := os.ReadFile(f)
			if strings.Contains(string(b), p) {
				t.Errorf("%s embeds the path %s", filepath.Base(f), p)
			}
		}
	}
}
