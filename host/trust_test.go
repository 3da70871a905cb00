package host_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/ocitest"
	"github.com/wcphall/hall/internal/trust"
)

// signedHall is a Hall directory under an enforce trust policy for
// org.acme.* whose key the real cosign generated, with the summarizer
// signed by cosign sign-blob --bundle.
func signedHall(t *testing.T) (dir string, bundle []byte) {
	t.Helper()
	dir = t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rules.json"), []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := ocitest.RunCosign(t, dir, "generate-key-pair"); err != nil {
		t.Fatal(err, out)
	}
	if err := os.WriteFile(filepath.Join(dir, "summarizer.wasm"), mods.summarizer, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := ocitest.RunCosign(t, dir, "sign-blob", "--key", "cosign.key", "--bundle", "summarizer.wasm.sigstore.json",
		"--use-signing-config=false", "--tlog-upload=false", "summarizer.wasm"); err != nil {
		t.Fatal(err, out)
	}
	bundle, err := os.ReadFile(filepath.Join(dir, "summarizer.wasm.sigstore.json"))
	if err != nil {
		t.Fatal(err)
	}
	writeTrust(t, dir, `{"namespaces": {"org.acme.*": {"level": "enforce", "keys": ["cosign.pub"]}}}`)
	return dir, bundle
}

func writeTrust(t *testing.T, dir, doc string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "trust.json"), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestTrustPolicySealedAndKeyRemovalDenies: trust.json is part of the
// sealed snapshot; a worker signed by cosign sign-blob --bundle enrolls
// under enforce, an unsigned one does not; once its key is removed from
// the policy (a recorded change), its next decision is
// DENY_WORKER_UNTRUSTED.
func TestTrustPolicySealedAndKeyRemovalDenies(t *testing.T) {
	ctx := context.Background()
	dir, bundle := signedHall(t)
	h, err := host.Open(ctx, host.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)
	summ, _ := os.ReadFile("../plugins/summarizer/registry_record.json")
	signed := &host.Signed{Source: "summarizer.wasm", Signatures: []trust.Signature{{Format: trust.FormatBundle, Bundle: bundle, Source: "summarizer.wasm.sigstore.json"}}}
	res, err := h.Enroll(ctx, host.EnrollRequest{Module: mods.summarizer, Record: summ, Signed: signed})
	if err != nil {
		t.Fatal(err)
	}
	if p := res.Provenance; p == nil || !p.Trust.Verified || p.Trust.Signer == nil || !strings.HasPrefix(p.Trust.Signer.KeyID, "sha256:") || p.Subject != res.ArtifactHash.String() {
		t.Fatalf("provenance: %+v", res.Provenance)
	}
	_, err = h.Enroll(ctx, host.EnrollRequest{Module: mods.tiny, Record: record("org.acme.tiny", "wrk.test.tiny", "cap.test.tiny", "")})
	var te *host.TrustError
	if !errors.As(err, &te) || !strings.Contains(err.Error(), "unsigned") {
		t.Fatalf("unsigned org.acme.tiny: %v, want TRUST_REFUSED", err)
	}
	// A valid signature of other bytes does not cover this module.
	if _, err = h.Enroll(ctx, host.EnrollRequest{Module: mods.tiny, Record: record("org.acme.tiny", "wrk.test.tiny", "cap.test.tiny", ""), Signed: signed}); !errors.As(err, &te) {
		t.Fatalf("the summarizer's bundle on another module: %v, want TRUST_REFUSED", err)
	}
	in := input(t, "cap.doc.summarize", "org.acme")
	if d := h.Decide(ctx, in); d.Denied {
		t.Fatalf("signed worker: %s", d.Code())
	}
	// The receipt of what ran names who signed it (issue 24: receipts
	// carry the signer), as the trust policy in force verified it.
	run, err := h.Run(ctx, host.RunRequest{Input: in, Payload: []byte("A signed worker summarizes this sentence.")})
	if err != nil || run.Outcome != "ok" {
		t.Fatalf("signed worker run: %v %+v", err, run)
	}
	ev, err := h.Evidence()
	if err != nil {
		t.Fatal(err)
	}
	rcpt, err := ev.Receipt(ctx, run.ReceiptID)
	if err != nil {
		t.Fatal(err)
	}
	if want := "key " + res.Provenance.Trust.Signer.KeyID; rcpt.Signer != want {
		t.Fatalf("receipt signer %q, want %q", rcpt.Signer, want)
	}
	before := lastSealed(t, h)
	doc, d0 := h.TrustDocument()
	if before.Manifest.TrustPolicy != d0 || !strings.Contains(string(doc), "BEGIN PUBLIC KEY") {
		t.Fatalf("the sealed snapshot names trust policy %q, the policy in force is %s", before.Manifest.TrustPolicy, d0)
	}

	// The key is removed: another key is trusted instead.
	other := t.TempDir()
	if out, err := ocitest.RunCosign(t, other, "generate-key-pair"); err != nil {
		t.Fatal(err, out)
	}
	writeTrust(t, other, `{"namespaces": {"org.acme.*": {"level": "enforce", "keys": ["cosign.pub"]}}}`)
	raw, _ := os.ReadFile(filepath.Join(other, "trust.json"))
	resolved, err := trust.Resolve(raw, other)
	if err != nil {
		t.Fatal(err)
	}
	d1, err := h.SetTrust(ctx, resolved, d0, "local:test")
	if err != nil {
		t.Fatal(err)
	}
	d := h.Decide(ctx, in)
	if d.Code() != wcp.DenyWorkerUntrusted || !strings.Contains(d.DenyReason.Message, "org.acme.summarizer") {
		t.Fatalf("after the key was removed: %s %v, want DENY_WORKER_UNTRUSTED", d.Code(), d.DenyReason)
	}
	after := lastSealed(t, h)
	if after.Manifest.TrustPolicy != d1 || d1 == d0 || after.Digest == before.Digest || after.Changed["trust_policy"] == nil {
		t.Fatalf("the trust change is not in the sealed snapshot: %s -> %s, changed %v", before.Manifest.TrustPolicy, after.Manifest.TrustPolicy, after.Changed)
	}
	store, _ := h.Evidence()
	cs, err := store.Changes(ctx, host.ChangeTrust)
	if err != nil || len(cs) != 1 || cs[0].Digest != d1 || cs[0].Actor != "local:test" {
		t.Fatalf("trust changes: %+v %v", cs, err)
	}
	// Reopened, the verdict is the same: it is computed from the
	// recorded provenance, not from memory.
	h.Close(ctx)
	h2, err := host.Open(ctx, host.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer h2.Close(ctx)
	if d := h2.Decide(ctx, in); d.Code() != wcp.DenyWorkerUntrusted {
		t.Fatalf("reopened: %s", d.Code())
	}
}
