package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The soak test of issue 10: the real `hall serve` in a fresh directory,
// hostile workers (testdata/soak/hostile.json) dispatched from several
// goroutines by one tenant while a benign tenant dispatches the quick
// start's summarizer without pause. Containment means: the benign tenant is
// served, every hostile dispatch ends in its own recorded limit or trap
// code, the server's memory stays bounded, and afterwards the server
// answers /health, stops cleanly and its ledger verifies.
//
// HALL_SOAK_SECONDS sets the duration (default soakDefaultSeconds, what
// `make test` runs; `make soak` runs the long one); HALL_SOAK_REPORT names
// a file the figures are written to as JSON; HALL_SOAK_HOSTILE sets the
// number of hostile goroutines (0: the benign tenant's baseline, where the
// hostile assertions are skipped).

const (
	// soakDefaultSeconds keeps the soak short in `make test`.
	soakDefaultSeconds = 8
	// soakHostileGoroutines dispatch hostile capabilities, each cycling
	// through all of them from its own starting point; with the default
	// dispatch bound (16 per CPU) they cannot take every slot.
	soakHostileGoroutines = 8
	// soakMaxHostileGoroutines bounds HALL_SOAK_HOSTILE. The dispatch
	// slots are shared fairly between tenants (host/admission.go): beyond
	// them the hostile tenant's own dispatches are refused as saturated,
	// while the benign tenant still gets the next free slot.
	soakMaxHostileGoroutines = 64
	// soakBenignGoroutines dispatch the benign worker back to back.
	soakBenignGoroutines = 2
	// soakPeakRSSBound is the documented bound on the server's peak RSS
	// (VmHWM) during the soak.
	soakPeakRSSBound = 2 << 30
	// soakMinBenignOK and soakMaxSaturated: the benign tenant's success
	// rate among the requests not refused with 503 HALL_SATURATED, and the
	// largest share of those refusals.
	soakMinBenignOK  = 0.99
	soakMaxSaturated = 0.05
)

// soakSpec is testdata/soak/hostile.json.
type soakSpec struct {
	Enrolled []struct {
		Module  string                         `json:"module"`
		Trigger bool                           `json:"trigger"`
		Record  map[string]any                 `json:"record"`
		Expect  map[string]soakExpectedOutcome `json:"expect"`
	} `json:"enrolled"`
	Refused []struct {
		Module  string         `json:"module"`
		Record  map[string]any `json:"record"`
		Code    string         `json:"code"`
		Message string         `json:"message"`
	} `json:"refused"`
}

// soakExpectedOutcome is what a hostile dispatch must answer: its code,
// HTTP status, and a regular expression its message matches.
type soakExpectedOutcome struct {
	Code    string `json:"code"`
	Status  int    `json:"status"`
	Message string `json:"message"`
}

func (e soakExpectedOutcome) matches(r soakResponse) bool {
	return r.status == e.Status && r.code == e.Code && regexp.MustCompile(e.Message).MatchString(r.message)
}

// soakTimeLimit is the outcome any hostile dispatch may end in besides its
// own: on a loaded machine the time limit can strike first (a recursion
// still short of the stack ceiling, a memory still short of its limit, an
// instance still being made).
var soakTimeLimit = soakExpectedOutcome{Code: "LIMIT_TIMEOUT", Status: 504,
	Message: "stopped after|instantiation .*did not finish within the time limit"}

