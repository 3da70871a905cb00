package sandbox

import (
	"os"
	"path/filepath"
	"testing"
)

// mountEntries lists what a guest left in a mounted directory.
func mountEntries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// Guest code outside a call gets no grant (issue 21): a module whose start
// section writes into its writable mount writes nothing when it is loaded
// (the instantiation that proves it loads) and is never pre-instantiated
// with its grant, so the pool holds none of its instances; the write
// happens in a call, and only there. A reactor's _initialize is run by
// Extism at the first call of an instance, so it is inside a call too.
func TestStartSectionGetsNoGrantOutsideACall(t *testing.T) {
	for _, tc := range []struct {
		name   string
		module func() []byte
	}{
		{"start section", func() []byte { return fixtures.startwrite }},
		{"reactor _initialize", func() []byte { return fixtures.initwrite }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEngine(t, Config{})
			dir := t.TempDir()
			w := load(t, e, tc.module(), Spec{Name: "startwrite", Pool: 2, Policy: Policy{Writes: []string{dir}}})
			if got := mountEntries(t, dir); len(got) != 0 {
				t.Fatalf("after Load, before any call, the mount holds %v: guest code ran with its grant before a decision", got)
			}
			if fresh, _ := w.Pooled(); tc.name == "start section" && fresh != 0 {
				t.Fatalf("%d instances pre-instantiated with the grant: their start sections ran with it outside a call", fresh)
			}
			call(t, w, Request{Export: "run"})
			b, err := os.ReadFile(filepath.Join(dir, "started.txt"))
			if err != nil || string(b) != "ran" {
				t.Fatalf("after a call: started.txt = %q, %v; want the call's instance to have run with its grant", b, err)
			}
			if err := os.Remove(filepath.Join(dir, "started.txt")); err != nil {
				t.Fatal(err)
			}
			if fresh, _ := w.Pooled(); tc.name == "start section" && fresh != 0 {
				t.Fatalf("after a call, %d instances were pre-instantiated with the grant", fresh)
			}
			call(t, w, Request{Export: "run"})
			if _, err := os.Stat(filepath.Join(dir, "started.txt")); err != nil {
				t.Fatalf("the second call's instance did not run its start code with the grant: %v", err)
			}
		})
	}
}

// A start section without any grant is still pre-instantiated: it cannot
// reach anything outside its instance, so running it ahead costs nothing
// in evidence and keeps it off the call path.
func TestStartSectionWithoutGrantIsPreInstantiated(t *testing.T) {
	e := newEngine(t, Config{})
	w := load(t, e, fixtures.startwrite, Spec{Name: "startwrite-nogrant", Pool: 2})
	if fresh, _ := w.Pooled(); fresh == 0 {
		t.Fatal("the instance Load made was not kept for the first call")
	}
	call(t, w, Request{Export: "run"})
}

// BenchmarkCallStartSection measures what a start-section module with a
// grant pays for not being pre-instantiated: each call instantiates it on
// the call path ("grant") against a call served from the refilled pool
// ("no-grant"). The module is tiny (one page of memory), so this is
// mostly wazero's and Extism's per-instance cost.
func BenchmarkCallStartSection(b *testing.B) {
	for _, bc := range []struct {
		name   string
		policy func(dir string) Policy
	}{
		{"no-grant", func(string) Policy { return Policy{} }},
		{"grant", func(dir string) Policy { return Policy{Writes: []string{dir}} }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			e := newEngine(b, Config{})
			w := load(b, e, fixtures.startwrite, Spec{Name: "startwrite", Policy: bc.policy(b.TempDir())})
			b.ReportAllocs()
			for b.Loop() {
				call(b, w, Request{Export: "run"})
			}
		})
	}
}
