package devenv

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// bareMachine returns a PATH holding only the named programs (symlinks to
// the ones on this machine's PATH): a fresh machine with Go and nothing
// else the test suite needs.
func bareMachine(t *testing.T, programs ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, p := range programs {
		src, err := exec.LookPath(p)
		if err != nil {
			t.Skipf("%s is not on this machine's PATH", p)
		}
		if err := os.Symlink(src, filepath.Join(dir, p)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func run(t *testing.T, path string, name string, args ...string) (stderr string, code int) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "PATH="+path, "HALL_PREFLIGHT_INSTALL=0")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("%s: %v", name, err)
	}
	return out.String(), code
}

// TestPreflightOnAFreshMachine: `make test` on a machine with only Go (and
// make and bash) stops at once with one message naming every missing
// package and the exact command that installs them — not, as before, with
// "make: staticcheck: No such file or directory" after the lint step.
func TestPreflightOnAFreshMachine(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the preflight names Debian packages")
	}
	makeBin, err := exec.LookPath("make")
	if err != nil {
		t.Skip("make is not on this machine")
	}
	path := bareMachine(t, "go", "bash")
	out, code := run(t, path, makeBin, "-s", "preflight")
	if code == 0 {
		t.Fatalf("preflight passed on a machine without wabt, node, chromium:\n%s", out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	want := "sudo apt-get install -y wabt nodejs npm chromium curl git docker-registry"
	if !havePostgres() { // found by its path, not PATH
		want += " postgresql"
	}
	if !strings.Contains(lines[0], want) {
		t.Fatalf("preflight's first line does not give the install command %q:\n%s", want, out)
	}
	if strings.Contains(out, "installing") {
		t.Fatalf("preflight installed with HALL_PREFLIGHT_INSTALL=0:\n%s", out)
	}
}

// TestPreflightWithoutGo names the toolchain rather than a package.
func TestPreflightWithoutGo(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the preflight is a bash script")
	}
	path := bareMachine(t, "bash")
	out, code := run(t, path, "/bin/bash", "scripts/preflight")
	if code == 0 || !strings.Contains(out, "install Go 1.26") {
		t.Fatalf("preflight without go: exit %d, want a message naming Go:\n%s", code, out)
	}
}

// TestStaticcheckNeedsNoInstall: make lint's staticcheck is pinned in
// go.mod and runs through `go tool` on a machine where nothing was
// installed with `go install` (no ~/go/bin on PATH).
func TestStaticcheckNeedsNoInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds staticcheck")
	}
	path := bareMachine(t, "go")
	goBin, _ := exec.LookPath("go")
	out, code := run(t, path, goBin, "tool", "staticcheck", "-version")
	if code != 0 || !strings.Contains(out, "staticcheck") {
		t.Fatalf("go tool staticcheck -version: exit %d\n%s", code, out)
	}
}

// havePostgres: Debian's server is on this machine (found by its path, as
// the preflight finds it, whatever PATH holds).
func havePostgres() bool {
	m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	return len(m) > 0
}
