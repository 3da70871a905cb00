package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The example runs for real: it builds the summarizer plugin, then enrolls
// and dispatches it through the embedded Hall.
func TestEmbeddingExample(t *testing.T) {
	dir := t.TempDir()
	wasm := filepath.Join(dir, "summarizer.wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", wasm, "../../plugins/summarizer")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the summarizer: %v\n%s", err, out)
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
