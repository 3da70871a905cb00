package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/wcphall/hall/internal/ocitest"
)

// chain is a Hall directory under an enforce trust policy for org.acme.*
// (the key cosign generated in it), a registry, and the summarizer pushed
// and signed there.
type chain struct {
	dir, reg, repo string
	record         string // the summarizer's record file
	digest         string // the signed manifest's digest
	module         []byte
}

const trustAcme = `{"namespaces": {"org.acme.*": {"level": "enforce", "keys": ["cosign.pub"]}, "x.*": {"level": "audit"}}}`

func newChain(t *testing.T, signFlags ...string) *chain {
	t.Helper()
	reg := ocitest.SharedRegistry(t)
	c := &chain{dir: hallDir(t), reg: reg.Host, repo: ocitest.RepoName(t)}
	c.record, _ = filepath.Abs("../../plugins/summarizer/registry_record.json")
	var err error
	if c.module, err = os.ReadFile(plugin(t, "summarizer")); err != nil {
		t.Fatal(err)
	}
	if out, err := ocitest.RunCosign(t, c.dir, "generate-key-pair"); err != nil {
		t.Fatal(err, out)
	}
	write(t, c.dir, "trust.json", trustAcme)
	c.digest = c.push(t, "1.0", c.record)
	c.sign(t, c.digest, "cosign.key", signFlags...)
	return c
}

func (c *chain) ref(tag string) string { return "oci://" + c.reg + "/" + c.repo + ":" + tag }

// push pushes the summarizer with record under tag and returns the
// manifest digest.
func (c *chain) push(t *testing.T, tag, record string) string {
	t.Helper()
	r := hallIn(t, c.dir, "", nil, "push", plugin(t, "summarizer"), c.ref(tag), "--record", record, "--plain-http", "--json")
	mustOK(t, r, "push")
	var out struct{ Digest string }
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || out.Digest == "" {
		t.Fatalf("push --json: %q %v", r.stdout, err)
	}
	return out.Digest
}

func (c *chain) sign(t *testing.T, digest, key string, flags ...string) {
	t.Helper()
	args := append([]string{"sign", "--key", key, "--use-signing-config=false", "--tlog-upload=false", "--allow-http-registry", "--allow-insecure-registry"}, flags...)
	if out, err := ocitest.RunCosign(t, c.dir, append(args, c.reg+"/"+c.repo+"@"+digest)...); err != nil {
		t.Fatal(err, out)
	}
}

func (c *chain) enroll(t *testing.T, ref string, extra ...string) result {
	t.Helper()
	return hallIn(t, c.dir, "", nil, append([]string{"enroll", ref, "--plain-http"}, extra...)...)
}

// refused checks an enrollment was refused with want in its message and
// that nothing was enrolled.
func refused(t *testing.T, r result, dir string, want ...string) {
	t.Helper()
	if r.code == 0 {
		t.Fatalf("enrolled, want refused:\n%s", r.stdout)
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "enrolled")); len(entries) > 0 {
		t.Errorf("something was enrolled: %v", entries)
	}
}

