package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMakeDemo runs the README's first command, `make demo`, in this
// checkout: it builds hall and the summarizer, enrolls it, routes, runs it
// and verifies the evidence, on the embedded defaults.
func TestMakeDemo(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("make is not installed")
		}
		t.Skip("make is not installed")
	}
	cmd := exec.Command("make", "demo")
	cmd.Dir = "../.."
	cmd.Env = testEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make demo: %v\n%s", err, out)
	}
	for _, want := range []string{"$ hall run cap.doc.summarize", "$ hall audit verify", "verified",
		// The research pipeline: six receipts under one correlation id,
		// linked as a tree, verified.
		"$ hall run cap.research.ingest", "6 receipt(s)", "(chain: 5 hops", "└─ ", "verified 6 receipt(s)"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("make demo output lacks %q:\n%s", want, out)
		}
	}
	// The independent Node verifier checks the research chain's bundle.
	if script := nodeVerifierScript(t); script != "" {
		bundle := filepath.Join(t.TempDir(), "bundle")
		demo, err := filepath.Abs("../../bin/demo/research")
		if err != nil {
			t.Fatal(err)
		}
		r := hallIn(t, demo, "", nil, "audit", "export", "--bundle", bundle)
		mustOK(t, r, "audit export --bundle")
		if out, err := exec.Command("node", script, bundle).CombinedOutput(); err != nil || !strings.Contains(string(out), "6 receipts") {
			t.Fatalf("node verifier: %v\n%s", err, out)
		}
	}
}
