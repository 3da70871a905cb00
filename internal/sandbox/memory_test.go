package sandbox

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

func TestCompiledFormMergesGoDataSegments(t *testing.T) {
	mem := &Engine{}
	compiledForm := mem.compiledForm
	orig := bytes.Clone(fixtures.goguest)
	got := compiledForm(fixtures.goguest)
	if !bytes.Equal(fixtures.goguest, orig) {
		t.Fatal("caller's module bytes modified")
	}
	if bytes.Equal(got, orig) {
		t.Fatal("the Go guest's data segments were not merged")
	}
	// Modules the merge does not rewrite are compiled exactly as given.
	for name, wasm := range map[string][]byte{"wat": fixtures.adversary, "rust": fixtures.countVowels, "truncated": orig[:len(orig)/2]} {
		if !bytes.Equal(compiledForm(wasm), wasm) {
			t.Errorf("%s: rewritten", name)
		}
	}
	// With an on-disk cache the merged form is kept and reused by a new
	// Engine; a corrupt cached file is ignored and rewritten.
	dir := t.TempDir()
	diskEngine := func() *Engine {
		return &Engine{forms: formCache{dir: dir, key: testCacheKey, log: slog.New(slog.DiscardHandler)}}
	}
	disk := diskEngine()
	first := disk.compiledForm(fixtures.goguest)
	if !bytes.Equal(first, got) {
		t.Fatal("cached merge differs from the in-memory merge")
	}
	files, _ := filepath.Glob(filepath.Join(dir, "merged-*.form"))
	if len(files) != 1 {
		t.Fatalf("merged form not cached: %v", files)
	}
	if again := diskEngine().compiledForm(fixtures.goguest); !bytes.Equal(again, got) {
		t.Fatal("a new engine did not reuse the cached merge")
	}
	if err := os.WriteFile(files[0], []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if again := diskEngine().compiledForm(fixtures.goguest); !bytes.Equal(again, got) {
		t.Fatal("a corrupt cached merge was used")
	}
	// Load still reports a broken module as MODULE_INVALID (wazero's verdict).
	e := newEngine(t, Config{})
	_, err := e.Load(context.Background(), orig[:len(orig)/2], Spec{Name: "truncated"})
	wantCode(t, err, CodeModuleInvalid)
}

// A fresh instance reserves the memory size its predecessor ended with, so a
// Go guest no longer grows by copying during _initialize.
func TestSizeHintsAvoidCopyingGrowth(t *testing.T) {
	e := newEngine(t, Config{})
	w := load(t, e, fixtures.goguest, Spec{Name: "hints", Pool: -1})
	run := func() *instance {
		t.Helper()
		in, err := w.acquire(context.Background(), "")
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := in.p.CallWithContext(context.Background(), "run", []byte("x")); err != nil {
			t.Fatal(err)
		}
		w.release(in, "", true)
		return in
	}
	// The instance made by Load had no hint: the Go runtime grows its
	// memory during _initialize, by copying.
	if first := run(); first.guard.copies.Load() == 0 {
		t.Fatal("first instance grew without copying: the test no longer exercises hints")
	}
	for i := range 3 {
		if in := run(); in.guard.copies.Load() != 0 {
			t.Fatalf("instance %d copied its memory %d times despite the hint", i+2, in.guard.copies.Load())
		}
	}
}

// The capacity reserved from a hint never changes what the guest may use:
// LIMIT_MEMORY is decided on size, and a hint at the limit still refuses to
// grow past it, while ordinary calls keep working.
func TestSizeHintsKeepMemoryLimitExact(t *testing.T) {
	const limit = 16 << 20
	e := newEngine(t, Config{})
	w := load(t, e, fixtures.goguest, Spec{Name: "limit", Pool: -1, Limits: Limits{MemoryBytes: limit}})
	// The unbounded allocation ends at the limit; its instance's final
	// size becomes the hint, so the next instances reserve the whole limit.
	_, err := w.Call(context.Background(), Request{Export: "alloc_forever"})
	wantCode(t, err, CodeLimitMemory)
	call(t, w, Request{Export: "run"})
	_, err = w.Call(context.Background(), Request{Export: "alloc_forever"})
	wantCode(t, err, CodeLimitMemory)
	w.sizes.m.Range(func(k, v any) bool {
		w.sizes.set(k.(uint64), limit) // as if an instance had ended at the limit
		return true
	})
	res := call(t, w, Request{Export: "run", Input: []byte("again")})
	if string(res.Output) != "hello again" {
		t.Fatalf("output %q", res.Output)
	}
	_, err = w.Call(context.Background(), Request{Export: "alloc_forever"})
	wantCode(t, err, CodeLimitMemory)

	g := &memoryGuard{limit: limit, sizes: &sizeHints{}}
	g.sizes.set(wasmPageSize, 1<<40)
	m := g.Allocate(wasmPageSize, 1<<32).(*linearMemory)
	if m.initialCap != limit {
		t.Fatalf("capacity %d from a hint beyond the limit, want %d", m.initialCap, limit)
	}
	if b := m.Reallocate(limit); len(b) != limit || g.hit.Load() {
		t.Fatalf("growing to the limit: len %d, hit %v", len(b), g.hit.Load())
	}
	if b := m.Reallocate(limit + wasmPageSize); b != nil || !g.hit.Load() {
		t.Fatal("growing past the limit was not refused and recorded")
	}
}
