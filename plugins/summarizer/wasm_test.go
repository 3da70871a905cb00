//go:build !wasip1

package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/wcphall/hall/internal/wasmmod"
	"github.com/wcphall/hall/internal/wasmtest"
)

// wasm is this plugin built for wasip1, once per test binary.
var wasm []byte

func TestMain(m *testing.M) {
	wasm = wasmtest.MustBuild(".")
	os.Exit(m.Run())
}

func article(t *testing.T) string {
	b, err := os.ReadFile("testdata/article.txt")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestWasmPlainText(t *testing.T) {
	text := article(t)
	p := wasmtest.NewPlugin(t, wasm, nil, nil)
	for _, export := range []string{"summarize", "run"} {
		rc, out, err := p.Call(export, []byte(text))
		if err != nil || rc != 0 {
			t.Fatalf("%s: rc %d err %v", export, rc, err)
		}
		// The module must agree with the same code compiled for the host.
		if want := Summarize(text, Options{}).Text() + "\n"; string(out) != want {
			t.Errorf("%s: got %q\nwant %q", export, out, want)
		}
	}
}

func TestWasmJSON(t *testing.T) {
	text := article(t)
	p := wasmtest.NewPlugin(t, wasm, map[string]string{"summarizer.sentences": "5"}, nil)
	for _, tc := range []struct {
		name, input string
		want        int
	}{
		{"sentences", `{"text":` + quote(text) + `,"sentences":2}`, 2},
		{"ratio", `{"text":` + quote(text) + `,"ratio":0.5}`, 4},
		{"config-default", `{"text":` + quote(text) + `}`, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc, out, err := p.Call("summarize", []byte(tc.input))
			if err != nil || rc != 0 {
				t.Fatalf("rc %d err %v", rc, err)
			}
			var resp response
			if err := json.Unmarshal(out, &resp); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			if len(resp.Sentences) != tc.want || len(resp.Indices) != tc.want || resp.Total != 8 {
				t.Errorf("got %d sentences (%v) of %d", len(resp.Sentences), resp.Indices, resp.Total)
			}
			if resp.Summary != strings.Join(resp.Sentences, " ") {
				t.Errorf("summary %q does not join sentences", resp.Summary)
			}
		})
	}
}

func TestWasmConfigRatio(t *testing.T) {
	p := wasmtest.NewPlugin(t, wasm, map[string]string{"summarizer.ratio": "0.25"}, nil)
	rc, out, err := p.Call("summarize", []byte(article(t)))
	if err != nil || rc != 0 {
		t.Fatalf("rc %d err %v", rc, err)
	}
	if n := len(SplitSentences(string(out))); n != 2 {
		t.Errorf("ratio 0.25 of 8 sentences gave %d: %q", n, out)
	}
}

func TestWasmErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		config map[string]string
		input  string
		want   string
	}{
		{"bad-ratio", nil, `{"text":"A. B.","ratio":3}`, "summarizer: ratio must be in (0, 1], got 3"},
		{"bad-json-option", nil, `{"text":"A.","sentences":"x"}`, "summarizer: invalid JSON request"},
		{"bad-config", map[string]string{"summarizer.sentences": "many"}, "A. B.", "summarizer: config summarizer.sentences"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := wasmtest.NewPlugin(t, wasm, tc.config, nil)
			rc, _, err := p.Call("summarize", []byte(tc.input))
			if rc != 1 || err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("rc %d err %v, want prefix %q", rc, err, tc.want)
			}
		})
	}
}

// TestRegistryRecordMatchesModule validates registry_record.json with the
// Hall's own validator and checks its claims against the built module: each
// entrypoint is exported, and the envelope (no secrets, no egress) matches
// the absence of the hall_secret and hall_http imports.
func TestRegistryRecordMatchesModule(t *testing.T) {
	rec, info := wasmtest.CheckRecord(t, wasm, Capability)
	if rec.WorkerSpeciesID != "wrk.doc.summarizer" {
		t.Errorf("species %s", rec.WorkerSpeciesID)
	}
	if !info.HasExport("run", wasmmod.KindFunc) {
		t.Error("no run export")
	}
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
