package main

import (
	"database/sql"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The Extism compatibility suite through the real binary: every test
// plugin shipped in the extism go-sdk module (wasm/) that a host can run
// without the go-sdk's own test harness, unmodified, enrolled with a
// record of testdata/extism and run through hall run and POST /wcp/run.
// docs/EXTISM.md is the table of what works and why.

type extismCase struct {
	name       string
	capability string
	input      string
	output     string // exact output of a successful run
	outcome    string // "ok" or the outcome code
	message    string // substring of the error (failed runs) or of the logs (--logs)
}

func extismCases(srvURL string) []extismCase {
	return []extismCase{
		{"count_vowels (Rust PDK)", "cap.extism.count-vowels", "hello world", `{"count":3,"total":3,"vowels":"aeiouAEIOU"}`, "ok", ""},
		{"hello_haskell, config from the record", "cap.extism.hello-haskell", "John", "Howdy, John", "ok", ""},
		{"config, hall.json overrides the record", "cap.extism.config", "", `{"config": "from hall.json"}`, "ok", ""},
		{"var, none kept across calls", "cap.extism.var", "", "a: 0", "ok", ""},
		{"log levels", "cap.extism.log", "", "", "ok", "[WARN] this is a warning log"},
		{"sleep 0", "cap.extism.sleep", "", "slept for 0 seconds", "ok", ""},
		{"sleep past timeout_ms", "cap.extism.sleep-long", "", "", "LIMIT_TIMEOUT", "stopped after 300ms"},
		{"fail: error_set", "cap.extism.fail", "", "", "WORKER_FAILED", "Some error message"},
		{"exit 0 (_start)", "cap.extism.exit", "", "", "ok", ""},
		{"exit 3 (_start)", "cap.extism.exit-3", "", "", "WORKER_TRAP", "exited with code 3"},
		{"http to an undeclared host", "cap.extism.http", "", "", "EGRESS_DENIED", "HTTP request to 'https://jsonplaceholder.typicode.com/todos/1' is not allowed"},
		{"http_headers to a declared host", "cap.extism.http-headers", `{"url":"` + srvURL + `/h"}`, "text/plain; charset=extism", "ok", ""},
		{"read a granted directory", "cap.extism.read-write", "", "hello world!", "ok", ""},
		{"write a read-only grant", "cap.extism.read-write.write", "x", "", "WORKER_FAILED", "Failed to write file"},
		{"fs reads the ungranted /mnt", "cap.extism.fs", "", "", "WORKER_FAILED", "export returned 1"},
	}
}

// extismHall enrolls every record of testdata/extism into a fresh Hall
// directory, with the test server's port and a data directory filled in.
func extismHall(t *testing.T, srvURL string) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/extism/go-sdk").Output()
	if err != nil {
		t.Fatalf("locating the extism go-sdk module (run go mod download): %v", err)
	}
	wasmDir := filepath.Join(strings.TrimSpace(string(out)), "wasm")
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	write(t, dir, "data/test.txt", "hello world!")
	rules, err := os.ReadFile("../../testdata/extism/rules.json")
	if err != nil {
		t.Fatal(err)
	}
	write(t, dir, "rules.json", string(rules))
	write(t, dir, "hall.json", `{"workers": {"org.extism.config": {"config": {"thing": "from hall.json"}}}}`)
	port := srvURL[strings.LastIndexByte(srvURL, ':')+1:]
	files, err := filepath.Glob("../../testdata/extism/*.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if filepath.Base(f) == "rules.json" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rec := strings.NewReplacer("{{PORT}}", port, "{{DATA}}", data).Replace(string(b))
		var head struct {
			Module string `json:"x_module"`
		}
		if err := json.Unmarshal([]byte(rec), &head); err != nil || head.Module == "" {
			t.Fatalf("%s: no x_module (%v)", f, err)
		}
		name := "records/" + filepath.Base(f)
		write(t, dir, name, rec)
		mustOK(t, hallIn(t, dir, "", nil, "enroll", filepath.Join(wasmDir, head.Module+".wasm"), "--record", name), "enroll "+f)
	}
	return dir
}

func extismServer(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "text/plain; charset=extism")
		rw.Write([]byte("hi"))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestExtismPlugins enrolls the plugins once, runs each through hall run,
