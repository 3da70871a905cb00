package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/internal/wasmmod"
)

var (
	repoRoot, _  = filepath.Abs("../..")
	authoringDir = filepath.Join(repoRoot, "examples", "authoring")
)

// readmeScript is every ```sh block of examples/authoring/README.md, in
// order, as written (the SDK comes from this checkout through HALL_SRC).
func readmeScript(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(authoringDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var script []string
	in := false
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case line == "```sh":
			in = true
		case in && line == "```":
			in = false
		case in:
			script = append(script, line)
		}
	}
	return strings.Join(script, "\n")
}

// testEnv is the environment of a command the tests run: no HALL_*
// variable of the caller, the hall binary first on PATH, extra appended.
func testEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HALL_") && !strings.HasPrefix(kv, "PATH=") {
			env = append(env, kv)
		}
	}
	env = append(env, "PATH="+filepath.Dir(hallBin)+string(os.PathListSeparator)+os.Getenv("PATH"), "GOPROXY=off")
	// No progress lines unless a test asks for them (HALL_PROGRESS_AFTER=0):
	// whether a step takes over a second must not change what a test reads.
	env = append(env, "HALL_PROGRESS_AFTER=1h")
	return append(env, extra...)
}

// hallWith is hall with extra environment variables (hall strips HALL_*).
func hallWith(t *testing.T, dir, stdin string, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(hallBin, args...)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = testEnv(env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running hall %v: %v", args, err)
	}
	if strings.Contains(errb.String(), "goroutine ") || strings.Contains(errb.String(), "panic:") {
		t.Fatalf("hall %v printed a Go stack trace:\n%s", args, errb.String())
	}
	return result{out.String(), errb.String(), code}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v\n%s", path, err, b)
	}
}

func digestOf(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func copyFiles(t *testing.T, from, to string, names ...string) {
	t.Helper()
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(from, n))
		if err != nil {
			t.Fatal(err)
		}
		write(t, to, n, string(b))
	}
}

