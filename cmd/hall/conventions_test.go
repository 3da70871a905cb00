package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestUsageConventions covers the CLI's usage errors: each exits 1 with one
// message on standard error (and nothing on standard output), never the
// whole help, never exit 3 (the status of a worker that ran and failed).
func TestUsageConventions(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"unknown command", []string{"stauts"}, []string{`unknown command "stauts"`, `did you mean "status"?`}},
		{"unknown command far from any", []string{"frobnicate"}, []string{`unknown command "frobnicate"`, "hall --help"}},
		{"unknown subcommand", []string{"tokens", "creat"}, []string{`unknown subcommand of hall tokens "creat"`, `did you mean "create"?`}},
		{"extra argument", []string{"route", "--capability", "cap.x", "stray"}, []string{"route takes no arguments", `"stray"`}},
		{"extra arguments to run", []string{"run", "cap.x", "y"}, []string{"run"}},
		{"unknown flag", []string{"route", "--capabilty", "cap.x"}, []string{"unknown flag --capabilty", "hall route --help"}},
		{"missing required flag", []string{"route"}, []string{"--capability is required"}},
		{"missing required flag of keys admit", []string{"keys", "admit", "abc"}, []string{"--name is required"}},
		{"missing required flag of record embed", []string{"record", "embed", "x.wasm"}, []string{"--record is required"}},
		{"run without capability", []string{"run"}, []string{"run needs the CAPABILITY"}},
		{"completion without shell", []string{"completion"}, []string{"bash, zsh or fish"}},
		{"completion unknown shell", []string{"completion", "bsh"}, []string{`did you mean "bash"?`}},
		{"global flag without value", []string{"--home"}, []string{"--home needs a value"}},
		{"unknown flag before command", []string{"--verbose", "status"}, []string{"unknown flag --verbose before the command"}},
		{"global flag typo", []string{"--versoin"}, []string{"unknown flag --versoin before the command", "did you mean --version?"}},
		{"global flag typo with value", []string{"--hom=/tmp", "status"}, []string{"did you mean --home?"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := hall(t, dir, "", tc.args...)
			if r.code != exitError {
				t.Fatalf("exit %d, want %d; stdout %q stderr %q", r.code, exitError, r.stdout, r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("a usage error printed on standard output:\n%s", r.stdout)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
			if strings.Contains(r.stderr, "USAGE:") || strings.Count(r.stderr, "\n") > 3 {
				t.Errorf("stderr is more than the problem and where to read the usage:\n%s", r.stderr)
			}
		})
	}
}

func TestVersionForms(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{{"version"}, {"--version"}, {"-v"}} {
		r := hall(t, dir, "", args...)
		if r.code != 0 || !strings.HasPrefix(r.stdout, "hall ") || r.stderr != "" {
			t.Errorf("hall %v: exit %d stdout %q stderr %q", args, r.code, r.stdout, r.stderr)
		}
	}
	r := hall(t, dir, "", "version", "--json")
	var v struct{ Version, Go, Module string }
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v.Version == "" || !strings.HasPrefix(v.Go, "go") || v.Module != hallModule {
		t.Errorf("version --json: %v %+v\n%s", err, v, r.stdout)
	}
}

// TestGlobalFlagsBeforeCommand: --home before the command is the same
// state directory as after it.
func TestGlobalFlagsBeforeCommand(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(t.TempDir(), "state")
	r := hall(t, dir, "", "--home", home, "tokens", "create", "--admin")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	r = hall(t, dir, "", "tokens", "list", "--json", "--home="+home)
	var toks []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &toks); err != nil || len(toks) != 1 {
		t.Fatalf("the token created with --home before the command is not in %s: %v %s %s", home, err, r.stdout, r.stderr)
	}
	// A global flag the command does not use is accepted and ignored.
	if r := hall(t, dir, "", "--home", home, "version"); r.code != 0 {
		t.Errorf("hall --home DIR version: exit %d %s", r.code, r.stderr)
	}
}