// checks the egress telemetry in the ledger, then runs each again through
// POST /wcp/run of hall serve on the same directory.
func TestExtismPlugins(t *testing.T) {
	srv := extismServer(t)
	dir := extismHall(t, srv.URL)
	t.Run("hall run", func(t *testing.T) { extismHallRun(t, dir, srv.URL) })
	t.Run("/wcp/run", func(t *testing.T) { extismWCPRun(t, dir, srv.URL) })
}

func extismHallRun(t *testing.T, dir, srvURL string) {
	for _, tc := range extismCases(srvURL) {
		t.Run(tc.name, func(t *testing.T) {
			r := hallIn(t, dir, tc.input, nil, "run", tc.capability, "--tenant", "org.acme", "--logs")
			if tc.outcome == "ok" {
				mustOK(t, r, "run")
				checkExtismOutput(t, tc, r.stdout)
				if !strings.Contains(r.stderr, tc.message) {
					t.Errorf("stderr %q lacks %q", r.stderr, tc.message)
				}
				return
			}
			if r.code != exitWorkerFailed || !strings.Contains(r.stderr, "hall: "+tc.outcome+" ") || !strings.Contains(r.stderr, tc.message) {
				t.Fatalf("exit %d, stderr %q; want %d, %s and %q", r.code, r.stderr, exitWorkerFailed, tc.outcome, tc.message)
			}
		})
	}

	// Every exchange, allowed or refused, is in the dispatch's telemetry.
	db, err := sql.Open("sqlite", filepath.Join(dir, ".hall", "hall.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Worker events are in the signed entries of kind "events".
	rows, err := db.Query(`SELECT body FROM entries WHERE kind = 'events' ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []map[string]any
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		var body struct {
			Events []map[string]any `json:"events"`
		}
		json.Unmarshal([]byte(s), &body)
		for _, ev := range body.Events {
			if ev["event_id"] == "evt.hall.egress.request" {
				got = append(got, ev)
			}
		}
	}
	if len(got) != 2 || got[0]["outcome"] != "EGRESS_DENIED" || got[1]["outcome"] != "ok" || got[1]["url"] != srvURL+"/h" || got[1]["status"] != float64(200) {
		t.Fatalf("egress telemetry in the ledger: %v", got)
	}
}

func extismWCPRun(t *testing.T, dir, srvURL string) {
	home := filepath.Join(dir, ".hall")
	tok := hall(t, dir, "", "tokens", "create", "--tenant", "org.acme", "--home", home)
	mustOK(t, tok, "tokens create")
	token := strings.TrimSpace(tok.stdout)
	base, _, _ := startServe(t, dir, "--home", home)
	for _, tc := range extismCases(srvURL) {
		t.Run(tc.name, func(t *testing.T) {
			body, _ := json.Marshal(map[string]any{
				"input":   map[string]any{"capability_id": tc.capability, "env": "dev", "data_label": "INTERNAL", "tenant_risk": "low", "qos_class": "P2", "correlation_id": "extism-" + tc.capability},
				"payload": tc.input,
			})
			r := curl(t, "POST", base+"/wcp/run", token, "application/json", body)
			if tc.outcome == "ok" {
				if r.status != 200 || r.body["outcome"] != "ok" {
					t.Fatalf("%d %s", r.status, r.raw)
				}
				out, _ := r.body["output"].(string)
				checkExtismOutput(t, tc, out)
				return
			}
			e, _ := r.body["error"].(map[string]any)
			if r.body["outcome"] != tc.outcome || e["code"] != tc.outcome || !strings.Contains(e["message"].(string), tc.message) {
				t.Fatalf("%d %s; want outcome %s and %q", r.status, r.raw, tc.outcome, tc.message)
			}
		})
	}
}

func checkExtismOutput(t *testing.T, tc extismCase, out string) {
	t.Helper()
	if tc.capability == "cap.extism.http-headers" {
		// The response headers, as a JSON object (the date varies).
		var h map[string]string
		if err := json.Unmarshal([]byte(out), &h); err != nil || h["content-type"] != tc.output {
			t.Fatalf("output %q (%v), want headers with content-type %q", out, err, tc.output)
		}
		return
	}
	if out != tc.output {
		t.Fatalf("output %q, want %q", out, tc.output)
	}
}
