package host_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/host/wcp"
)

// exampleDir is a fresh Hall directory with one routing rule: requests for
// cap.test.tiny go to species wrk.test.tiny.
func exampleDir() string {
	dir, err := os.MkdirTemp("", "hall-example")
	if err != nil {
		panic(err)
	}
	rules := `{"rules": [{"rule_id": "tiny", "match": {"capability_id": "cap.test.tiny"},
	  "decision": {"candidate_workers_ranked": [{"worker_species_id": "wrk.test.tiny"}]}}]}`
	if err := os.WriteFile(filepath.Join(dir, "rules.json"), []byte(rules), 0o644); err != nil {
		panic(err)
	}
	return dir
}

// Open a Hall over a directory holding rules.json (and, once workers are
// enrolled, enrolled/ and the state directory .hall/).
func ExampleOpen() {
	dir := exampleDir()
	defer os.RemoveAll(dir)
	ctx := context.Background()
	h, err := host.Open(ctx, host.Options{Dir: dir})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer h.Close(ctx)
	fmt.Println("rules:", len(h.Rules().Rules), "workers:", h.Registry().Len())
	// Output: rules: 1 workers: 0
}

// Enroll a module with its registry record: the Hall validates both,
// stores the module under its digest, compiles it, seals the record in the
// evidence ledger and writes enrolled/<worker_id>.json.
func ExampleHall_Enroll() {
	dir := exampleDir()
	defer os.RemoveAll(dir)
	ctx := context.Background()
	h, _ := host.Open(ctx, host.Options{Dir: dir})
	defer h.Close(ctx)
	res, err := h.Enroll(ctx, host.EnrollRequest{
		Module: mods.tiny, // a .wasm module exporting "run"
		Record: []byte(`{"worker_id": "org.acme.tiny", "worker_species_id": "wrk.test.tiny",
		  "capabilities": ["cap.test.tiny"], "risk_tier": "low"}`),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Record.WorkerID, res.ArtifactHash.String() == digest(mods.tiny), filepath.Base(res.RecordPath))
	// Output: org.acme.tiny true org.acme.tiny.json
}

// Decide routes a request without running anything: the RouteDecision
// PyHall would return, bound to the module that would run.
func ExampleHall_Decide() {
	dir := exampleDir()
	defer os.RemoveAll(dir)
	ctx := context.Background()
	h, _ := host.Open(ctx, host.Options{Dir: dir})
	defer h.Close(ctx)
	_, _ = h.Enroll(ctx, host.EnrollRequest{Module: mods.tiny, Record: record("org.acme.tiny", "wrk.test.tiny", "cap.test.tiny", "")})

	in := wcp.RouteInput{CapabilityID: "cap.test.tiny", Env: "dev", DataLabel: "INTERNAL", TenantRisk: "low",
		QoSClass: "P2", TenantID: "org.acme", CorrelationID: "c-1"}
	dec := h.Decide(ctx, &in)
	fmt.Println(dec.Denied, dec.SelectedWorkerSpeciesID, string(dec.ArtifactHash) == digest(mods.tiny))

	in.CapabilityID = "cap.nothing"
	denied := h.Decide(ctx, &in)
	fmt.Println(denied.Code())
	// Output:
	// false wrk.test.tiny true
	// DENY_NO_MATCHING_RULE
}

// Run decides and, when allowed, runs the bound worker in the sandbox and
// commits a signed receipt of the dispatch.
func ExampleHall_Run() {
	dir := exampleDir()
	defer os.RemoveAll(dir)
	ctx := context.Background()
	h, _ := host.Open(ctx, host.Options{Dir: dir})
	defer h.Close(ctx)
	_, _ = h.Enroll(ctx, host.EnrollRequest{Module: mods.tiny, Record: record("org.acme.tiny", "wrk.test.tiny", "cap.test.tiny", "")})

	in := wcp.RouteInput{CapabilityID: "cap.test.tiny", Env: "dev", DataLabel: "INTERNAL", TenantRisk: "low",
		QoSClass: "P2", TenantID: "org.acme", CorrelationID: "c-1"}
	res, err := h.Run(ctx, host.RunRequest{Input: &in, Payload: []byte("hello")})
	if err != nil {
		fmt.Println(err)
		return
	}
	ev, _ := h.Evidence()
	r, _ := ev.Receipt(ctx, res.ReceiptID)
	fmt.Println(res.Ran, res.Outcome, res.WorkerID)
	fmt.Println(r.WorkerID, r.ArtifactHash == res.Plan.ArtifactHash(), r.RecordDigest == res.Plan.RecordDigest())
	// Output:
	// true ok org.acme.tiny
	// org.acme.tiny true true
}