// soakReport is what the soak measured; its line is what t.Logf prints and
// the whole is what HALL_SOAK_REPORT receives.
type soakReport struct {
	Seconds            float64                 `json:"seconds"`
	HostileWorkers     int                     `json:"hostile_workers"`
	HostileGoroutines  int                     `json:"hostile_goroutines"`
	BenignGoroutines   int                     `json:"benign_goroutines"`
	Benign             int                     `json:"benign"`
	BenignOK           int                     `json:"benign_ok"`
	BenignSaturated    int                     `json:"benign_saturated"`
	BenignFailed       int                     `json:"benign_failed"`
	BenignOKPct        float64                 `json:"benign_ok_pct"`
	BenignSatPct       float64                 `json:"benign_saturated_pct"`
	BenignP50Ms        float64                 `json:"benign_p50_ms"`
	BenignP99Ms        float64                 `json:"benign_p99_ms"`
	BenignMaxMs        float64                 `json:"benign_max_ms"`
	Hostile            int                     `json:"hostile"`
	HostileOutcomes    map[string]int          `json:"hostile_outcomes"`
	HostileSaturated   int                     `json:"hostile_saturated"`
	HostileUncontained int                     `json:"hostile_uncontained"`
	HostileMaxMs       float64                 `json:"hostile_max_ms"`
	ByCapability       map[string]soakCapStats `json:"by_capability"`
	PeakRSSMiB         float64                 `json:"peak_rss_mib"`
	PeakRSSBoundMiB    float64                 `json:"peak_rss_bound_mib"`
	Health             string                  `json:"health"`
	Audit              string                  `json:"audit"`
	Line               string                  `json:"line"`
}

type soakCapStats struct {
	N     int            `json:"n"`
	Codes map[string]int `json:"codes"`
	MaxMs float64        `json:"max_ms"`
}

// soakResponse is one /wcp/run answer as the soak sees it.
type soakResponse struct {
	status    int
	code      string // error.code, or "ok"
	message   string
	receiptID string
	output    string
	elapsed   time.Duration
	err       error // the request itself failed (no answer)
}

