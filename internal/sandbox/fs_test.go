package sandbox

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fsTree is a host layout for filesystem tests: w is mounted read-write, r
// read-only, out is never mounted and holds the secret the guest must not
// reach. w also holds symlinks planted by the host that point outside.
type fsTree struct{ w, r, out string }

func newFSTree(t *testing.T) fsTree {
	t.Helper()
	base := t.TempDir()
	tr := fsTree{filepath.Join(base, "w"), filepath.Join(base, "r"), filepath.Join(base, "out")}
	for _, d := range []string{tr.w, tr.r, tr.out, filepath.Join(tr.w, "sub")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(tr.out, "secret.txt"), []byte("TOP SECRET"), 0o644))
	must(os.WriteFile(filepath.Join(tr.r, "data.txt"), []byte("readable"), 0o644))
	must(os.WriteFile(filepath.Join(tr.w, "sub", "inner.txt"), []byte("inner"), 0o644))
	must(os.Symlink("../out/secret.txt", filepath.Join(tr.w, "rel")))
	must(os.Symlink(filepath.Join(tr.out, "secret.txt"), filepath.Join(tr.w, "abs")))
	must(os.Symlink("/etc/passwd", filepath.Join(tr.w, "passwd")))
	must(os.Symlink(tr.out, filepath.Join(tr.w, "dirlink")))
	must(os.Symlink("sub/inner.txt", filepath.Join(tr.w, "inlink")))
	return tr
}

func fsCall(t *testing.T, w *Worker, op fsOp) string {
	t.Helper()
	in, _ := json.Marshal(op)
	return string(call(t, w, Request{Export: "fsop", Input: in}).Output)
}

type fsOp struct{ Op, Path, Data, Target string }

func TestFilesystem(t *testing.T) {
	tr := newFSTree(t)
	e := newEngine(t, Config{})
	w := load(t, e, fixtures.goguest, Spec{Name: "fs", Policy: Policy{Writes: []string{tr.w}, Reads: []string{tr.r}}})
	read := func(p string) string {
		return string(call(t, w, Request{Export: "readfile", Input: []byte(p)}).Output)
	}

	allowed := []struct{ name, got, want string }{
		{"read in read-only mount", read(tr.r + "/data.txt"), "readable"},
		{"write in writable mount", fsCall(t, w, fsOp{Op: "write", Path: tr.w + "/new.txt", Data: "hi"}), "OK"},
		{"append", fsCall(t, w, fsOp{Op: "append", Path: tr.w + "/new.txt", Data: "!"}), "OK"},
		{"read back", read(tr.w + "/new.txt"), "hi!"},
		{"symlink inside the tree", read(tr.w + "/inlink"), "inner"},
		{"dotdot inside the tree", read(tr.w + "/sub/../sub/inner.txt"), "inner"},
		{"mkdir", fsCall(t, w, fsOp{Op: "mkdir", Path: tr.w + "/d"}), "OK"},
		{"rename inside", fsCall(t, w, fsOp{Op: "rename", Path: tr.w + "/new.txt", Target: tr.w + "/d/moved.txt"}), "OK"},
		{"list", fsCall(t, w, fsOp{Op: "list", Path: tr.w + "/d"}), "moved.txt"},
		{"remove", fsCall(t, w, fsOp{Op: "remove", Path: tr.w + "/d/moved.txt"}), "OK"},
	}
	for _, c := range allowed {
		if c.got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, c.got, c.want)
		}
	}

	refused := []struct{ name, got string }{
		{"read /etc/passwd", read("/etc/passwd")},
		{"read outside dir", read(tr.out + "/secret.txt")},
		{"relative symlink planted by host", read(tr.w + "/rel")},
		{"absolute symlink planted by host", read(tr.w + "/abs")},
		{"symlink to /etc/passwd", read(tr.w + "/passwd")},
		{"directory symlink read", read(tr.w + "/dirlink/secret.txt")},
		{"directory symlink write", fsCall(t, w, fsOp{Op: "write", Path: tr.w + "/dirlink/planted.txt", Data: "x"})},
		{"dotdot out of the mount", read(tr.w + "/../out/secret.txt")},
		{"write outside", fsCall(t, w, fsOp{Op: "write", Path: tr.out + "/planted.txt", Data: "x"})},
		{"write /tmp", fsCall(t, w, fsOp{Op: "write", Path: "/tmp/hall-sandbox-planted.txt", Data: "x"})},
		{"write into read-only mount", fsCall(t, w, fsOp{Op: "write", Path: tr.r + "/x.txt", Data: "x"})},
		{"remove in read-only mount", fsCall(t, w, fsOp{Op: "remove", Path: tr.r + "/data.txt"})},
		{"create relative symlink", fsCall(t, w, fsOp{Op: "symlink", Path: tr.w + "/evil", Target: "../../../../etc/hostname"})},
		{"create directory symlink", fsCall(t, w, fsOp{Op: "symlink", Path: tr.w + "/evildir", Target: tr.out})},
		{"rename out of the mount", fsCall(t, w, fsOp{Op: "rename", Path: tr.w + "/sub/inner.txt", Target: tr.out + "/stolen.txt"})},
	}
	for _, c := range refused {
		t.Logf("%s: %s", c.name, c.got)
		if !strings.HasPrefix(c.got, "ERR: ") {
			t.Errorf("%s: not refused, got %q", c.name, c.got)
		}
	}
	assertUntouched(t, tr)
	for _, p := range []string{tr.w + "/evil", tr.w + "/evildir"} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("guest created %s", p)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(tr.r, "data.txt")); string(b) != "readable" {
		t.Errorf("read-only file changed: %q", b)
	}
	if _, err := os.Stat("/tmp/hall-sandbox-planted.txt"); err == nil {
		t.Error("guest wrote /tmp")
	}
}

