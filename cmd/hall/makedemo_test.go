package main

import (
	"os"
	"os/exec"
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
	for _, want := range []string{"$ hall run cap.doc.summarize", "$ hall audit verify", "verified"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("make demo output lacks %q:\n%s", want, out)
		}
	}
}