func TestSoak(t *testing.T) {
	seconds := float64(soakDefaultSeconds)
	if s := os.Getenv("HALL_SOAK_SECONDS"); s != "" {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || v <= 0 {
			t.Fatalf("HALL_SOAK_SECONDS=%q: want a positive number of seconds", s)
		}
		seconds = v
	}
	hostileGoroutines := soakHostileGoroutines
	if s := os.Getenv("HALL_SOAK_HOSTILE"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 || v > soakMaxHostileGoroutines {
			t.Fatalf("HALL_SOAK_HOSTILE=%q: want a number of goroutines from 0 to %d", s, soakMaxHostileGoroutines)
		}
		hostileGoroutines = v
	}
	var spec soakSpec
	readJSON(t, "../../testdata/soak/hostile.json", &spec)
	triggerDir := t.TempDir() // read by the trigger workers; outside the Hall's directory
	h := newSoakHall(t, spec)
	dir, cmd, logs := h.dir, h.cmd, h.logs
	do, enroll, run := h.do, h.enroll, h.run
	benignTok, hostileTok := h.benign, h.hostile
	module := func(src string) []byte { return soakModule(t, src) }

	// The benign worker: the quick start's summarizer.
	summarizer, err := os.ReadFile(plugin(t, "summarizer"))
	if err != nil {
		t.Fatal(err)
	}
	var benignRecord map[string]any
	readJSON(t, "../../plugins/summarizer/registry_record.json", &benignRecord)
	if st, body := enroll(summarizer, benignRecord); st != 201 {
		t.Fatalf("enroll the summarizer: %d %v", st, body)
	}

	// Modules refused at enroll, within their time limit.
	for _, r := range spec.Refused {
		st, body := enroll(module(r.Module), r.Record)
		e, _ := body["error"].(map[string]any)
		code, _ := e["code"].(string)
		msg, _ := e["message"].(string)
		if st/100 != 4 || !strings.Contains(code+" "+msg, r.Code) || !strings.Contains(msg, r.Message) {
			t.Errorf("enroll %s (%s): %d %v; want a 4xx refusal naming %s and %q", r.Record["worker_id"], r.Module, st, body, r.Code, r.Message)
		}
	}

	// The hostile workers; a trigger worker is dispatched once, cleanly,
	// before its trigger exists (its start section is harmless until then).
	type hostileCap struct {
		capability string
		expect     soakExpectedOutcome
	}
	var caps []hostileCap
	for _, w := range spec.Enrolled {
		if w.Trigger {
			w.Record["privilege_envelope"] = map[string]any{"filesystem_reads": []string{triggerDir}}
		}
		if st, body := enroll(module(w.Module), w.Record); st != 201 {
			t.Fatalf("enroll %s: %d %v", w.Record["worker_id"], st, body)
		}
		for capability, want := range w.Expect {
			caps = append(caps, hostileCap{capability, want})
			if w.Trigger {
				if r := run(hostileTok, capability, "soak-before-trigger-"+capability, ""); r.err != nil || r.code != "ok" {
					t.Fatalf("%s before its trigger: %d %s %s %v", capability, r.status, r.code, r.message, r.err)
				}
			}
		}
	}
	sort.Slice(caps, func(i, j int) bool { return caps[i].capability < caps[j].capability })
	if r := run(benignTok, "cap.doc.summarize", "soak-benign-first", document); r.err != nil || r.code != "ok" || r.output == "" {
		t.Fatalf("the benign worker does not serve before the soak: %+v", r)
	}
	write(t, triggerDir, "trigger", "")
	// Instances made before the trigger may still be pooled: drain them.
	for _, c := range caps {
		for i := 0; ; i++ {
			r := run(hostileTok, c.capability, fmt.Sprintf("soak-drain-%s-%d", c.capability, i), "")
			if r.err == nil && (c.expect.matches(r) || soakTimeLimit.matches(r)) {
				break
			}
			if r.err != nil || r.code != "ok" || i == 100 {
				t.Fatalf("%s after its trigger, dispatch %d: %d %s %s %v", c.capability, i, r.status, r.code, r.message, r.err)
			}
		}
	}

	// The soak.
	type sample struct {
		capability string
		r          soakResponse
	}
	var (
		mu      sync.Mutex
		hostile []sample
		benign  []soakResponse
		wg      sync.WaitGroup
	)
	deadline := time.Now().Add(time.Duration(seconds * float64(time.Second)))
	started := time.Now()
	for g := range hostileGoroutines {
		wg.Go(func() {
			for i := 0; time.Now().Before(deadline); i++ {
				c := caps[(g+i)%len(caps)]
				r := run(hostileTok, c.capability, fmt.Sprintf("soak-hostile-%d-%d", g, i), "")
				mu.Lock()
				hostile = append(hostile, sample{c.capability, r})
				mu.Unlock()
			}
		})
	}
	for g := range soakBenignGoroutines {
		wg.Go(func() {
			for i := 0; time.Now().Before(deadline); i++ {
				r := run(benignTok, "cap.doc.summarize", fmt.Sprintf("soak-benign-%d-%d", g, i), document)
				mu.Lock()
				benign = append(benign, r)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(started)

	rep := soakReport{
		Seconds:           math.Round(elapsed.Seconds()*10) / 10,
		HostileGoroutines: hostileGoroutines,
		BenignGoroutines:  soakBenignGoroutines,
		HostileWorkers:    len(spec.Enrolled),
		HostileOutcomes:   map[string]int{},
		ByCapability:      map[string]soakCapStats{},
		PeakRSSBoundMiB:   soakPeakRSSBound >> 20,
	}

	// The benign tenant.
	var lat []time.Duration
	var benignProblems []string
	for _, r := range benign {
		rep.Benign++
		switch {
		case r.err == nil && r.status == 200 && r.code == "ok" && r.output != "" && r.receiptID != "":
			rep.BenignOK++
			lat = append(lat, r.elapsed)
		case r.err == nil && r.status == 503 && r.code == "HALL_SATURATED":
			rep.BenignSaturated++
		default:
			rep.BenignFailed++
			if len(benignProblems) < 5 {
				benignProblems = append(benignProblems, fmt.Sprintf("%d %s %s %v (%v)", r.status, r.code, r.message, r.err, r.elapsed))
			}
		}
	}
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Millisecond)*10) / 10 }
	rep.BenignP50Ms, rep.BenignP99Ms = ms(percentile(lat, 50)), ms(percentile(lat, 99))
	if len(lat) > 0 {
		rep.BenignMaxMs = ms(lat[len(lat)-1])
	}
	if served := rep.Benign - rep.BenignSaturated; served > 0 {
		rep.BenignOKPct = math.Round(float64(rep.BenignOK)/float64(served)*10000) / 100
	}
	if rep.Benign > 0 {
		rep.BenignSatPct = math.Round(float64(rep.BenignSaturated)/float64(rep.Benign)*10000) / 100
	}

	// The hostile tenant: each dispatch ends in its capability's code, with
	// a receipt.
	want := map[string]soakExpectedOutcome{}
	for _, c := range caps {
		want[c.capability] = c.expect
	}
	hostileReceipts := map[string]string{} // receipt id → outcome answered
	var hostileProblems []string
	var hostileMax time.Duration
	for _, s := range hostile {
		r, exp := s.r, want[s.capability]
		rep.Hostile++
		hostileMax = max(hostileMax, r.elapsed)
		st := rep.ByCapability[s.capability]
		if st.Codes == nil {
			st.Codes = map[string]int{}
		}
		st.N++
		st.MaxMs = max(st.MaxMs, ms(r.elapsed))
		code := r.code
		if r.err != nil {
			code = "NO_ANSWER"
		}
		st.Codes[code]++
		rep.ByCapability[s.capability] = st
		switch {
		case r.err == nil && r.status == 503 && r.code == "HALL_SATURATED":
			rep.HostileSaturated++
		case r.err == nil && r.receiptID != "" && (exp.matches(r) || soakTimeLimit.matches(r)):
			rep.HostileOutcomes[r.code]++
			hostileReceipts[r.receiptID] = r.code
		default:
			rep.HostileUncontained++
			if len(hostileProblems) < 8 {
				hostileProblems = append(hostileProblems, fmt.Sprintf("%s: %d %s %q receipt %q %v (%v); want %d %s %q",
					s.capability, r.status, r.code, r.message, r.receiptID, r.err, r.elapsed, exp.Status, exp.Code, exp.Message))
			}
		}
	}
	rep.HostileMaxMs = ms(hostileMax)

	// After the soak: the server's peak memory, /health, a clean stop.
	pid := cmd.Process.Pid
	if hwm, err := vmHWM(pid); err != nil {
		t.Logf("peak RSS not measured: %v", err)
		rep.PeakRSSMiB = -1
	} else {
		rep.PeakRSSMiB = math.Round(float64(hwm)/(1<<20)*10) / 10
		if hwm >= soakPeakRSSBound {
			t.Errorf("the server's peak RSS (VmHWM) is %.1f MiB, over the bound of %d MiB", rep.PeakRSSMiB, soakPeakRSSBound>>20)
		}
	}
	rep.Health = "failed"
	if st, body, err := do("GET", h.base+"/health", "", "", nil); err == nil && st == 200 && body["status"] == "ok" {
		rep.Health = "ok"
	} else {
		t.Errorf("/health after the soak: %d %v %v", st, body, err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- cmd.Wait() }()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("hall serve exited with %v after SIGTERM:\n%s", err, tail(logs.String()))
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("hall serve did not stop within 60 s of SIGTERM:\n%s", tail(logs.String()))
	}
	if out := logs.String(); strings.Contains(out, "panic") || strings.Contains(out, "goroutine ") {
		t.Errorf("the server log has a panic:\n%s", tail(out))
	}

	// The ledger verifies, and records each hostile outcome as answered
	// and each benign success.
	rep.Audit = "failed"
	if r := hallIn(t, dir, "", nil, "audit", "verify"); r.code == 0 {
		rep.Audit = "ok"
	} else {
		t.Errorf("hall audit verify after the soak: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	recorded := func(tenant string) []map[string]any {
		r := hallIn(t, dir, "", nil, "receipts", "--json", "--limit", "0", "--tenant", tenant)
		mustOK(t, r, "hall receipts")
		var rs []map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &rs); err != nil {
			t.Fatalf("hall receipts --json: %v", err)
		}
		return rs
	}
	ledgerHostile := map[string]string{}
	for _, rc := range recorded("org.evil") {
		id, _ := rc["receipt_id"].(string)
		ledgerHostile[id], _ = rc["outcome"].(string)
	}
	for id, code := range hostileReceipts {
		if got, ok := ledgerHostile[id]; !ok || got != code {
			t.Errorf("receipt %s: answered %s, recorded %q (present %v)", id, code, got, ok)
		}
	}
	benignRecorded := 0
	for _, rc := range recorded("org.acme") {
		if rc["outcome"] == "ok" {
			benignRecorded++
		}
	}
	if benignRecorded < rep.BenignOK {
		t.Errorf("the ledger has %d ok receipts of the benign tenant; it was answered ok %d times", benignRecorded, rep.BenignOK)
	}

	// The figures.
	codes := make([]string, 0, len(rep.HostileOutcomes))
	for c, n := range rep.HostileOutcomes {
		codes = append(codes, fmt.Sprintf("%s:%d", c, n))
	}
	slices.Sort(codes)
	rep.Line = fmt.Sprintf("soak: seconds=%.1f hostile_workers=%d hostile_goroutines=%d benign_goroutines=%d "+
		"benign=%d benign_ok=%d benign_ok_pct=%.2f benign_saturated=%d benign_saturated_pct=%.2f benign_failed=%d "+
		"benign_p50_ms=%.1f benign_p99_ms=%.1f benign_max_ms=%.1f "+
		"hostile=%d hostile_outcomes=%s hostile_saturated=%d hostile_uncontained=%d hostile_max_ms=%.1f "+
		"peak_rss_mib=%.1f peak_rss_bound_mib=%.0f health=%s audit=%s",
		rep.Seconds, rep.HostileWorkers, rep.HostileGoroutines, rep.BenignGoroutines,
		rep.Benign, rep.BenignOK, rep.BenignOKPct, rep.BenignSaturated, rep.BenignSatPct, rep.BenignFailed,
		rep.BenignP50Ms, rep.BenignP99Ms, rep.BenignMaxMs,
		rep.Hostile, strings.Join(codes, ","), rep.HostileSaturated, rep.HostileUncontained, rep.HostileMaxMs,
		rep.PeakRSSMiB, rep.PeakRSSBoundMiB, rep.Health, rep.Audit)
	t.Log(rep.Line)
	for _, c := range caps {
		st := rep.ByCapability[c.capability]
		cs := make([]string, 0, len(st.Codes))
		for code, n := range st.Codes {
			cs = append(cs, fmt.Sprintf("%s:%d", code, n))
		}
		slices.Sort(cs)
		t.Logf("soak: capability=%s n=%d codes=%s max_ms=%.1f", c.capability, st.N, strings.Join(cs, ","), st.MaxMs)
	}
	if path := os.Getenv("HALL_SOAK_REPORT"); path != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Errorf("HALL_SOAK_REPORT: %v", err)
		}
	}

	// Containment.
	if rep.Benign == 0 || (rep.Hostile == 0) != (hostileGoroutines == 0) {
		t.Fatalf("nothing was dispatched (benign %d, hostile %d)", rep.Benign, rep.Hostile)
	}
	for _, c := range caps {
		if hostileGoroutines > 0 && rep.ByCapability[c.capability].N == 0 {
			t.Errorf("%s was never dispatched during the soak", c.capability)
		}
	}
	if served := rep.Benign - rep.BenignSaturated; served == 0 || float64(rep.BenignOK)/float64(served) < soakMinBenignOK {
		t.Errorf("the benign tenant succeeded in %d of %d requests not refused as saturated, under %.0f%%; first failures: %s",
			rep.BenignOK, served, soakMinBenignOK*100, strings.Join(benignProblems, "; "))
	}
	if float64(rep.BenignSaturated) >= soakMaxSaturated*float64(rep.Benign) {
		t.Errorf("the benign tenant was refused with 503 HALL_SATURATED %d times of %d, %.0f%% or more", rep.BenignSaturated, rep.Benign, soakMaxSaturated*100)
	}
	if rep.HostileUncontained > 0 {
		t.Errorf("%d hostile dispatches did not end in their limit or trap code with a receipt; first: %s",
			rep.HostileUncontained, strings.Join(hostileProblems, "; "))
	}
}