// TestFilesystemRawWASI bypasses Go's path cleaning: the WAT guest hands
// wazero "../" paths and symlink requests relative to the preopen directly.
func TestFilesystemRawWASI(t *testing.T) {
	tr := newFSTree(t)
	e := newEngine(t, Config{})
	w := load(t, e, fixtures.fsescape, Spec{Name: "fsescape", Policy: Policy{Writes: []string{tr.w}}})
	for _, export := range []string{"dotdot_create", "dotdot_nested", "through_dirlink", "symlink_out"} {
		t.Run(export, func(t *testing.T) {
			// The export returns the WASI errno: non-zero (WORKER_FAILED)
			// means refused.
			_, err := w.Call(context.Background(), Request{Export: export})
			wantCode(t, err, CodeWorkerFailed)
		})
	}
	assertUntouched(t, tr)
	parent := filepath.Dir(tr.w)
	for _, p := range []string{filepath.Join(parent, "escape.txt"), filepath.Join(parent, "escape2.txt"), filepath.Join(tr.w, "evil")} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("guest created %s", p)
		}
	}
}

func TestNoFilesystemWithoutPolicy(t *testing.T) {
	e := newEngine(t, Config{})
	w := load(t, e, fixtures.goguest, Spec{Name: "nofs"})
	for _, p := range []string{"/etc/passwd", "/", "."} {
		out := string(call(t, w, Request{Export: "readfile", Input: []byte(p)}).Output)
		if !strings.HasPrefix(out, "ERR: ") {
			t.Errorf("read %s: %q", p, out)
		}
	}
}

func TestPolicyValidation(t *testing.T) {
	e := newEngine(t, Config{})
	dir := t.TempDir()
	for _, p := range []Policy{
		{Writes: []string{"relative/dir"}},
		{Reads: []string{dir + "/../x"}},
		{Writes: []string{dir + "/missing"}},
		{Egress: []string{"*.example.com"}},
		{Egress: []string{"http://example.com"}},
		{Egress: []string{"example.com:99999"}},
	} {
		if w, err := e.Load(context.Background(), fixtures.adversary, Spec{Name: "bad", Policy: p}); err == nil {
			w.Close(context.Background())
			t.Errorf("accepted %+v", p)
		}
	}
}

func assertUntouched(t *testing.T, tr fsTree) {
	t.Helper()
	ents, err := os.ReadDir(tr.out)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != "secret.txt" {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("outside dir changed: %v", names)
	}
	if b, _ := os.ReadFile(filepath.Join(tr.out, "secret.txt")); string(b) != "TOP SECRET" {
		t.Errorf("secret changed: %q", b)
	}
}