func TestCompletionScripts(t *testing.T) {
	dir := t.TempDir()
	for _, sh := range []string{"bash", "zsh", "fish"} {
		r := hall(t, dir, "", "completion", sh)
		if r.code != 0 || !strings.Contains(r.stdout, "hall") {
			t.Errorf("completion %s: exit %d %s", sh, r.code, r.stderr)
		}
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	// The bash script, sourced, completes a command name and a flag from
	// the binary itself.
	script := `source <(hall completion bash)
COMP_WORDS=(hall sta); COMP_CWORD=1; _hall_complete; echo "cmds: ${COMPREPLY[*]}"
COMP_WORDS=(hall route --capa); COMP_CWORD=2; _hall_complete; echo "flags: ${COMPREPLY[*]}"`
	cmd := exec.Command("bash", "-c", script)
	cmd.Dir = dir
	cmd.Env = testEnv("HALL_HOME=" + filepath.Join(dir, "home"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(string(out), "cmds: status") || !strings.Contains(string(out), "flags: --capability") {
		t.Errorf("bash completion:\n%s", out)
	}
}

// TestStatus: a fresh folder, then one with a worker and a server.
func TestStatus(t *testing.T) {
	dir := t.TempDir()
	if r := hall(t, dir, "", "status", "--addr", "127.0.0.1:1"); r.code != exitError || !strings.Contains(r.stderr, "no Hall here") {
		t.Fatalf("status in a folder with no Hall: exit %d %s", r.code, r.stderr)
	}
	if err := os.Mkdir(filepath.Join(dir, ".hall"), 0o700); err != nil {
		t.Fatal(err)
	}
	r := hallWith(t, dir, "", []string{"HALL_HOME=" + filepath.Join(dir, ".hall")}, "status", "--json", "--addr", "127.0.0.1:1")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var st statusReport
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	if st.Rules.Exists || st.Rules.Count != 0 || len(st.Workers) != 0 || st.ComplianceLevel != "WCP-Full" || st.Server.Answering || !st.Online {
		t.Errorf("status of an empty folder: %+v", st)
	}
	r = hall(t, routedir, "", "status", "--addr", "127.0.0.1:1")
	for _, w := range []string{"rules:", "workers:       1 enrolled", "capabilities:  cap.doc.summarize", "compliance:    WCP-", "head receipt: none", "nothing answers on http://127.0.0.1:1"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("status lacks %q:\n%s%s", w, r.stdout, r.stderr)
		}
	}
}

// TestNoTerminalQueryOutsideWizard runs `hall version` on a pseudo-terminal
// that never answers: no colour or cursor query may be written to it (a
// TUI library querying the terminal at package init stalled every command
// for its 5 s timeout on such terminals, and ate typed input).
func TestNoTerminalQueryOutsideWizard(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"status", "--addr", "127.0.0.1:1"}} {
		cmd := exec.Command(hallBin, args...)
		cmd.Dir = t.TempDir()
		cmd.Env = testEnv("TERM=xterm-256color", "HALL_HOME="+filepath.Join(cmd.Dir, "home"))
		if err := os.Mkdir(filepath.Join(cmd.Dir, "home"), 0o700); err != nil { // a Hall for status to read
			t.Fatal(err)
		}
		s := startPTY(t, cmd, 24, 80)
		done := make(chan error, 1)
		go func() { _, err := s.wait(cmd); done <- err }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("hall %v: %v", args, err)
			}
		case <-time.After(time.Minute): // a hang guard, not a speed check
			cmd.Process.Kill()
			t.Fatalf("hall %v did not return on a silent terminal", args)
		}
		s.mu.Lock()
		out := append([]byte(nil), s.buf...)
		s.mu.Unlock()
		for _, q := range []string{"\x1b]10;?", "\x1b]11;?", "\x1b[6n", "\x1b[c", "\x1b[>c", "\x1bP+q"} {
			if bytes.Contains(out, []byte(q)) {
				t.Errorf("hall %v queried the terminal (%q):\n%q", args, q, out)
			}
		}
	}
}