// soakHall is a `hall serve` child in a fresh directory with the rules of
// a soak spec and the quick start's, and three tokens: admin, the benign
// tenant (org.acme) and the hostile one (org.evil).
type soakHall struct {
	t                      *testing.T
	dir, base              string
	cmd                    *exec.Cmd
	logs                   *syncBuffer
	client                 *http.Client
	admin, benign, hostile string
}

func newSoakHall(t *testing.T, spec soakSpec, serveArgs ...string) *soakHall {
	t.Helper()
	h := &soakHall{t: t, dir: t.TempDir()}
	// Rules: one dev rule per hostile capability, and the quick start's.
	var rules []map[string]any
	for _, w := range spec.Enrolled {
		species := w.Record["worker_species_id"].(string)
		for capability := range w.Expect {
			rules = append(rules, map[string]any{
				"rule_id":  "rr_" + strings.ReplaceAll(capability, ".", "_"),
				"match":    map[string]any{"capability_id": capability, "env": map[string]any{"in": []string{"dev"}}},
				"decision": map[string]any{"candidate_workers_ranked": []map[string]any{{"worker_species_id": species}}},
			})
		}
	}
	var quick struct {
		Rules []map[string]any `json:"rules"`
	}
	readJSON(t, filepath.Join(quickstart, "rules.json"), &quick)
	rules = append(rules, quick.Rules...)
	rulesJSON, _ := json.Marshal(map[string]any{"rules": rules})
	write(t, h.dir, "rules.json", string(rulesJSON))

	token := func(args ...string) string {
		r := hallIn(t, h.dir, "", nil, append([]string{"tokens", "create"}, args...)...)
		mustOK(t, r, "tokens create")
		return strings.TrimSpace(r.stdout)
	}
	h.admin, h.benign, h.hostile = token("--admin"), token("--tenant", "org.acme"), token("--tenant", "org.evil")
	h.base, h.cmd, h.logs = startServe(t, h.dir, append([]string{"--home", filepath.Join(h.dir, ".hall")}, serveArgs...)...)
	h.client = &http.Client{
		// A hang detector, not a speed target: no dispatch of the soak
		// may take this long (the longest time limit is 5 s).
		Timeout:   2 * time.Minute,
		Transport: &http.Transport{MaxIdleConnsPerHost: soakMaxHostileGoroutines + soakBenignGoroutines},
	}
	return h
}

