//go:build !wasip1

package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/wcphall/hall/internal/wasmtest"
)

var wasm []byte

func TestMain(m *testing.M) {
	wasm = wasmtest.MustBuild(".")
	os.Exit(m.Run())
}

const sample = "Contact jane@example.com or +1 415-555-2671; card 4111 1111 1111 1111; host 10.1.2.3."

func TestWasmPlainText(t *testing.T) {
	h := &wasmtest.Hall{}
	p := wasmtest.NewPlugin(t, wasm, map[string]string{"wcp.correlation_id": "corr-7"}, h)
	for _, export := range []string{"redact", "run"} {
		rc, out, err := p.Call(export, []byte(sample))
		if err != nil || rc != 0 {
			t.Fatalf("%s: rc %d err %v", export, rc, err)
		}
		want, _ := Redact(sample, Options{})
		if string(out) != want {
			t.Errorf("%s: got %q, want %q", export, out, want)
		}
		if strings.Contains(string(out), "jane@") || strings.Contains(string(out), "4111") {
			t.Errorf("%s: PII left in %q", export, out)
		}
	}
	events := h.Events()
	if len(events) != 2 {
		t.Fatalf("events %v, want one per call", events)
	}
	ev := events[0]
	b, _ := json.Marshal(ev)
	if ev["event_id"] != "evt.doc.redacted" || ev["correlation_id"] != "corr-7" || ev["total"] != 4.0 {
		t.Errorf("event %s", b)
	}
	if strings.Contains(string(b), "jane") || strings.Contains(string(b), "4111") {
		t.Errorf("event leaks redacted data: %s", b)
	}
}

func TestWasmJSONAndConfig(t *testing.T) {
	p := wasmtest.NewPlugin(t, wasm, map[string]string{"redactor.kinds": "email, ipv4", "redactor.mask": "stars"}, nil)

	rc, out, err := p.Call("redact", []byte(sample))
	if err != nil || rc != 0 {
		t.Fatalf("rc %d err %v", rc, err)
	}
	want := "Contact **************** or +1 415-555-2671; card 4111 1111 1111 1111; host ********."
	if string(out) != want {
		t.Errorf("config kinds+mask: got %q\nwant %q", out, want)
	}

	in, _ := json.Marshal(map[string]any{"text": sample, "kinds": []string{"card", "phone"}, "mask": "label"})
	rc, out, err = p.Call("redact", in)
	if err != nil || rc != 0 {
		t.Fatalf("rc %d err %v", rc, err)
	}
	var resp response
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if resp.Text != "Contact jane@example.com or [PHONE]; card [CARD]; host 10.1.2.3." {
		t.Errorf("JSON text %q", resp.Text)
	}
	if resp.Counts["card"] != 1 || resp.Counts["phone"] != 1 || len(resp.Counts) != 2 {
		t.Errorf("counts %v", resp.Counts)
	}
}

func TestWasmBadOptions(t *testing.T) {
	p := wasmtest.NewPlugin(t, wasm, nil, nil)
	rc, _, err := p.Call("redact", []byte(`{"text":"x","kinds":["passport"]}`))
	if rc != 1 || err == nil || !strings.HasPrefix(err.Error(), `redactor: unknown kind "passport"`) {
		t.Errorf("rc %d err %v", rc, err)
	}
}

func TestRegistryRecordMatchesModule(t *testing.T) {
	_, info := wasmtest.CheckRecord(t, wasm, Capability)
	if !info.HasImport("extism:host/user", "hall_emit") {
		t.Error("redactor should import hall_emit for its evt.doc.redacted events")
	}
}