// TestNewBuildsAnywhere scaffolds a worker outside the repository, builds
// it with hall build from another folder (offline: GOPROXY=off), runs its
// test, enrolls and runs it.
func TestNewBuildsAnywhere(t *testing.T) {
	work := t.TempDir()
	home := filepath.Join(work, ".hall")
	env := []string{"HALL_HOME=" + home}
	r := hallWith(t, work, "", env, "new", "wordcount")
	if r.code != 0 {
		t.Fatalf("new: exit %d: %s", r.code, r.stderr)
	}
	for _, f := range []string{"go.mod", "main.go", "main_test.go", "registry_record.json", ".gitignore"} {
		if _, err := os.Stat(filepath.Join(work, "wordcount", f)); err != nil {
			t.Errorf("scaffold lacks %s", f)
		}
	}
	if r := hallWith(t, work, "", env, "new", "wordcount"); r.code != exitError || !strings.Contains(r.stderr, "already exists") {
		t.Errorf("new over an existing folder: exit %d %s", r.code, r.stderr)
	}
	test := exec.Command("go", "test", "./...")
	test.Dir = filepath.Join(work, "wordcount")
	test.Env = testEnv()
	if out, err := test.CombinedOutput(); err != nil {
		t.Fatalf("the scaffold's test fails: %v\n%s", err, out)
	}
	recPath := filepath.Join(work, "wordcount", "registry_record.json")
	before, _ := os.ReadFile(recPath)
	other := t.TempDir()
	r = hallWith(t, other, "", env, "build", filepath.Join(work, "wordcount"), "--no-input")
	if r.code != 0 {
		t.Fatalf("build: exit %d: %s", r.code, r.stderr)
	}
	// Built from elsewhere: the module lands in the working directory and
	// the source tree is left as it was.
	if after, _ := os.ReadFile(recPath); string(after) != string(before) {
		t.Errorf("hall build of a package elsewhere rewrote its record:\n%s", after)
	}
	if _, err := os.Stat(filepath.Join(work, "wordcount", "wordcount.wasm")); err == nil {
		t.Errorf("hall build left a module in the source tree")
	}
	// Built from its own folder, a new (untracked) worker's record gets the
	// module's digest; once git tracks it without one, it is left alone.
	if r := hallWith(t, work, "", env, "build", "wordcount", "--no-input", "-o", filepath.Join(t.TempDir(), "w.wasm")); r.code != 0 {
		t.Fatalf("build: %s", r.stderr)
	}
	if after, _ := os.ReadFile(recPath); !strings.Contains(string(after), `"artifact_hash": "sha256:`) {
		t.Errorf("the new worker's record has no artifact_hash:\n%s", after)
	}
	if _, err := exec.LookPath("git"); err == nil {
		src := filepath.Join(work, "wordcount")
		write(t, src, "registry_record.json", string(before))
		for _, args := range [][]string{{"init", "-q"}, {"add", "registry_record.json"}, {"-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "r"}} {
			if out, err := exec.Command("git", append([]string{"-C", src}, args...)...).CombinedOutput(); err != nil {
				t.Fatalf("git %v: %v %s", args, err, out)
			}
		}
		if r := hallWith(t, src, "", env, "build", "--no-input", "-o", filepath.Join(t.TempDir(), "w.wasm")); r.code != 0 {
			t.Fatalf("build: %s", r.stderr)
		}
		if after, _ := os.ReadFile(recPath); string(after) != string(before) {
			t.Errorf("hall build rewrote a tracked record:\n%s", after)
		}
	}
	if r := hallWith(t, other, "", env, "enroll", "wordcount.wasm"); r.code != 0 {
		t.Fatalf("enroll: exit %d: %s", r.code, r.stderr)
	}
	r = hallWith(t, other, "one two\nthree\n", env, "run", "cap.example.wordcount")
	if r.code != 0 || strings.TrimSpace(r.stdout) != `{"words":3,"lines":2}` {
		t.Fatalf("run: exit %d stdout %q stderr %s", r.code, r.stdout, r.stderr)
	}
}

// TestUndeclaredWriteNamesTheFix: a worker writing outside its
// filesystem_writes fails (exit 3) with a hint naming the path and
// privilege_envelope.filesystem_writes; inside, the write succeeds.
func TestUndeclaredWriteNamesTheFix(t *testing.T) {
	work := t.TempDir()
	env := []string{"HALL_HOME=" + filepath.Join(work, ".hall")}
	if r := hallWith(t, work, "", env, "new", "writer"); r.code != 0 {
		t.Fatalf("new: %s", r.stderr)
	}
	main := filepath.Join(work, "writer", "main.go")
	src, err := os.ReadFile(main)
	if err != nil {
		t.Fatal(err)
	}
	// The handler writes its input's first line as a path.
	s := strings.Replace(string(src), `import (
	"bytes"
`, `import (
	"bytes"
	"os"
`, 1)
	s = strings.Replace(s, `	return Counts{Words: len(bytes.Fields(input)), Lines: bytes.Count(input, []byte("\n"))}, nil`,
		`	path := string(bytes.TrimSpace(input))
	if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
		return Counts{}, err
	}
	return Counts{Words: 1}, nil`, 1)
	if s == string(src) {
		t.Fatal("the scaffold changed; update the test's edit")
	}
	write(t, filepath.Join(work, "writer"), "main.go", s)
	out := filepath.Join(work, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	if r := hallWith(t, work, "", env, "build", "writer", "--no-input", "--write-dir", out); r.code != 0 {
		t.Fatalf("build: %s", r.stderr)
	}
	if r := hallWith(t, work, "", env, "enroll", "writer.wasm"); r.code != 0 {
		t.Fatalf("enroll: %s", r.stderr)
	}
	if r := hallWith(t, work, filepath.Join(out, "ok.txt"), env, "run", "cap.example.writer"); r.code != 0 {
		t.Fatalf("a declared write failed: exit %d %s", r.code, r.stderr)
	}
	outside := filepath.Join(work, "elsewhere.txt")
	r := hallWith(t, work, outside, env, "run", "cap.example.writer")
	if r.code != exitWorkerFailed {
		t.Fatalf("exit %d, want %d: %s", r.code, exitWorkerFailed, r.stderr)
	}
	for _, w := range []string{"hall: hint: " + outside, "privilege_envelope.filesystem_writes [" + out + "]", "--write-dir"} {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
		}
	}
	if _, err := os.Stat(outside); err == nil {
		t.Errorf("the undeclared write reached %s", outside)
	}
}

// TestServeOneLogFormat: every line hall serve writes is a record of the
// format asked for, the first one the startup summary, and the OpenAPI
// document is served.
func TestServeOneLogFormat(t *testing.T) {
	dir := t.TempDir()
	copyFiles(t, routedir, dir, "rules.json")
	base, cmd, logs := startServe(t, dir, "--home", filepath.Join(dir, ".hall"))
	r := curl(t, "GET", base+"/openapi.json", "", "", nil)
	if r.status != 200 || r.body["openapi"] != "3.1.0" {
		t.Fatalf("GET /openapi.json: %d %s", r.status, r.raw)
	}
	cmd.Process.Signal(os.Interrupt)
	cmd.Wait()
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	var first map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil || first["msg"] != "hall: serving the Hall API" {
		t.Fatalf("the first line is not the startup summary: %v\n%s", err, lines[0])
	}
	for _, k := range []string{"url", "home", "rules", "workers", "compliance_level", "version"} {
		if _, ok := first[k]; !ok {
			t.Errorf("the startup summary lacks %s: %s", k, lines[0])
		}
	}
	for _, l := range lines {
		if !json.Valid([]byte(l)) {
			t.Errorf("a line that is not a JSON record: %q", l)
		}
	}
	if !strings.Contains(logs.String(), "hall: stopped") {
		t.Errorf("no stop record:\n%s", logs.String())
	}

	// --log-format text: key=value lines throughout.
	text := exec.Command(hallBin, "serve", "--addr", "127.0.0.1:0", "--log-format", "text", "--home", filepath.Join(dir, ".hall"))
	text.Dir = dir
	text.Env = testEnv()
	out := &syncBuffer{}
	text.Stderr = out
	if err := text.Start(); err != nil {
		t.Fatal(err)
	}
	defer text.Process.Kill()
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(out.String(), "msg=\"hall: serving the Hall API\""); {
		if time.Now().After(deadline) {
			t.Fatalf("no text startup summary:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(out.String(), "compliance_level=") || strings.HasPrefix(strings.TrimSpace(out.String()), "{") {
		t.Errorf("text log:\n%s", out.String())
	}
	if r := hall(t, dir, "", "serve", "--log-format", "xml"); r.code != exitError || !strings.Contains(r.stderr, "json or text") {
		t.Errorf("--log-format xml: exit %d %s", r.code, r.stderr)
	}
}

// TestReadCommandsJSON: read commands answer JSON with --json.
func TestReadCommandsJSON(t *testing.T) {
	dir := t.TempDir()
	r := hall(t, dir, "", "conformance", "check", "--json", filepath.Join(repoRoot, "testdata", "vectors", "random.json"))
	var res struct{ Passed, Failed int }
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || r.code != 0 || res.Passed == 0 || res.Failed != 0 {
		t.Errorf("conformance check --json: exit %d %v %+v\n%s", r.code, err, res, r.stderr)
	}
}

// TestStateDirectoryErrorIsAnError: a state directory that cannot be
// opened is exit 1 naming it, not a denial.
func TestStateDirectoryErrorIsAnError(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "notadir", "x")
	r := hall(t, routedir, "", "run", "cap.doc.summarize", "--home", filepath.Join(dir, "notadir"))
	if r.code != exitError || !strings.Contains(r.stderr, "notadir") || strings.Contains(r.stderr, "DENIED") {
		t.Errorf("exit %d stderr %s", r.code, r.stderr)
	}
}

// TestTenantDefaults: --tenant, else HALL_TENANT, else hall.json's
// default_tenant, else "local" (said when assumed).
func TestTenantDefaults(t *testing.T) {
	dir := t.TempDir()
	copyFiles(t, routedir, dir, "rules.json")
	tenant := func(r result) string {
		var d struct {
			Tenant string `json:"tenant_id"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &d); err != nil {
			t.Fatalf("%v: %s %s", err, r.stdout, r.stderr)
		}
		return d.Tenant
	}
	args := []string{"route", "--capability", "cap.doc.summarize", "--json"}
	if r := hall(t, dir, "", args...); tenant(r) != "local" || !strings.Contains(r.stderr, "tenant: local (the CLI's default") {
		t.Errorf("no tenant given: %q, stderr %s", tenant(r), r.stderr)
	}
	if r := hallWith(t, dir, "", []string{"HALL_TENANT=org.env", "HALL_HOME=" + filepath.Join(dir, "h")}, args...); tenant(r) != "org.env" || strings.Contains(r.stderr, "tenant:") {
		t.Errorf("HALL_TENANT: %q %s", tenant(r), r.stderr)
	}
	write(t, dir, "hall.json", `{"default_tenant": "org.file"}`)
	if r := hall(t, dir, "", args...); tenant(r) != "org.file" {
		t.Errorf("hall.json default_tenant: %q %s", tenant(r), r.stderr)
	}
	if r := hall(t, dir, "", append(args, "--tenant", "org.flag")...); tenant(r) != "org.flag" {
		t.Errorf("--tenant: %q", tenant(r))
	}
}

// TestMisspeltRecordFieldRefused: hall build and hall enroll refuse a
// record member the schema does not know, naming the closest one.
func TestMisspeltRecordFieldRefused(t *testing.T) {
	dir := t.TempDir()
	rec, err := os.ReadFile(filepath.Join(repoRoot, "plugins", "summarizer", "registry_record.json"))
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(rec), `"risk_tier"`, `"risk_teir": "low", "risk_tier"`, 1)
	write(t, dir, "registry_record.json", bad)
	r := hall(t, dir, "", "build", "--no-input", "--no-store")
	if r.code != exitError || !strings.Contains(r.stderr, `risk_teir: is not a registry record field; did you mean "risk_tier"?`) {
		t.Errorf("build: exit %d %s", r.code, r.stderr)
	}
}

// TestEvidenceReadCommandsJSON: audit verify and keys show answer JSON.
func TestEvidenceReadCommandsJSON(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	env := []string{"HALL_HOME=" + home}
	// Read commands create no Hall (issue 27): make one first.
	mustOK(t, hallWith(t, dir, "", env, "tokens", "create", "--admin"), "tokens create")
	r := hallWith(t, dir, "", env, "keys", "show", "--json")
	var k struct {
		KeyID     string `json:"key_id"`
		PublicKey string `json:"public_key"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &k); err != nil || r.code != 0 || k.KeyID == "" || !strings.Contains(k.PublicKey, "PUBLIC KEY") {
		t.Errorf("keys show --json: exit %d %v %+v %s", r.code, err, k, r.stderr)
	}
	r = hallWith(t, dir, "", env, "audit", "verify", "--json")
	var v struct {
		OK     bool     `json:"ok"`
		Breaks []string `json:"breaks"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || r.code != 0 || !v.OK || v.Breaks == nil {
		t.Errorf("audit verify --json: exit %d %v %+v %s", r.code, err, v, r.stderr)
	}
}