// do is one request; the body must be JSON.
func (h *soakHall) do(method, url, tok, ctype string, body []byte) (int, map[string]any, error) {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	res, err := h.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return res.StatusCode, nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return res.StatusCode, nil, fmt.Errorf("%s %s: %d, not JSON: %.200s", method, url, res.StatusCode, raw)
	}
	return res.StatusCode, m, nil
}

// enroll uploads a module and enrolls its record (artifact_hash set).
func (h *soakHall) enroll(module []byte, record map[string]any) (int, map[string]any) {
	h.t.Helper()
	digest := sha(module)
	if st, body, err := h.do("PUT", h.base+"/artifacts/"+digest, h.admin, "application/wasm", module); err != nil || st != 201 {
		h.t.Fatalf("upload %s: %d %v %v", record["worker_id"], st, body, err)
	}
	record["artifact_hash"] = digest
	b, _ := json.Marshal(record)
	st, body, err := h.do("POST", h.base+"/enroll", h.admin, "application/json", b)
	if err != nil {
		h.t.Fatalf("enroll %s: %v", record["worker_id"], err)
	}
	return st, body
}

// run is one POST /wcp/run (safe for concurrent use).
func (h *soakHall) run(tok, capability, corr string, payload string) soakResponse {
	b, _ := json.Marshal(map[string]any{
		"input": map[string]any{"capability_id": capability, "env": "dev", "data_label": "INTERNAL",
			"tenant_risk": "low", "qos_class": "P2", "correlation_id": corr},
		"payload": payload,
	})
	start := time.Now()
	st, body, err := h.do("POST", h.base+"/wcp/run", tok, "application/json", b)
	r := soakResponse{status: st, elapsed: time.Since(start), err: err}
	if err != nil {
		return r
	}
	r.receiptID, _ = body["receipt_id"].(string)
	r.output, _ = body["output"].(string)
	if e, ok := body["error"].(map[string]any); ok {
		r.code, _ = e["code"].(string)
		r.message, _ = e["message"].(string)
	} else if o, _ := body["outcome"].(string); o != "" {
		r.code = o
	}
	return r
}

