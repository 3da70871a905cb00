package sandbox

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// testCacheKey authenticates the form cache of the tests' Engines.
var testCacheKey = bytes.Repeat([]byte{0x5a}, 32)

// sayModule is an Extism-ABI module whose export "run" outputs text.
func sayModule(tb testing.TB, text string) []byte {
	tb.Helper()
	return compileWAT(tb, fmt.Sprintf(`(module
	  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
	  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
	  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
	  (memory (export "memory") 1)
	  (data (i32.const 0) %q)
	  (func (export "run") (result i32)
	    (local $offs i64) (local $i i32)
	    (local.set $offs (call $alloc (i64.const %d)))
	    (block $done (loop $next
	      (br_if $done (i32.ge_u (local.get $i) (i32.const %d)))
	      (call $store_u8 (i64.add (local.get $offs) (i64.extend_i32_u (local.get $i))) (i32.load8_u (local.get $i)))
	      (local.set $i (i32.add (local.get $i) (i32.const 1)))
	      (br $next)))
	    (call $output_set (local.get $offs) (i64.const %d))
	    (i32.const 0)))`, text, len(text), len(text), len(text)))
}

// TestFormCacheTamperedEntryIsRebuilt: the derived forms (guarded, merged)
// a fresh Engine finds in its form cache are what it compiles in place of
// the module given to Load. An entry replaced by another module — raw, or
// with a tag made under another key, or the authenticated entry of
// another module moved under this one's name — is discarded, logged as
// altered, and the form rebuilt from the module Load was given: the right
// module runs.
func TestFormCacheTamperedEntryIsRebuilt(t *testing.T) {
	good, evil := sayModule(t, "GOOD"), sayModule(t, "PWNED")
	for _, tc := range []struct {
		name   string
		forged func(t *testing.T, dir, name string) []byte
	}{
		{"raw module", func(t *testing.T, dir, name string) []byte { return evil }},
		{"tag under another key", func(t *testing.T, dir, name string) []byte {
			c := formCache{key: bytes.Repeat([]byte{1}, 32)}
			return append(c.tag(name, evil), evil...)
		}},
		{"another module's entry", func(t *testing.T, dir, name string) []byte {
			// The attacker has the Hall cache the other module (say by
			// enrolling it), then moves its entry.
			other := t.TempDir()
			e := newEngine(t, Config{FormCacheDir: other, CacheKey: testCacheKey})
			load(t, e, evil, Spec{Name: "evil"})
			m, _ := filepath.Glob(filepath.Join(other, "guarded-*.form"))
			if len(m) != 1 {
				t.Fatalf("guarded forms of the other module: %v", m)
			}
			b, err := os.ReadFile(m[0])
			if err != nil {
				t.Fatal(err)
			}
			return b
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			e := newEngine(t, Config{FormCacheDir: dir, CacheKey: testCacheKey})
			load(t, e, good, Spec{Name: "good"})
			m, _ := filepath.Glob(filepath.Join(dir, "guarded-*.form"))
			if len(m) != 1 {
				t.Fatalf("guarded forms in the cache: %v", m)
			}
			if err := os.WriteFile(m[0], tc.forged(t, dir, filepath.Base(m[0])), 0o600); err != nil {
				t.Fatal(err)
			}

			var logs bytes.Buffer
			e2 := newEngine(t, Config{FormCacheDir: dir, CacheKey: testCacheKey,
				Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			w := load(t, e2, good, Spec{Name: "good"})
			if res := call(t, w, Request{Export: "run"}); string(res.Output) != "GOOD" {
				t.Fatalf("ran %q from a tampered cache entry, want GOOD", res.Output)
			}
			if !strings.Contains(logs.String(), "compiled-form cache entry altered") {
				t.Fatalf("the altered entry was not logged: %s", logs.String())
			}
			// Rebuilt: the entry verifies again, and a third Engine uses
			// it without complaint.
			logs.Reset()
			e3 := newEngine(t, Config{FormCacheDir: dir, CacheKey: testCacheKey,
				Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			w = load(t, e3, good, Spec{Name: "good"})
			if res := call(t, w, Request{Export: "run"}); string(res.Output) != "GOOD" {
				t.Fatalf("output %q", res.Output)
			}
			if logs.Len() != 0 {
				t.Fatalf("rebuilt entry reported: %s", logs.String())
			}
		})
	}
}

// TestFormCacheNeedsKey: without Config.CacheKey no derived form is read
// from or written to disk, so a planted entry is never used.
func TestFormCacheNeedsKey(t *testing.T) {
	dir := t.TempDir()
	good, evil := sayModule(t, "GOOD"), sayModule(t, "PWNED")
	e := newEngine(t, Config{FormCacheDir: dir, CacheKey: testCacheKey})
	load(t, e, good, Spec{Name: "good"})
	m, _ := filepath.Glob(filepath.Join(dir, "*.form"))
	if len(m) == 0 {
		t.Fatal("no form cached with a key")
	}
	for _, p := range m {
		c := formCache{key: testCacheKey}
		name := filepath.Base(p)
		if err := os.WriteFile(p, append(c.tag(name, evil), evil...), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	keyless := t.TempDir()
	e2, err := New(t.Context(), Config{FormCacheDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close(t.Context())
	w := load(t, e2, good, Spec{Name: "good"})
	if res := call(t, w, Request{Export: "run"}); string(res.Output) != "GOOD" {
		t.Fatalf("a keyless Engine ran %q from the disk cache", res.Output)
	}
	e3, err := New(t.Context(), Config{FormCacheDir: keyless})
	if err != nil {
		t.Fatal(err)
	}
	defer e3.Close(t.Context())
	load(t, e3, good, Spec{Name: "good"})
	if m, _ := filepath.Glob(filepath.Join(keyless, "*")); len(m) != 0 {
		t.Fatalf("a keyless Engine wrote %v", m)
	}
}

// TestFormCacheShortKey: a key shorter than 32 bytes is refused.
func TestFormCacheShortKey(t *testing.T) {
	if _, err := New(t.Context(), Config{FormCacheDir: t.TempDir(), CacheKey: []byte("short")}); err == nil || !strings.Contains(err.Error(), "CacheKey") {
		t.Fatalf("err %v, want one naming Config.CacheKey", err)
	}
}

// TestFormCacheHitSameWorker: a Worker loaded from a cached guarded form
// (which skips the merged form and the table rewrite) is charged and
// exports exactly what one built from the module is.
func TestFormCacheHitSameWorker(t *testing.T) {
	for name, wasm := range map[string][]byte{"go": fixtures.goguest, "rust": fixtures.countVowels,
		"tablegrow": fixtures.tablegrow, "adversary": fixtures.adversary} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			cold := load(t, newEngine(t, Config{FormCacheDir: dir}), wasm, Spec{Name: name, Pool: -1})
			if m, _ := filepath.Glob(filepath.Join(dir, "guarded-*.form")); len(m) != 1 {
				t.Fatalf("guarded forms: %v", m)
			}
			warm := load(t, newEngine(t, Config{FormCacheDir: dir}), wasm, Spec{Name: name, Pool: -1})
			if cold.charge != warm.charge || !slices.Equal(cold.names, warm.names) || cold.hasStart != warm.hasStart {
				t.Fatalf("from the module: charge %d, exports %v, start %v; from the cache: %d, %v, %v",
					cold.charge, cold.names, cold.hasStart, warm.charge, warm.names, warm.hasStart)
			}
		})
	}
}