// TestEnrollOCISignedUnderEnforce is the first "Done when": a
// cosign-signed worker enrolled from a real registry under an enforce
// policy, its signer recorded, run, and the tag moved afterwards changes
// nothing.
func TestEnrollOCISignedUnderEnforce(t *testing.T) {
	for _, tc := range []struct{ name, flag string }{{"bundle", ""}, {"legacy-sig", "--new-bundle-format=false"}} {
		t.Run(tc.name, func(t *testing.T) {
			var flags []string
			if tc.flag != "" {
				flags = append(flags, tc.flag)
			}
			c := newChain(t, flags...)
			r := c.enroll(t, c.ref("1.0"), "--json")
			mustOK(t, r, "enroll")
			var out struct {
				WorkerID   string `json:"worker_id"`
				Artifact   string `json:"artifact_hash"`
				Provenance struct {
					Source string `json:"source"`
					Trust  struct {
						Level    string            `json:"level"`
						Verified bool              `json:"verified"`
						Signer   map[string]string `json:"signer"`
					} `json:"trust"`
					SignatureDigest string `json:"signature_digest"`
				} `json:"provenance"`
			}
			if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
				t.Fatal(err, r.stdout)
			}
			p := out.Provenance
			if out.WorkerID != "org.acme.summarizer" || !p.Trust.Verified || p.Trust.Level != "enforce" || !strings.HasPrefix(p.Trust.Signer["key_id"], "sha256:") || p.SignatureDigest == "" {
				t.Fatalf("provenance: %s", r.stdout)
			}
			if p.Source != c.ref("1.0")+"@"+c.digest {
				t.Fatalf("source %q, want the tag pinned to %s", p.Source, c.digest)
			}
			if out.Artifact != sha(c.module) {
				t.Fatalf("artifact %s, want the module's digest", out.Artifact)
			}
			if tc.name != "bundle" {
				return
			}
			// The tag moves to other bytes: the enrolled worker is still
			// the digest that was resolved and verified.
			other := filepath.Join(c.dir, "other.json")
			write(t, c.dir, "other.json", strings.Replace(readFile(t, c.record), `"owner": "org.acme"`, `"owner": "org.acme.moved"`, 1))
			moved := c.push(t, "1.0", other)
			if moved == c.digest {
				t.Fatal("the tag did not move")
			}
			run := hallIn(t, c.dir, document, nil, "run", "cap.doc.summarize", "--json")
			mustOK(t, run, "run after the tag moved")
			if !strings.Contains(run.stdout, `"artifact_hash": "`+sha(c.module)+`"`) {
				t.Fatalf("run: %s", run.stdout)
			}
			checkSignerEvidence(t, c, run.stdout, p.Trust.Signer["key_id"])
			// Enrolling the moved tag is a new decision: it is unsigned.
			r = c.enroll(t, c.ref("1.0"))
			if r.code == 0 || !strings.Contains(r.stderr, "TRUST_REFUSED") || !strings.Contains(r.stderr, moved) {
				t.Fatalf("the moved tag: exit %d\n%s", r.code, r.stderr)
			}
		})
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestEnrollOCIRefusals: the adversarial cases, each refused with
// a message that says why, and nothing enrolled.
func TestEnrollOCIRefusals(t *testing.T) {
	c := newChain(t)
	fresh := func(t *testing.T) string {
		d := hallDir(t)
		for _, f := range []string{"trust.json", "cosign.pub", "cosign.key"} {
			write(t, d, f, readFile(t, filepath.Join(c.dir, f)))
		}
		return d
	}
	t.Run("unsigned", func(t *testing.T) {
		d := fresh(t)
		rec := filepath.Join(d, "rec.json")
		write(t, d, "rec.json", readFile(t, c.record)+"\n")
		dg := c.push(t, "unsigned", rec)
		r := hallIn(t, d, "", nil, "enroll", c.ref("unsigned"), "--plain-http")
		refused(t, r, d, "TRUST_REFUSED", "org.acme.*", "unsigned", dg)
	})
	t.Run("acme-key-other-namespace", func(t *testing.T) {
		d := fresh(t)
		other := t.TempDir()
		if out, err := ocitest.RunCosign(t, other, "generate-key-pair"); err != nil {
			t.Fatal(err, out)
		}
		write(t, d, "other.pub", readFile(t, filepath.Join(other, "cosign.pub")))
		write(t, d, "trust.json", `{"namespaces": {"org.acme.*": {"level": "enforce", "keys": ["cosign.pub"]}, "org.other.*": {"level": "enforce", "keys": ["other.pub"]}}}`)
		write(t, d, "rec.json", strings.Replace(readFile(t, c.record), `"org.acme.summarizer"`, `"org.other.summarizer"`, 1))
		dg := c.push(t, "other", filepath.Join(d, "rec.json"))
		c.sign(t, dg, "cosign.key") // Acme's key
		r := hallIn(t, d, "", nil, "enroll", c.ref("other"), "--plain-http")
		refused(t, r, d, "TRUST_REFUSED", "org.other.summarizer", `"org.other.*"`, "no signature verifies")
	})
	t.Run("signature-over-another-digest", func(t *testing.T) {
		d := fresh(t)
		write(t, d, "rec.json", readFile(t, c.record)+"\n\n")
		dg := c.push(t, "copied", filepath.Join(d, "rec.json"))
		// The signed artifact's signature index, copied to the tag where
		// signatures of the new digest are looked for.
		copyManifest(t, c.reg, c.repo, strings.Replace(c.digest, ":", "-", 1), strings.Replace(dg, ":", "-", 1))
		r := hallIn(t, d, "", nil, "enroll", c.ref("copied"), "--plain-http")
		refused(t, r, d, "TRUST_REFUSED", "no signature verifies")
	})
	t.Run("layer-does-not-match-its-digest", func(t *testing.T) {
		d := fresh(t)
		evil := bytes.Clone(c.module)
		evil[len(evil)-1] ^= 1
		proxy := proxyRegistry(t, c.reg, func(w http.ResponseWriter, r *http.Request) bool {
			if !strings.HasSuffix(r.URL.Path, "/blobs/"+sha(c.module)) {
				return false
			}
			w.Header().Set("Content-Length", fmt.Sprint(len(evil)))
			_, _ = w.Write(evil)
			return true
		})
		r := hallIn(t, d, "", nil, "enroll", "oci://"+proxy+"/"+c.repo+":1.0", "--plain-http")
		refused(t, r, d, "OCI_ARTIFACT_REFUSED", "does not match its descriptor")
	})
	t.Run("5GB-layer", func(t *testing.T) {
		d := fresh(t)
		var served atomic.Int64
		host := hugeLayerRegistry(t, &served)
		r := hallIn(t, d, "", nil, "enroll", "oci://"+host+"/acme/huge:1.0", "--plain-http")
		refused(t, r, d, "OCI_ARTIFACT_REFUSED", "declares 5368709120 bytes", "not read")
		if n := served.Load(); n != 0 {
			t.Fatalf("the registry served %d bytes of the 5 GB layer", n)
		}
	})
	t.Run("100MB-bundle", func(t *testing.T) {
		d := fresh(t)
		big := filepath.Join(d, "big.json")
		f, err := os.Create(big)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(100 << 20); err != nil { // sparse: nothing is written
			t.Fatal(err)
		}
		f.Close()
		r := hallIn(t, d, "", nil, "enroll", plugin(t, "summarizer"), "--record", c.record, "--bundle", big)
		refused(t, r, d, "over the 1048576-byte limit", "not read")
	})
	t.Run("deeply-nested-bundle", func(t *testing.T) {
		d := fresh(t)
		write(t, d, "deep.json", strings.Repeat("[", 100000)+strings.Repeat("]", 100000))
		r := hallIn(t, d, "", nil, "enroll", plugin(t, "summarizer"), "--record", c.record, "--bundle", filepath.Join(d, "deep.json"))
		refused(t, r, d, "TRUST_REFUSED", "nested deeper than 32 levels")
	})
	t.Run("audit-enrolls-and-warns", func(t *testing.T) {
		d := fresh(t)
		write(t, d, "trust.json", `{"namespaces": {"org.acme.*": {"level": "audit", "keys": ["cosign.pub"]}}}`)
		write(t, d, "rec.json", readFile(t, c.record)+"\n\n\n")
		c.push(t, "audited", filepath.Join(d, "rec.json"))
		r := hallIn(t, d, "", nil, "enroll", c.ref("audited"), "--plain-http")
		mustOK(t, r, "enroll under audit")
		if !strings.Contains(r.stdout, "signer:    unsigned") || !strings.Contains(r.stdout, "trust:     audit (org.acme.*)") ||
			!strings.Contains(r.stderr, "warning: trust policy org.acme.* is audit: enrolled although unsigned") {
			t.Fatalf("audit:\n%s\n%s", r.stdout, r.stderr)
		}
	})
	t.Run("enforce-with-no-signer", func(t *testing.T) {
		d := fresh(t)
		write(t, d, "trust.json", `{"namespaces": {"org.*": {"level": "enforce"}}}`)
		r := hallIn(t, d, "", nil, "enroll", c.ref("1.0"), "--plain-http")
		refused(t, r, d, "TRUST_REFUSED", "names no signer", `namespaces["org.*"]`)
	})
}

// copyManifest copies the manifest under tag from to tag to in repo.
func copyManifest(t *testing.T, reg, repo, from, to string) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+reg+"/v2/"+repo+"/manifests/"+from, nil)
	req.Header.Set("Accept", "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s %s", from, resp.Status, body)
	}
	put, _ := http.NewRequest("PUT", "http://"+reg+"/v2/"+repo+"/manifests/"+to, bytes.NewReader(body))
	put.Header.Set("Content-Type", resp.Header.Get("Content-Type"))
	resp, err = http.DefaultClient.Do(put)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT %s: %s", to, resp.Status)
	}
}