// soakModule compiles a .wat of testdata/soak (or, by a relative path,
// testdata/sandbox).
func soakModule(t *testing.T, src string) []byte {
	t.Helper()
	text, err := os.ReadFile(filepath.Join("../../testdata/soak", src))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(wat(t, string(text)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// percentile is the nearest-rank p-th percentile of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// vmHWM reads a process's peak resident set size (VmHWM) in bytes from
// /proc (Linux).
func vmHWM(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) != 2 || f[1] != "kB" {
				return 0, fmt.Errorf("VmHWM line %q", line)
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no VmHWM", pid)
}

// soakSubset is the part of the soak spec that enrolls the given workers.
func soakSubset(t *testing.T, ids ...string) soakSpec {
	t.Helper()
	var spec, sub soakSpec
	readJSON(t, "../../testdata/soak/hostile.json", &spec)
	for _, w := range spec.Enrolled {
		if slices.Contains(ids, w.Record["worker_id"].(string)) {
			sub.Enrolled = append(sub.Enrolled, w)
		}
	}
	if len(sub.Enrolled) != len(ids) {
		t.Fatalf("testdata/soak/hostile.json does not enroll all of %v", ids)
	}
	return sub
}

// stopServe sends SIGTERM and waits for a clean exit.
func stopServe(t *testing.T, cmd *exec.Cmd, logs *syncBuffer) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- cmd.Wait() }()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("hall serve exited with %v after SIGTERM:\n%s", err, tail(logs.String()))
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("hall serve did not stop within 60 s of SIGTERM:\n%s", tail(logs.String()))
	}
}