// TestAuthoringREADME runs the authoring example's README from `go mod
// init` to `hall run` and then uses the module it built (built once) for
// the rest of hall build's end-to-end checks.
func TestAuthoringREADME(t *testing.T) {
	work := t.TempDir()
	script := readmeScript(t)
	cmd := exec.Command("bash", "-e", "-c", script)
	cmd.Dir = work
	cmd.Env = testEnv("HALL_SRC=" + repoRoot)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("README steps failed: %v\n--- script\n%s\n--- output\n%s", err, script, out)
	}
	dir := filepath.Join(work, "signer")
	wasmPath := filepath.Join(dir, "signer.wasm")
	digest := digestOf(t, wasmPath)

	// The record hall build wrote names the module's digest, and is the
	// example's checked-in record but for the machine's paths.
	var rec map[string]any
	readJSON(t, filepath.Join(dir, "registry_record.json"), &rec)
	if rec["artifact_hash"] != digest {
		t.Fatalf("artifact_hash %v, module digest %s", rec["artifact_hash"], digest)
	}
	// hall build also put the module in the state directory's artifact
	// store, so that the record alone enrolls it (POST /enroll).
	if stored := digestOf(t, filepath.Join(dir, ".hall", "artifacts", "sha256", strings.TrimPrefix(digest, "sha256:")+".wasm")); stored != digest {
		t.Fatalf("stored module digest %s, want %s", stored, digest)
	}
	var committed map[string]any
	readJSON(t, filepath.Join(authoringDir, "registry_record.json"), &committed)
	reads := rec["privilege_envelope"].(map[string]any)["filesystem_reads"]
	if want := []any{filepath.Join(dir, "data")}; !reflect.DeepEqual(reads, want) {
		t.Errorf("filesystem_reads %v, want %v", reads, want)
	}
	strip := func(m map[string]any) map[string]any {
		c := map[string]any{}
		for k, v := range m {
			c[k] = v
		}
		delete(c, "artifact_hash")
		pe := map[string]any{}
		for k, v := range c["privilege_envelope"].(map[string]any) {
			pe[k] = v
		}
		delete(pe, "filesystem_reads")
		c["privilege_envelope"] = pe
		return c
	}
	if got, want := strip(rec), strip(committed); !reflect.DeepEqual(got, want) {
		t.Errorf("README's record differs from examples/authoring/registry_record.json:\n got %v\nwant %v", got, want)
	}

	// The signature is the HMAC of the whitelisted file under the secret
	// the script exported, for the correlation id it passed.
	script = readmeScript(t)
	key := regexp.MustCompile(`export HALL_SECRET_SIGNING_KEY='([^']*)'`).FindStringSubmatch(script)
	corr := regexp.MustCompile(`--correlation-id (\S+)`).FindStringSubmatch(script)
	if key == nil || corr == nil {
		t.Fatalf("README no longer sets the key and correlation id the test reads")
	}
	doc, err := os.ReadFile(filepath.Join(dir, "data", "invoice.txt"))
	if err != nil {
		t.Fatal(err)
	}
	checkSignature(t, filepath.Join(dir, "signature.json"), key[1], doc, corr[1])
	if !strings.Contains(string(out), "module:   signer.wasm") || !strings.Contains(string(out), "extism:host/user: hall_secret") {
		t.Errorf("README's hall inspect output lacks the module or its hall_secret import:\n%s", out)
	}

	t.Run("inspect", func(t *testing.T) {
		t.Parallel()
		r := hall(t, dir, "", "inspect", "--json", "signer.wasm")
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		var res struct {
			Digest         string              `json:"digest"`
			Size           int                 `json:"size"`
			Record         map[string]any      `json:"record"`
			RecordProblems []string            `json:"record_problems"`
			Imports        map[string][]string `json:"imports"`
			Exports        []struct{ Name, Kind string }
		}
		if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
			t.Fatalf("%v\n%s", err, r.stdout)
		}
		st, _ := os.Stat(wasmPath)
		if res.Digest != digest || int64(res.Size) != st.Size() {
			t.Errorf("digest %s size %d, want %s %d", res.Digest, res.Size, digest, st.Size())
		}
		want := map[string]any{}
		for k, v := range rec {
			if k != "artifact_hash" {
				want[k] = v
			}
		}
		if !reflect.DeepEqual(res.Record, want) {
			t.Errorf("embedded record\n got %v\nwant %v (the record without artifact_hash)", res.Record, want)
		}
		if len(res.RecordProblems) != 0 {
			t.Errorf("record problems: %v", res.RecordProblems)
		}
		if !slices.Contains(res.Imports["extism:host/user"], "hall_secret") || !slices.Contains(res.Imports["extism:host/env"], "input_load_u64") {
			t.Errorf("imports %v", res.Imports)
		}
		var exports []string
		for _, e := range res.Exports {
			if e.Kind == "func" {
				exports = append(exports, e.Name)
			}
		}
		for _, name := range []string{"sign", "run", "_initialize"} {
			if !slices.Contains(exports, name) {
				t.Errorf("exports %v lack %s", exports, name)
			}
		}
	})

	t.Run("enroll-from-section-and-run", func(t *testing.T) {
		t.Parallel()
		// Only the module: enroll must take the record from its section.
		hallDir := t.TempDir()
		copyFiles(t, dir, hallDir, "signer.wasm")
		write(t, hallDir, "rules.json", `{"rules": []}`)
		home := filepath.Join(hallDir, ".hall")
		r := hall(t, hallDir, "", "enroll", "--home", home, "--add-rule", "--json", "signer.wasm")
		if r.code != 0 {
			t.Fatalf("enroll: exit %d: %s", r.code, r.stderr)
		}
		var er struct {
			Source string `json:"record_source"`
			Hash   string `json:"artifact_hash"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &er); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(er.Source, host.RecordSection) || er.Hash != digest {
			t.Errorf("enrolled from %q with %s, want the %s section and %s", er.Source, er.Hash, host.RecordSection, digest)
		}

		input := `{"path": "` + filepath.Join(dir, "data", "invoice.txt") + `"}`
		const secret = "another key"
		env := []string{"HALL_SECRET_SIGNING_KEY=" + secret}
		run := func(t *testing.T, input string, env []string) result {
			return hallWith(t, hallDir, input, env, "run", "--home", home, "--tenant", "org.example", "--correlation-id", "corr-"+t.Name(), "cap.doc.sign")
		}
		t.Run("ok", func(t *testing.T) {
			r := run(t, input, env)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			out := filepath.Join(t.TempDir(), "sig.json")
			write(t, filepath.Dir(out), "sig.json", r.stdout)
			checkSignature(t, out, secret, doc, "corr-"+t.Name())
		})
		for _, tc := range []struct {
			name, input string
			env         []string
			want        []string
		}{
			// go.mod exists on the host but is outside filesystem_reads.
			{"outside-whitelist", `{"path": "` + filepath.Join(dir, "go.mod") + `"}`, env, []string{"WORKER_FAILED", "reading " + filepath.Join(dir, "go.mod")}},
			{"secret-unset", input, nil, []string{"WORKER_FAILED", "SECRET_UNAVAILABLE", "set HALL_SECRET_SIGNING_KEY"}},
			{"not-json", "sign this", env, []string{"WORKER_FAILED", "decoding input"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := run(t, tc.input, tc.env)
				if r.code != exitWorkerFailed {
					t.Fatalf("exit %d, want %d; stdout %q stderr %s", r.code, exitWorkerFailed, r.stdout, r.stderr)
				}
				for _, w := range tc.want {
					if !strings.Contains(r.stderr, w) {
						t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
					}
				}
			})
		}
	})

	t.Run("missing-export", func(t *testing.T) {
		t.Parallel()
		pkg := t.TempDir()
		copyFiles(t, dir, pkg, "go.mod", "main.go", "registry_record.json")
		out := filepath.Join(pkg, "out.wasm")
		r := hallWith(t, pkg, "", nil, "build", "--no-input", "-o", out, "--entrypoint", "cap.doc.sign=stamp")
		if r.code != exitError {
			t.Fatalf("exit %d, want %d: %s", r.code, exitError, r.stderr)
		}
		if lines := strings.Split(strings.TrimSpace(r.stderr), "\n"); len(lines) != 1 ||
			!strings.Contains(lines[0], `entrypoints.cap.doc.sign: the module exports no function "stamp"`) {
			t.Errorf("stderr:\n%s", r.stderr)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%s was written for a module that cannot serve its record", out)
		}
	})

	t.Run("compile-error", func(t *testing.T) {
		t.Parallel()
		pkg := t.TempDir()
		copyFiles(t, dir, pkg, "go.mod", "main.go", "registry_record.json")
		write(t, pkg, "broken.go", "package main\n\nfunc broken() int { return undefinedThing }\n")
		r := hallWith(t, pkg, "", nil, "build", "--no-input")
		if r.code != exitError {
			t.Fatalf("exit %d, want %d: %s", r.code, exitError, r.stderr)
		}
		for _, w := range []string{"broken.go:3", "undefinedThing", "hall: go build (GOOS=wasip1 GOARCH=wasm", "-buildmode=c-shared -trimpath"} {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
			}
		}
	})

	t.Run("wizard", func(t *testing.T) {
		t.Parallel()
		pkg := t.TempDir()
		copyFiles(t, dir, pkg, "go.mod", "main.go")
		copyFiles(t, authoringDir, pkg, "registry_record.json")
		testWizard(t, pkg)
	})

	t.Run("wizard-full-screen", func(t *testing.T) {
		t.Parallel()
		pkg := t.TempDir()
		copyFiles(t, dir, pkg, "go.mod", "main.go")
		copyFiles(t, authoringDir, pkg, "registry_record.json")
		testWizardTUI(t, pkg)
	})
}

func checkSignature(t *testing.T, path, key string, doc []byte, corr string) {
	t.Helper()
	var sig struct {
		Path, SHA256, Key string
		Bytes             int
		HMAC              string `json:"hmac_sha256"`
		Correlation       string `json:"correlation_id"`
	}
	readJSON(t, path, &sig)
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write(doc)
	sum := sha256.Sum256(doc)
	if sig.HMAC != hex.EncodeToString(mac.Sum(nil)) || sig.SHA256 != hex.EncodeToString(sum[:]) || sig.Bytes != len(doc) {
		t.Errorf("signature %+v does not sign the %d bytes of the document under the key", sig, len(doc))
	}
	if sig.Correlation != corr {
		t.Errorf("correlation id %q, want %q", sig.Correlation, corr)
	}
}

// testWizard answers hall build's prompts through a pseudo-terminal (the
// line-by-line accessible mode) and checks the record they produce.
func testWizard(t *testing.T, pkg string) {
	out := filepath.Join(pkg, "wizard.wasm")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, hallBin, "build", "--accessible", "-o", out)
	cmd.Dir = pkg
	cmd.Env = testEnv("TERM=dumb", "NO_COLOR=1")
	term := startPTY(t, cmd, 50, 200)
	tty := term.tty
	expect := func(s string) { t.Helper(); term.expect(t, s, true) }
	answer := func(prompt, line string) {
		t.Helper()
		expect(prompt)
		if _, err := tty.Write([]byte(line + "\n")); err != nil {
			t.Fatal(err)
		}
	}

	answer("Worker id [org.example.signer]", "Not An Id")
	answer("not a valid worker id", "org.example.wizard") // re-prompted after the bad answer
	answer("Worker species [wrk.doc.signer]", "")
	answer("Capabilities [cap.doc.sign]", "")
	expect("Risk tier [medium]")
	answer("Enter a number between 1 and 4", "3") // high
	answer("Controls [ctrl.obs.audit-log-append-only]", "ctrl.obs.audit-log-append-only, ctrl.privilege_envelopes_required")
	expect("Allowed environments")
	answer("Enter a number between 0 and 4", "2") // toggle stage on
	answer("Enter a number between 0 and 4", "0") // done
	answer("Secrets [signing_key]", "")
	answer("Network egress [none]", "api.example.com:443")
	answer("Writable directories", "/tmp/wizard-out")
	answer("Readable directories [/srv/documents]", "")
	answer("Blast radius: data [1]", "2")
	answer("Blast radius: network [0]", "1")
	answer("Blast radius: financial [0]", "")
	answer("Blast radius: time [1]", "")
	expect("Reversibility [reversible]")
	answer("Enter a number between 1 and 3", "2") // partially reversible

	screen, waitErr := term.wait(cmd)
	if waitErr != nil {
		t.Fatalf("hall build: %v; the terminal shows:\n%s", waitErr, screen)
	}
	if !bytes.Contains(screen, []byte("built "+out)) {
		t.Fatalf("no build summary; the terminal shows:\n%s", screen)
	}

	var rec struct {
		Capabilities []string
		RiskTier     string   `json:"risk_tier"`
		Required     []string `json:"required_controls"`
		Implements   []string `json:"currently_implements"`
		Envs         []string `json:"allowed_environments"`
		Envelope     struct {
			Secrets []string `json:"secrets_access"`
			Egress  []string `json:"network_egress"`
			Writes  []string `json:"filesystem_writes"`
			Reads   []string `json:"filesystem_reads"`
		} `json:"privilege_envelope"`
		Blast struct {
			Data, Network, Financial, Time int
			Reversibility                  string
		} `json:"blast_radius"`
		Entrypoints  map[string]string `json:"entrypoints"`
		ArtifactHash string            `json:"artifact_hash"`
	}
	readJSON(t, filepath.Join(pkg, "registry_record.json"), &rec)
	var ids struct {
		WorkerID string `json:"worker_id"`
		Species  string `json:"worker_species_id"`
	}
	readJSON(t, filepath.Join(pkg, "registry_record.json"), &ids)
	controls := []string{"ctrl.obs.audit-log-append-only", "ctrl.privilege_envelopes_required"}
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"worker_id", ids.WorkerID, "org.example.wizard"},
		{"worker_species_id", ids.Species, "wrk.doc.signer"},
		{"capabilities", rec.Capabilities, []string{"cap.doc.sign"}},
		{"risk_tier", rec.RiskTier, "high"},
		{"required_controls", rec.Required, controls},
		{"currently_implements", rec.Implements, controls},
		{"allowed_environments", rec.Envs, []string{"dev", "stage"}},
		{"secrets_access", rec.Envelope.Secrets, []string{"signing_key"}},
		{"network_egress", rec.Envelope.Egress, []string{"api.example.com:443"}},
		{"filesystem_writes", rec.Envelope.Writes, []string{"/tmp/wizard-out"}},
		{"filesystem_reads", rec.Envelope.Reads, []string{"/srv/documents"}},
		{"blast_radius", [4]int{rec.Blast.Data, rec.Blast.Network, rec.Blast.Financial, rec.Blast.Time}, [4]int{2, 1, 0, 1}},
		{"reversibility", rec.Blast.Reversibility, "partially_reversible"},
		{"entrypoints", rec.Entrypoints, map[string]string{"cap.doc.sign": "sign"}}, // not asked: kept
		{"artifact_hash", rec.ArtifactHash, digestOf(t, out)},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	module, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	sec, ok, err := wasmmod.CustomSection(module, host.RecordSection)
	if err != nil || !ok || !bytes.Contains(sec, []byte(`"worker_id":"org.example.wizard"`)) || bytes.Contains(sec, []byte("artifact_hash")) {
		t.Errorf("embedded record (ok %v, err %v): %s", ok, err, sec)
	}
}

// TestBuildRejectsBadRecords: problems with the record are reported one
// line each, naming the field and the flag, before anything is compiled.
func TestBuildRejectsBadRecords(t *testing.T) {
	for _, tc := range []struct {
		name   string
		record bool // start from the example's record
		args   []string
		want   []string // one per line
	}{
		{"risk-tier", true, []string{"--risk-tier", "extreme"}, []string{"risk_tier: value must be one of 'low', 'medium', 'high', 'critical' (set with --risk-tier)"}},
		{"blast-not-integer", true, []string{"--blast", "data=lots"}, []string{`--blast: blast_radius.data: "lots" is not an integer 0-5`}},
		{"blast-unknown-key", true, []string{"--blast", "color=3"}, []string{`blast_radius: unknown dimension "color"`}},
		{"blast-out-of-range", true, []string{"--blast", "time=9,data=7"}, []string{"blast_radius.data: maximum: got 7, want 5", "blast_radius.time: maximum: got 9, want 5"}},
		{"environment", true, []string{"--env", "dev", "--env", "production"}, []string{"allowed_environments[1]: value must be one of"}},
		{"egress", true, []string{"--egress", "http://example.com"}, []string{
			"privilege_envelope.network_egress: value must be one of 'none', 'unrestricted' (set with --egress)",
			"privilege_envelope.network_egress[0]: 'http://example.com' does not match pattern",
		}},
		{"entrypoint-syntax", true, []string{"--entrypoint", "sign"}, []string{`--entrypoint "sign": entrypoints: want CAPABILITY=EXPORT`}},
		{"entrypoint-unknown-capability", true, []string{"--entrypoint", "cap.doc.other=sign"}, []string{"entrypoints.cap.doc.other: names a capability the worker does not declare"}},
		{"capability-id", true, []string{"--capability", "summarize"}, []string{
			`capabilities[0]: "summarize" is not a valid capability id`,
			"entrypoints.cap.doc.sign: names a capability the worker does not declare in capabilities (set with --entrypoint)",
		}},
		{"new-record-needs-ids", false, nil, []string{"capabilities: is required (set with --capability)", "worker_id: is required (set with --worker-id)", "worker_species_id: is required (set with --species)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if tc.record {
				copyFiles(t, authoringDir, dir, "registry_record.json")
			}
			args := append([]string{"build", "--no-input", "-o", "out.wasm"}, tc.args...)
			r := hall(t, dir, "", args...)
			if r.code != exitError {
				t.Fatalf("exit %d, want %d; stderr:\n%s", r.code, exitError, r.stderr)
			}
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			if len(lines) != len(tc.want) {
				t.Fatalf("%d lines, want %d:\n%s", len(lines), len(tc.want), r.stderr)
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(lines[i], "hall: ") || !strings.Contains(lines[i], w) {
					t.Errorf("line %d %q lacks %q", i, lines[i], w)
				}
			}
			if _, err := os.Stat(filepath.Join(dir, "out.wasm")); err == nil {
				t.Error("a module was written for a bad record")
			}
			if tc.record {
				got, _ := os.ReadFile(filepath.Join(dir, "registry_record.json"))
				want, _ := os.ReadFile(filepath.Join(authoringDir, "registry_record.json"))
				if !bytes.Equal(got, want) {
					t.Error("the record file was rewritten although the build failed")
				}
			}
		})
	}
}

func TestInspectNotAModule(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "x.wasm", "not wasm at all")
	r := hall(t, dir, "", "inspect", "x.wasm")
	if r.code != exitError || !strings.HasPrefix(r.stderr, "hall: x.wasm: not a WebAssembly module") || strings.Count(r.stderr, "\n") != 1 {
		t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
}

// testWizardTUI drives the full-screen form with keystrokes: it replaces the
// worker id, moves the risk tier down one, replaces the data blast radius
// and accepts every other pre-filled answer.
func testWizardTUI(t *testing.T, pkg string) {
	out := filepath.Join(pkg, "tui.wasm")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, hallBin, "build", "-o", out)
	cmd.Dir = pkg
	cmd.Env = testEnv("TERM=xterm-256color")
	term := startPTY(t, cmd, 60, 160)
	// huh moves between fields and groups through commands, so a key sent
	// before the previous one is processed could reach the wrong field:
	// after each key, wait until the screen shows its effect, the focused
	// field (the one with the ┃ bar) with its title and value line.
	focused := func(title, value string) {
		t.Helper()
		term.expectScreen(t, fmt.Sprintf("the focus on %q showing %q", title, value), func(lines []string) bool {
			return slices.Contains(lines, "┃ "+title) && slices.Contains(lines, strings.TrimRight("┃ "+value, " "))
		})
	}
	key := func(k, title, value string) {
		t.Helper()
		if _, err := term.tty.Write([]byte(k)); err != nil {
			t.Fatal(err)
		}
		focused(title, value)
	}
	const enter, down, clear = "\r", "\x1b[B", "\x15" // ctrl+u clears an input
	focused("Worker id", "> org.example.signer")
	key(clear, "Worker id", ">")
	key("org.example.tui", "Worker id", "> org.example.tui")
	key(enter, "Worker species", "> wrk.doc.signer")
	key(enter, "Capabilities", "> cap.doc.sign")
	key(enter, "Risk tier", "> medium")
	key(down, "Risk tier", "> high")
	key(enter, "Controls", "> ctrl.obs.audit-log-append-only")
	key(enter, "Allowed environments", "> ✓ dev")
	key(enter, "Secrets", "> signing_key")
	key(enter, "Network egress", "> none")
	key(enter, "Writable directories", ">")
	key(enter, "Readable directories", "> /srv/documents")
	key(enter, "Blast radius: data", "> 1")
	key(clear, "Blast radius: data", ">")
	key("4", "Blast radius: data", "> 4")
	key(enter, "Blast radius: network", "> 0")
	key(enter, "Blast radius: financial", "> 0")
	key(enter, "Blast radius: time", "> 1")
	key(enter, "Reversibility", "> reversible")
	if _, err := term.tty.Write([]byte(enter)); err != nil { // submit
		t.Fatal(err)
	}
	screen, waitErr := term.wait(cmd)
	if waitErr != nil {
		t.Fatalf("hall build: %v; the terminal shows:\n%s", waitErr, screen)
	}
	var rec struct {
		WorkerID string                   `json:"worker_id"`
		RiskTier string                   `json:"risk_tier"`
		Envs     []string                 `json:"allowed_environments"`
		Blast    struct{ Data, Time int } `json:"blast_radius"`
		Envelope struct {
			Secrets []string `json:"secrets_access"`
			Reads   []string `json:"filesystem_reads"`
		} `json:"privilege_envelope"`
		ArtifactHash string `json:"artifact_hash"`
	}
	readJSON(t, filepath.Join(pkg, "registry_record.json"), &rec)
	if rec.WorkerID != "org.example.tui" || rec.RiskTier != "high" || rec.Blast.Data != 4 || rec.Blast.Time != 1 ||
		!slices.Equal(rec.Envs, []string{"dev"}) || !slices.Equal(rec.Envelope.Secrets, []string{"signing_key"}) ||
		!slices.Equal(rec.Envelope.Reads, []string{"/srv/documents"}) || rec.ArtifactHash != digestOf(t, out) {
		t.Errorf("record after the form: %+v", rec)
	}
}

// ptyScreen runs a command on a pseudo-terminal and records what it shows.
type ptyScreen struct {
	tty        *os.File
	rows, cols int
	mu         sync.Mutex
	buf        []byte
	seen       int           // buf[:seen] has been matched by ordered expectations
	changed    chan struct{} // closed (and replaced) when buf grows
	done       chan struct{}
}

func startPTY(t *testing.T, cmd *exec.Cmd, rows, cols uint16) *ptyScreen {
	t.Helper()
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: rows, Cols: cols})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tty.Close() })
	s := &ptyScreen{tty: tty, rows: int(rows), cols: int(cols), changed: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		b := make([]byte, 4096)
		for {
			n, err := tty.Read(b)
			s.mu.Lock()
			s.buf = append(s.buf, b[:n]...)
			close(s.changed)
			s.changed = make(chan struct{})
			s.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return s
}

// until waits up to a minute for cond, called with the output so far
// under the lock each time the program writes; it reports whether cond
// held. No polling: the reader wakes it.
func (s *ptyScreen) until(cond func() bool) bool {
	deadline := time.After(time.Minute) // a hang guard, not a speed check
	for {
		s.mu.Lock()
		ok, changed := cond(), s.changed
		s.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-changed:
		case <-s.done:
			s.mu.Lock()
			ok := cond()
			s.mu.Unlock()
			return ok
		case <-deadline:
			return false
		}
	}
}

// expect waits up to a minute for text on the screen: after the previous
// ordered match when ordered, anywhere otherwise.
func (s *ptyScreen) expect(t *testing.T, text string, ordered bool) {
	t.Helper()
	if s.until(func() bool {
		from := 0
		if ordered {
			from = s.seen
		}
		i := bytes.Index(s.buf[from:], []byte(text))
		if i >= 0 && ordered {
			s.seen = from + i + len(text)
		}
		return i >= 0
	}) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t.Fatalf("the terminal never showed %q; it shows:\n%s", text, s.buf[s.seen:])
}

// expectScreen waits up to a minute until the screen, as a terminal
// renders the output so far (renderScreen), satisfies ok.
func (s *ptyScreen) expectScreen(t *testing.T, what string, ok func(lines []string) bool) {
	t.Helper()
	if s.until(func() bool { return ok(renderScreen(s.buf, s.rows, s.cols)) }) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t.Fatalf("the screen never showed %s; it shows:\n%s", what, strings.Join(renderScreen(s.buf, s.rows, s.cols), "\n"))
}

// wait waits for the command and returns everything the terminal showed.
func (s *ptyScreen) wait(cmd *exec.Cmd) ([]byte, error) {
	err := cmd.Wait()
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf, err
}