// proxyRegistry forwards to the registry on reg, except what rewrite
// answers itself.
func proxyRegistry(t *testing.T, reg string, rewrite func(http.ResponseWriter, *http.Request) bool) string {
	u, _ := url.Parse("http://" + reg)
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !rewrite(w, r) {
			rp.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// hugeLayerRegistry serves one Wasm artifact whose layer declares 5 GB
// and, if asked, streams zeros without end (like /dev/zero); served
// counts the layer bytes it sent.
func hugeLayerRegistry(t *testing.T, served *atomic.Int64) string {
	cfg := []byte(`{"architecture":"wasm","os":"wasip1"}`)
	cfgDigest := sha(cfg)
	layerDigest := "sha256:" + strings.Repeat("0", 64)
	man := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.wasm.config.v0+json","digest":%q,"size":%d},"layers":[{"mediaType":"application/wasm","digest":%q,"size":%d}]}`,
		cfgDigest, len(cfg), layerDigest, int64(5)<<30))
	manDigest := sha(man)
	manifests := regexp.MustCompile(`^/v2/acme/huge/manifests/(.+)$`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/v2/":
			w.WriteHeader(200)
		case manifests.MatchString(r.URL.Path):
			ref := manifests.FindStringSubmatch(r.URL.Path)[1]
			if ref != "1.0" && ref != manDigest {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
			w.Header().Set("Docker-Content-Digest", manDigest)
			w.Header().Set("Content-Length", fmt.Sprint(len(man)))
			if r.Method != http.MethodHead {
				_, _ = w.Write(man)
			}
		case strings.HasSuffix(r.URL.Path, "/blobs/"+cfgDigest):
			_, _ = w.Write(cfg)
		case strings.HasSuffix(r.URL.Path, "/blobs/"+layerDigest):
			buf := make([]byte, 32<<10)
			for i := 0; i < 1024; i++ { // bounded: at most 32 MiB
				n, err := w.Write(buf)
				served.Add(int64(n))
				if err != nil {
					return
				}
			}
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// checkSignerEvidence: the signer is in hall receipts show and in the
// exported evidence bundle; hall audit verify verifies the stored
// signature again; the Node verifier accepts the bundle.
func checkSignerEvidence(t *testing.T, c *chain, runJSON, keyID string) {
	t.Helper()
	var run struct {
		ReceiptID string `json:"receipt_id"`
	}
	if err := json.Unmarshal([]byte(runJSON), &run); err != nil || run.ReceiptID == "" {
		t.Fatalf("run --json: %v %s", err, runJSON)
	}
	r := hallIn(t, c.dir, "", nil, "receipts", "show", run.ReceiptID)
	mustOK(t, r, "receipts show")
	if !strings.Contains(r.stdout, "receipt signer: key "+keyID+"\n") || !strings.Contains(r.stdout, "signer: key "+keyID+", verified under trust policy org.acme.* (enforce)") || !strings.Contains(r.stdout, c.digest) {
		t.Fatalf("receipts show lacks the signer:\n%s", r.stdout)
	}
	r = hallIn(t, c.dir, "", nil, "audit", "verify")
	mustOK(t, r, "audit verify")
	if !strings.Contains(r.stdout, "recorded worker signature(s) verified again") {
		t.Fatalf("audit verify: %s", r.stdout)
	}
	bundle := filepath.Join(t.TempDir(), "bundle")
	mustOK(t, hallIn(t, c.dir, "", nil, "audit", "export", "--bundle", bundle), "audit export --bundle")
	entries := readFile(t, filepath.Join(bundle, "entries.jsonl"))
	if !strings.Contains(entries, `"kind":"provenance"`) || !strings.Contains(entries, keyID) {
		t.Fatalf("the exported bundle has no provenance entry naming %s", keyID)
	}
	if script := nodeVerifierScript(t); script != "" {
		r = hallIn(t, c.dir, "", nil, "keys", "show", "--all", "--json")
		mustOK(t, r, "keys show")
		write(t, c.dir, "keyset.json", r.stdout)
		out, err := exec.Command("node", script, bundle, "--keys", filepath.Join(c.dir, "keyset.json")).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "verified") {
			t.Fatalf("node verifier: %v\n%s", err, out)
		}
	}
}

// TestHallSignLikeCosign: hall sign writes what cosign writes — the real
// cosign verifies hall's bundles — and hall enroll accepts them under an
// enforce policy, for a file and for a registry artifact.
func TestHallSignLikeCosign(t *testing.T) {
	reg := ocitest.SharedRegistry(t)
	dir := hallDir(t)
	mustOK(t, hallIn(t, dir, "", nil, "sign", "--generate-key", "acme"), "sign --generate-key")
	write(t, dir, "trust.json", `{"namespaces": {"org.acme.*": {"level": "enforce", "keys": ["acme.pub"]}}}`)
	module, _ := os.ReadFile(plugin(t, "summarizer"))
	write(t, dir, "summarizer.wasm", string(module))
	rec, _ := filepath.Abs("../../plugins/summarizer/registry_record.json")

	mustOK(t, hallIn(t, dir, "", nil, "sign", "--key", "acme.key", "summarizer.wasm"), "sign a file")
	if out, err := ocitest.RunCosign(t, dir, "verify-blob", "--key", "acme.pub", "--bundle", "summarizer.wasm.sigstore.json",
		"--insecure-ignore-tlog=true", "--use-signed-timestamps=false", "summarizer.wasm"); err != nil {
		t.Fatalf("cosign verify-blob of hall's bundle: %v\n%s", err, out)
	}
	r := hallIn(t, dir, "", nil, "enroll", "summarizer.wasm", "--record", rec)
	mustOK(t, r, "enroll the signed file")
	if !strings.Contains(r.stdout, "signer:    key sha256:") || !strings.Contains(r.stdout, "trust:     enforce (org.acme.*)") {
		t.Fatalf("enroll: %s", r.stdout)
	}

	ref := "oci://" + reg.Host + "/" + ocitest.RepoName(t) + ":1.0"
	mustOK(t, hallIn(t, dir, "", nil, "push", "summarizer.wasm", ref, "--record", rec, "--plain-http"), "push")
	mustOK(t, hallIn(t, dir, "", nil, "sign", "--key", "acme.key", ref, "--plain-http"), "sign a registry artifact")
	if out, err := ocitest.RunCosign(t, dir, "verify", "--key", "acme.pub", "--insecure-ignore-tlog=true", "--allow-http-registry",
		"--allow-insecure-registry", strings.TrimPrefix(ref, "oci://")); err != nil {
		t.Fatalf("cosign verify of hall's registry signature: %v\n%s", err, out)
	}
	r = hallIn(t, dir, "", nil, "enroll", ref, "--plain-http")
	mustOK(t, r, "enroll the signed artifact")
	if !strings.Contains(r.stdout, "signer:    key sha256:") {
		t.Fatalf("enroll: %s", r.stdout)
	}
}

// TestSupplyChainDocBlocks runs docs/SUPPLY-CHAIN.md's shell blocks as
// written, against a real registry and the real cosign.
func TestSupplyChainDocBlocks(t *testing.T) {
	reg := ocitest.SharedRegistry(t)
	cosign := ocitest.Cosign(t)
	path := "PATH=" + filepath.Dir(hallBin) + string(os.PathListSeparator) + filepath.Dir(cosign) + string(os.PathListSeparator) + os.Getenv("PATH")
	blocks := shellBlocks(t, filepath.Join(repoRoot, "docs", "SUPPLY-CHAIN.md"))
	if len(blocks) < 5 {
		t.Fatalf("docs/SUPPLY-CHAIN.md has %d shell blocks", len(blocks))
	}
	runBlocks(t, "docs/SUPPLY-CHAIN.md", blocks, "REGISTRY="+reg.Host, path)
}