// TestSoakStartSectionHangsAtLoad: a worker whose start section starts to
// loop or sleep after enrollment, dispatched by a server that has not
// loaded it yet (here: after a restart; also after the Hall evicted or
// retired the loaded worker). Each dispatch must end like one that finds
// the worker loaded: 504 LIMIT_TIMEOUT, with its decision and receipt in
// the ledger.
//
// Regression (host.Hall.Run): the worker was loaded — its start section
// run, under the time limit — before the decision was recorded, and a load
// that failed was returned as a Hall error: the server answered 500
// INTERNAL, "ran": false, and neither the decision nor a receipt was
// recorded although guest code ran for the whole time limit.
func TestSoakStartSectionHangsAtLoad(t *testing.T) {
	spec := soakSubset(t, "org.soak.startloop", "org.soak.startsleep")
	triggerDir := t.TempDir()
	h := newSoakHall(t, spec)
	for _, w := range spec.Enrolled {
		w.Record["privilege_envelope"] = map[string]any{"filesystem_reads": []string{triggerDir}}
		if st, body := h.enroll(soakModule(t, w.Module), w.Record); st != 201 {
			t.Fatalf("enroll %s: %d %v", w.Record["worker_id"], st, body)
		}
	}
	stopServe(t, h.cmd, h.logs)
	write(t, triggerDir, "trigger", "")
	h.base, h.cmd, h.logs = startServe(t, h.dir, "--home", filepath.Join(h.dir, ".hall"))

	var answered []string
	for _, w := range spec.Enrolled {
		for capability, exp := range w.Expect {
			for i := range 3 {
				corr := fmt.Sprintf("load-%s-%d", capability, i)
				r := h.run(h.hostile, capability, corr, "")
				if r.err != nil || r.status != exp.Status || r.code != exp.Code || r.receiptID == "" {
					t.Errorf("%s, dispatch %d: %d %s %q receipt %q %v; want %d %s with a receipt",
						capability, i, r.status, r.code, r.message, r.receiptID, r.err, exp.Status, exp.Code)
				}
				answered = append(answered, corr)
			}
		}
	}
	stopServe(t, h.cmd, h.logs)
	for _, corr := range answered {
		r := hallIn(t, h.dir, "", nil, "receipts", "--json", "--correlation-id", corr)
		mustOK(t, r, "hall receipts")
		if !strings.Contains(r.stdout, `"outcome": "LIMIT_TIMEOUT"`) {
			t.Errorf("no LIMIT_TIMEOUT receipt for correlation id %s: %s", corr, r.stdout)
		}
	}
}

