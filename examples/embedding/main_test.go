package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wcphall/hall/internal/wasmtest"
)

// The example runs for real: it builds the summarizer plugin, then enrolls
// and dispatches it through the embedded Hall.
func TestEmbeddingExample(t *testing.T) {
	dir := t.TempDir()
	wasm := filepath.Join(dir, "summarizer.wasm")
	if err := wasmtest.BuildTo("../../plugins/summarizer", wasm); err != nil {
		t.Fatal(err)
	}
	rules, err := os.ReadFile("../quickstart/rules.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rules.json"), rules, 0o644); err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../quickstart/document.txt")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err = run(bytes.NewReader(doc), &out, []string{"-dir", dir, "-module", wasm, "-record", "../../plugins/summarizer/registry_record.json"})
	if err != nil {
		t.Fatal(err)
	}
	summary := strings.TrimSpace(out.String())
	if summary == "" || len(summary) >= len(doc) {
		t.Fatalf("summary: %q", summary)
	}
	if _, err := os.Stat(filepath.Join(dir, "enrolled", "org.acme.summarizer.json")); err != nil {
		t.Fatalf("record not written: %v", err)
	}
	// A second process-less run against the same directory finds the
	// enrolled worker without enrolling again.
	out.Reset()
	if err := run(strings.NewReader("One sentence. Another sentence here. A third."), &out, []string{"-dir", dir}); err != nil {
		t.Fatal(err)
	}
	if out.Len() == 0 {
		t.Fatal("no output from the already enrolled worker")
	}
}