// TestSoakStackBurst: concurrent dispatches of a worker that recurses
// without end (memory_mb 16), as many as the server's dispatch bound.
// The Hall-wide memory budget charges each call 2 × memory_mb + its table
// bytes + 4 × its stack budget + 8 MiB (docs/SECURITY.md), so the server's
// memory may grow by at most that per concurrent call (plus a margin for
// the server itself). Before the stack guard (wasmmod.GuardStack) each
// call's stack grew to wazero's 400 MB ceiling: 32 concurrent calls took
// the server to ~3.7 GiB where the budget accounted for 1.28 GiB.
func TestSoakStackBurst(t *testing.T) {
	const burst = 32
	const margin = 256 << 20
	// callCharge(16 MiB, no tables, the default 16 MiB stack): the stack
	// guard ends each recursion as LIMIT_STACK within its charge.
	charge := int64(2*16<<20 + 4*(16<<20+64<<10) + 8<<20)
	spec := soakSubset(t, "org.soak.recurse")
	h := newSoakHall(t, spec, "--max-concurrent", strconv.Itoa(burst))
	w := spec.Enrolled[0]
	if st, body := h.enroll(soakModule(t, w.Module), w.Record); st != 201 {
		t.Fatalf("enroll: %d %v", st, body)
	}
	before, err := vmHWM(h.cmd.Process.Pid)
	if err != nil {
		t.Skip("no /proc:", err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[string]int{}
	for i := range burst {
		wg.Go(func() {
			r := h.run(h.hostile, "cap.soak.recurse", fmt.Sprintf("burst-%d", i), "")
			mu.Lock()
			codes[fmt.Sprintf("%d %s", r.status, r.code)]++
			mu.Unlock()
		})
	}
	wg.Wait()
	after, err := vmHWM(h.cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("soak burst: calls=%d outcomes=%v peak_rss_before_mib=%d peak_rss_after_mib=%d budget_charge_mib=%d",
		burst, codes, before>>20, after>>20, burst*charge>>20)
	if after-before > burst*charge+margin {
		t.Errorf("%d concurrent recursing calls grew the server's peak RSS by %d MiB; the memory budget charges them %d MiB in all",
			burst, (after-before)>>20, burst*charge>>20)
	}
}
