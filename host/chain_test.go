package host_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/ledger"
	"github.com/wcphall/hall/internal/wasmtest"
)

// Issue 23: governed pipelines. Every test runs the real chain guest
// (testdata/pipeline/chainguest) in the real sandbox, with a real ledger.

var chainMod struct {
	once sync.Once
	wasm []byte
	err  error
}

func chainGuest(t testing.TB) []byte {
	t.Helper()
	chainMod.once.Do(func() { chainMod.wasm, chainMod.err = wasmtest.Build("../testdata/pipeline/chainguest") })
	if chainMod.err != nil {
		t.Fatal(chainMod.err)
	}
	return chainMod.wasm
}

// chainRules routes each cap.test.<name> to wrk.test.<name> in dev.
func chainRules(names ...string) string {
	var rs []string
	for _, n := range names {
		rs = append(rs, fmt.Sprintf(`{"rule_id": "r_%s", "match": {"capability_id": "cap.test.%s", "env": {"in": ["dev"]}},
		  "decision": {"candidate_workers_ranked": [{"worker_species_id": "wrk.test.%s"}]}}`, n, n, n))
	}
	return `{"rules": [` + strings.Join(rs, ",") + `]}`
}

// chainWorker is the record of the chain guest serving cap.test.<name>
// as worker <ns>.<name>, with tools, config "next" and extra envelope
// members.
func chainWorker(ns, name string, tools []string, next string, extra string) string {
	if tools == nil {
		tools = []string{}
	}
	tj, _ := json.Marshal(tools)
	cfg := ""
	if next != "" {
		cfg = fmt.Sprintf(`, "config": {"next": %q}`, next)
	}
	return fmt.Sprintf(`{"worker_id": "%s.%s", "worker_species_id": "wrk.test.%s", "capabilities": ["cap.test.%s"], "risk_tier": "low",
	  "privilege_envelope": {"network_egress": "none", "tools": %s%s}%s}`, ns, name, name, name, tj, extra, cfg)
}

type chainHall struct {
	*host.Hall
	t *testing.T
}

func openChain(t *testing.T, hallJSON string, opts host.Options, workers map[string]string, extraRules ...string) chainHall {
	t.Helper()
	names := []string{"caller", "leaf", "self", "a", "b"}
	names = append(names, extraRules...)
	h := openInteg(t, chainRules(names...), hallJSON, opts)
	wasm := chainGuest(t)
	defaults := map[string]string{
		"caller": chainWorker("org.acme", "caller", []string{"cap.test.leaf"}, "", ""),
		"leaf":   chainWorker("org.acme", "leaf", nil, "", `, "secrets_access": ["started"]`),
		"self":   chainWorker("org.acme", "self", []string{"cap.test.self"}, "cap.test.self", ""),
		"a":      chainWorker("org.acme", "a", []string{"cap.test.b"}, "cap.test.b", ""),
		"b":      chainWorker("org.acme", "b", []string{"cap.test.a"}, "cap.test.a", ""),
	}
	for k, v := range workers {
		defaults[k] = v
	}
	for _, rec := range defaults {
		enrollOK(t, h, wasm, rec)
	}
	return chainHall{h, t}
}

// run dispatches cap.test.<name> in dev with program as payload.
func (h chainHall) run(ctx context.Context, name, corr, program string) *host.RunResult {
	h.t.Helper()
	res, err := h.Run(ctx, host.RunRequest{Input: routeInput(h.t, "cap.test."+name, "dev", "INTERNAL", corr), Payload: []byte(program)})
	if err != nil {
		h.t.Fatalf("run %s: %v", name, err)
	}
	if res.Decision.Denied {
		h.t.Fatalf("run %s denied %s: %s", name, res.Decision.Code(), res.Decision.DenyReason.Message)
	}
	return res
}

func (h chainHall) receipts(corr string) []ledger.Receipt {
	h.t.Helper()
	ev, err := h.Evidence()
	if err != nil {
		h.t.Fatal(err)
	}
	rs, err := ev.Receipts(context.Background(), ledger.Filter{CorrelationID: corr})
	if err != nil {
		h.t.Fatal(err)
	}
	return rs
}

func (h chainHall) decision(id string) wcp.RouteDecision {
	h.t.Helper()
	ev, err := h.Evidence()
	if err != nil {
		h.t.Fatal(err)
	}
	d, err := ev.Decision(context.Background(), id)
	if err != nil {
		h.t.Fatalf("decision %s: %v", id, err)
	}
	var dec wcp.RouteDecision
	if err := json.Unmarshal(d.Decision, &dec); err != nil {
		h.t.Fatal(err)
	}
	return dec
}

func (h chainHall) verify() {
	h.t.Helper()
	ev, err := h.Evidence()
	if err != nil {
		h.t.Fatal(err)
	}
	rep, err := ev.Verify(context.Background(), nil)
	if err != nil {
		h.t.Fatal(err)
	}
	if len(rep.Breaks) > 0 {
		h.t.Fatalf("audit verify: %+v", rep.Breaks)
	}
}

// invokeError is the {"invoke_error": …} output of the chain guest.
type invokeError struct {
	Code       string `json:"code"`
	DenyCode   string `json:"deny_code"`
	Outcome    string `json:"outcome"`
	DecisionID string `json:"decision_id"`
	Message    string `json:"message"`
}

func outputInvokeError(t *testing.T, out []byte) invokeError {
	t.Helper()
	var o struct {
		E *invokeError `json:"invoke_error"`
	}
	if err := json.Unmarshal(out, &o); err != nil || o.E == nil {
		t.Fatalf("output %q is not an invoke_error", out)
	}
	return *o.E
}

// byDecision indexes receipts by their decision id.
func byDecision(rs []ledger.Receipt) map[string]ledger.Receipt {
	m := map[string]ledger.Receipt{}
	for _, r := range rs {
		m[r.DecisionID] = r
	}
	return m
}

// A hop is a decision of its own, for the parent's context, recorded
// under the parent's decision; its receipt links the parent and the
// root's receipt carries the chain's hop count and summed blast.
func TestChainHopIsDecidedAndLinked(t *testing.T) {
	h := openChain(t, "", host.Options{}, nil)
	res := h.run(context.Background(), "caller", "c-hop", `{"op":"call","cap":"cap.test.leaf","input":{"op":"echo","text":"hi"}}`)
	if res.Outcome != "ok" || string(res.Output) != "echo:hi" {
		t.Fatalf("outcome %s output %q, want ok echo:hi", res.Outcome, res.Output)
	}
	rs := h.receipts("c-hop")
	if len(rs) != 2 {
		t.Fatalf("%d receipts under the correlation id, want 2 (root and hop)", len(rs))
	}
	root := byDecision(rs)[res.Decision.DecisionID.String()]
	var hop ledger.Receipt
	for _, r := range rs {
		if r.ReceiptID != root.ReceiptID {
			hop = r
		}
	}
	if hop.ParentDecisionID != root.DecisionID || hop.ChainDepth != 1 || hop.WorkerID != "org.acme.leaf" || hop.TenantID != "org.acme" {
		t.Fatalf("hop receipt: parent %q depth %d worker %s tenant %s; want parent %s depth 1 org.acme.leaf org.acme", hop.ParentDecisionID, hop.ChainDepth, hop.WorkerID, hop.TenantID, root.DecisionID)
	}
	if hop.BlastScore == nil || root.BlastScore == nil || root.ChainHops != 1 || root.ChainBlast != *root.BlastScore+*hop.BlastScore {
		t.Fatalf("root chain_hops %d chain_blast %d, hop blast %v root blast %v: want 1 hop and the sum", root.ChainHops, root.ChainBlast, hop.BlastScore, root.BlastScore)
	}
	dec := h.decision(hop.DecisionID)
	if dec.Chain == nil || dec.Chain.ParentDecisionID != root.DecisionID || dec.Chain.Depth != 1 {
		t.Fatalf("hop decision chain %+v, want parent %s depth 1", dec.Chain, root.DecisionID)
	}
	if dec.Env != "dev" || dec.DataLabel != "INTERNAL" || dec.TenantRisk != "low" || dec.QoSClass != "P2" || dec.CorrelationID != "c-hop" || dec.TenantID != "org.acme" {
		t.Fatalf("hop decision context %s/%s/%s/%s/%s/%s, want the parent's", dec.Env, dec.DataLabel, dec.TenantRisk, dec.QoSClass, dec.CorrelationID, dec.TenantID)
	}
	if dec.MatchedRuleID != "r_leaf" || string(dec.ArtifactHash) != hop.ArtifactHash {
		t.Fatalf("hop decision rule %s artifact %s, want r_leaf and the receipt's %s", dec.MatchedRuleID, dec.ArtifactHash, hop.ArtifactHash)
	}
	h.verify()

	// The tree, asked for from the hop, starts at the root.
	ev, _ := h.Evidence()
	tree, err := host.ReceiptTree(context.Background(), ev, hop.ReceiptID)
	if err != nil {
		t.Fatal(err)
	}
	if tree.ReceiptID != root.ReceiptID || tree.ChainHops != 1 || len(tree.Hops) != 1 || tree.Hops[0].ReceiptID != hop.ReceiptID || !tree.Hops[0].Requested ||
		tree.Hops[0].WorkerID != "org.acme.leaf" || tree.Hops[0].ArtifactHash != hop.ArtifactHash || tree.Hops[0].Outcome != "ok" {
		t.Fatalf("tree %+v (hops %+v), want the root with the requested hop", tree, tree.Hops)
	}
	var b strings.Builder
	tree.WriteTree(&b)
	if lines := strings.Split(strings.TrimSpace(b.String()), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[1], "└─ "+hop.ReceiptID) || !strings.Contains(lines[0], "(chain: 1 hops") {
		t.Fatalf("text tree:\n%s", b.String())
	}
}

// A worker that calls itself stops at the chain's max_depth: four hops
// ran, the fifth was denied DENY_CHAIN_LIMIT and recorded.
func TestChainSelfRecursionStopsAtDepth(t *testing.T) {
	h := openChain(t, "", host.Options{}, nil)
	res := h.run(context.Background(), "self", "c-self", `{"op":"relay"}`)
	if res.Outcome != "ok" {
		t.Fatalf("outcome %s (%v)", res.Outcome, res.Err)
	}
	e := outputInvokeError(t, res.Output)
	if e.Code != "CHAIN_LIMIT" || e.DenyCode != "DENY_CHAIN_LIMIT" || e.DecisionID == "" {
		t.Fatalf("innermost error %+v, want CHAIN_LIMIT / DENY_CHAIN_LIMIT with a decision", e)
	}
	rs := h.receipts("c-self")
	if len(rs) != 1+host.DefaultChainDepth {
		t.Fatalf("%d receipts, want the root and %d hops", len(rs), host.DefaultChainDepth)
	}
	depths := map[int]int{}
	for _, r := range rs {
		depths[r.ChainDepth]++
	}
	for d := 0; d <= host.DefaultChainDepth; d++ {
		if depths[d] != 1 {
			t.Fatalf("receipts by depth %v, want one at each depth 0..%d", depths, host.DefaultChainDepth)
		}
	}
	if root := byDecision(rs)[res.Decision.DecisionID.String()]; root.ChainHops != host.DefaultChainDepth {
		t.Fatalf("root chain_hops %d, want %d", root.ChainHops, host.DefaultChainDepth)
	}
	if d := h.decision(e.DecisionID); d.Code() != wcp.DenyChainLimit || d.Chain == nil || d.Chain.Depth != host.DefaultChainDepth+1 {
		t.Fatalf("the refused hop's decision: %s chain %+v, want DENY_CHAIN_LIMIT at depth %d", d.Code(), d.Chain, host.DefaultChainDepth+1)
	}
	h.verify()
}

// Two workers that call each other: the cycle ends at the same depth.
func TestChainCycleStopsAtDepth(t *testing.T) {
	h := openChain(t, "", host.Options{}, nil)
	res := h.run(context.Background(), "a", "c-cycle", `{"op":"relay"}`)
	if e := outputInvokeError(t, res.Output); e.Code != "CHAIN_LIMIT" {
		t.Fatalf("cycle ended with %+v, want CHAIN_LIMIT", e)
	}
	workers := map[string]int{}
	for _, r := range h.receipts("c-cycle") {
		workers[r.WorkerID]++
	}
	if workers["org.acme.a"]+workers["org.acme.b"] != 1+host.DefaultChainDepth || workers["org.acme.a"] != 3 {
		t.Fatalf("receipts by worker %v, want a,b,a,b,a", workers)
	}
	h.verify()
}

// A worker that fans out 1,000 calls: 16 run, the rest are refused
// CHAIN_LIMIT under one recorded denial.
func TestChainFanOutThousand(t *testing.T) {
	h := openChain(t, "", host.Options{}, nil)
	res := h.run(context.Background(), "caller", "c-fan", `{"op":"fanout","cap":"cap.test.leaf","n":1000}`)
	var counts map[string]int
	if err := json.Unmarshal(res.Output, &counts); err != nil {
		t.Fatalf("output %q: %v", res.Output, err)
	}
	want := map[string]int{"ok": host.DefaultChainCallsPerDispatch, "CHAIN_LIMIT/DENY_CHAIN_LIMIT": 1000 - host.DefaultChainCallsPerDispatch}
	if fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Fatalf("fan-out answers %v, want %v", counts, want)
	}
	rs := h.receipts("c-fan")
	if len(rs) != 1+host.DefaultChainCallsPerDispatch {
		t.Fatalf("%d receipts, want the root and %d hops", len(rs), host.DefaultChainCallsPerDispatch)
	}
	ev, _ := h.Evidence()
	events, err := ev.Events(context.Background(), "c-fan")
	if err != nil {
		t.Fatal(err)
	}
	limits := 0
	for _, e := range events {
		if strings.Contains(string(e), `"DENY_CHAIN_LIMIT"`) {
			limits++
		}
	}
	if limits != 1 {
		t.Fatalf("%d DENY_CHAIN_LIMIT events recorded, want 1 (later attempts are refused under it)", limits)
	}
	h.verify()
}

// A capability the caller's privilege_envelope.tools does not list is
// denied before routing, with its own code, and recorded under the parent.
func TestChainUndeclaredCapability(t *testing.T) {
	h := openChain(t, "", host.Options{}, nil)
	res := h.run(context.Background(), "caller", "c-undeclared", `{"op":"call","cap":"cap.test.self","input":{"op":"echo"}}`)
	e := outputInvokeError(t, res.Output)
	if e.Code != "INVOKE_DENIED" || e.DenyCode != string(wcp.DenyToolNotDeclared) {
		t.Fatalf("error %+v, want INVOKE_DENIED / DENY_TOOL_NOT_DECLARED", e)
	}
	d := h.decision(e.DecisionID)
	if d.Code() != wcp.DenyToolNotDeclared || d.MatchedRuleID != "PRE_ROUTING" || d.Chain == nil || d.Chain.ParentDecisionID != res.Decision.DecisionID.String() {
		t.Fatalf("recorded decision %s rule %s chain %+v, want DENY_TOOL_NOT_DECLARED before routing under %s", d.Code(), d.MatchedRuleID, d.Chain, res.Decision.DecisionID)
	}
	if rs := h.receipts("c-undeclared"); len(rs) != 1 {
		t.Fatalf("%d receipts, want the root's only", len(rs))
	}
	h.verify()
}

// A hop that spends its whole time gets at most its parent's remaining
// time, ends LIMIT_TIMEOUT, and its parent still answers.
func TestChainHopEatsDeadline(t *testing.T) {
	caller := chainWorker("org.acme", "caller", []string{"cap.test.leaf"}, "", "")
	caller = strings.Replace(caller, `"risk_tier": "low",`, `"risk_tier": "low", "limits": {"timeout_ms": 1500},`, 1)
	h := openChain(t, "", host.Options{}, map[string]string{"caller": caller})
	res := h.run(context.Background(), "caller", "c-deadline", `{"op":"call","cap":"cap.test.leaf","input":{"op":"spin"}}`)
	rs := h.receipts("c-deadline")
	if len(rs) != 2 {
		t.Fatalf("%d receipts, want 2", len(rs))
	}
	var hop ledger.Receipt
	for _, r := range rs {
		if r.ParentDecisionID != "" {
			hop = r
		}
	}
	if hop.Outcome != "LIMIT_TIMEOUT" {
		t.Fatalf("hop outcome %s, want LIMIT_TIMEOUT", hop.Outcome)
	}
	if hop.Limits.TimeoutMS >= 1500 {
		t.Fatalf("hop ran under a %d ms limit, want less than its parent's 1500 ms", hop.Limits.TimeoutMS)
	}
	if res.Outcome == "ok" {
		if e := outputInvokeError(t, res.Output); e.Code != "INVOKE_FAILED" || e.Outcome != "LIMIT_TIMEOUT" {
			t.Fatalf("parent saw %+v, want INVOKE_FAILED / LIMIT_TIMEOUT", e)
		}
	} else if res.Outcome != "LIMIT_TIMEOUT" {
		t.Fatalf("root outcome %s, want ok or LIMIT_TIMEOUT", res.Outcome)
	}
	h.verify()
}

// A hop for another tenant's namespace is decided for the parent's
// tenant: the policies see that tenant and deny it; a hop that needs a
// human is denied DENY_REQUIRES_HUMAN_APPROVAL with no approval held.
func TestChainHopPoliciesAndOtherTenantNamespace(t *testing.T) {
	policy := `{"approvals": {"enabled": true},
	  "policies": [
	    {"id": "own-namespace", "when": "!worker.id.startsWith(input.tenant_id + '.')", "effect": "DENY", "reason": "a tenant runs only workers of its own namespace"},
	    {"id": "leaf-needs-human", "when": "input.capability_id == 'cap.test.leaf'", "effect": "REQUIRE_HUMAN", "reason": "a human approves the leaf"}]}`
	caller := chainWorker("org.acme", "caller", []string{"cap.test.leaf", "cap.test.vault"}, "", "")
	h := openChainWithPolicy(t, policy, map[string]string{
		"caller": caller,
		"vault":  chainWorker("org.other", "vault", nil, "", ""),
	}, "vault")
	res := h.run(context.Background(), "caller", "c-ns", `{"op":"call","cap":"cap.test.vault","input":{"op":"echo"}}`)
	if e := outputInvokeError(t, res.Output); e.Code != "INVOKE_DENIED" || e.DenyCode != string(wcp.DenyPolicyGate) {
		t.Fatalf("hop to org.other.vault: %+v, want INVOKE_DENIED / DENY_POLICY_GATE", e)
	} else if d := h.decision(e.DecisionID); d.TenantID != "org.acme" || d.Chain == nil {
		t.Fatalf("the hop was decided for tenant %s chain %+v, want org.acme under its parent", d.TenantID, d.Chain)
	}
	res = h.run(context.Background(), "caller", "c-human", `{"op":"call","cap":"cap.test.leaf","input":{"op":"echo"}}`)
	e := outputInvokeError(t, res.Output)
	if e.Code != "INVOKE_DENIED" || e.DenyCode != string(wcp.DenyRequiresHumanApproval) {
		t.Fatalf("hop needing a human: %+v, want INVOKE_DENIED / DENY_REQUIRES_HUMAN_APPROVAL", e)
	}
	if d := h.decision(e.DecisionID); d.DenyReason.PendingApprovalID != nil {
		t.Fatalf("a hop held approval %s: a hop cannot present one", *d.DenyReason.PendingApprovalID)
	}
	h.verify()
}

func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func openChainWithPolicy(t *testing.T, policy string, workers map[string]string, extraRules ...string) chainHall {
	t.Helper()
	opts := host.Options{Policies: writeTemp(t, "policy.json", policy)}
	return openChain(t, "", opts, workers, extraRules...)
}

// The chain's summed blast score is gated by the threshold of its env and
// data label (hall.json chain.blast_thresholds).
func TestChainBlastThreshold(t *testing.T) {
	// dev/INTERNAL: each dispatch scores 30 (10 + 20 for INTERNAL).
	h := openChain(t, `{"chain": {"blast_thresholds": {"dev": {"INTERNAL": 70}}}}`, host.Options{}, nil)
	res := h.run(context.Background(), "caller", "c-blast", `{"op":"fanout","cap":"cap.test.leaf","n":3}`)
	var counts map[string]int
	if err := json.Unmarshal(res.Output, &counts); err != nil {
		t.Fatalf("output %q: %v", res.Output, err)
	}
	if counts["ok"] != 1 || counts["INVOKE_DENIED/DENY_CHAIN_BLAST"] != 2 {
		t.Fatalf("answers %v, want 1 ok and 2 DENY_CHAIN_BLAST (30 + 30 ≤ 70 < 90)", counts)
	}
	root := byDecision(h.receipts("c-blast"))[res.Decision.DecisionID.String()]
	if root.ChainHops != 1 || root.ChainBlast != 60 {
		t.Fatalf("root chain_hops %d chain_blast %d, want 1 and 60", root.ChainHops, root.ChainBlast)
	}
	h.verify()
}

// hall_invoke given an offset outside kernel memory fails that call
// (WORKER_BAD_POINTER) and nothing else: the Hall keeps serving.
func TestChainInvokeBadPointer(t *testing.T) {
	h := openChain(t, "", host.Options{}, nil)
	res := h.run(context.Background(), "caller", "c-badptr", `{"op":"badptr"}`)
	if res.Outcome != "WORKER_BAD_POINTER" {
		t.Fatalf("outcome %s, want WORKER_BAD_POINTER", res.Outcome)
	}
	if res := h.run(context.Background(), "caller", "c-after", `{"op":"call","cap":"cap.test.leaf","input":{"op":"echo","text":"x"}}`); string(res.Output) != "echo:x" {
		t.Fatalf("after a bad pointer: %s %q", res.Outcome, res.Output)
	}
	h.verify()
}

// hall_invoke_mem checks every range the guest names against its memory
// before anything is decided: each bad range traps WORKER_BAD_POINTER,
// no hop is decided, and the Hall keeps serving.
func TestChainInvokeMemBadPointer(t *testing.T) {
	h := openChain(t, "", host.Options{}, nil)
	for _, which := range []string{"cap", "input", "output"} {
		t.Run(which, func(t *testing.T) {
			corr := "c-badmem-" + which
			res := h.run(context.Background(), "caller", corr, `{"op":"badptr_mem","text":"`+which+`"}`)
			if res.Outcome != "WORKER_BAD_POINTER" || res.Err == nil || !strings.Contains(res.Err.Error(), "hall_invoke_mem") {
				t.Fatalf("outcome %s (%v), want WORKER_BAD_POINTER from hall_invoke_mem", res.Outcome, res.Err)
			}
			if rs := h.receipts(corr); len(rs) != 1 {
				t.Fatalf("%d receipts, want the caller's only (no hop decided)", len(rs))
			}
			if res := h.run(context.Background(), "caller", corr+"-after", `{"op":"call","cap":"cap.test.leaf","input":{"op":"echo","text":"x"}}`); string(res.Output) != "echo:x" {
				t.Fatalf("after a bad pointer: %s %q", res.Outcome, res.Output)
			}
		})
	}
	h.verify()
}

// Modules built with the first SDK speak hall_invoke (JSON in kernel
// blocks): the Hall still serves it, with the same decisions and errors.
func TestChainLegacyInvoke(t *testing.T) {
	h := openChain(t, "", host.Options{}, nil)
	res := h.run(context.Background(), "caller", "c-legacy", `{"op":"legacy_call","cap":"cap.test.leaf","input":{"op":"echo","text":"old"}}`)
	if res.Outcome != "ok" || string(res.Output) != "echo:old" {
		t.Fatalf("outcome %s output %q, want ok echo:old", res.Outcome, res.Output)
	}
	rs := h.receipts("c-legacy")
	if len(rs) != 2 || byDecision(rs)[res.Decision.DecisionID.String()].ChainHops != 1 {
		t.Fatalf("%d receipts, want root and hop, linked", len(rs))
	}
	res = h.run(context.Background(), "caller", "c-legacy-denied", `{"op":"legacy_call","cap":"cap.test.self","input":{}}`)
	if e := outputInvokeError(t, res.Output); e.Code != "INVOKE_DENIED" || e.DenyCode != "DENY_TOOL_NOT_DECLARED" || e.DecisionID == "" {
		t.Fatalf("legacy denial %+v, want INVOKE_DENIED DENY_TOOL_NOT_DECLARED with its decision", e)
	}
	h.verify()
}

// A reply longer than the buffer the SDK offers hall_invoke_mem is held
// by the host and copied by hall_invoke_take: the caller gets it whole.
func TestChainLongReply(t *testing.T) {
	h := openChain(t, "", host.Options{}, nil)
	text := strings.Repeat("0123456789abcdef", 4096) // 64 KiB
	res := h.run(context.Background(), "caller", "c-long", `{"op":"call","cap":"cap.test.leaf","input":{"op":"echo","text":"`+text+`"}}`)
	if res.Outcome != "ok" || string(res.Output) != "echo:"+text {
		t.Fatalf("outcome %s, output of %d bytes, want ok and the %d-byte echo", res.Outcome, len(res.Output), len("echo:"+text))
	}
}

// reloadGate is a SecretSource that, at the lookup of "reload", lets the
// test change the Hall's snapshot while the worker that asked waits.
type reloadGate struct {
	reached, done chan struct{}
}

func (g *reloadGate) Secret(name string) (string, bool) {
	if name == "reload" {
		close(g.reached)
		<-g.done
	}
	return "yes", true
}

// A hop is decided under the snapshot in force when it is decided, the
// newest, as any Run: a reload that lands mid-chain applies to the hops
// after it (a withdrawn rule stops the next hop), while the root keeps
// the snapshot it was decided under. Each decision and receipt names its
// own snapshot (docs/EVIDENCE.md, "Chains of dispatches").
func TestChainHopSnapshotAfterReload(t *testing.T) {
	for _, tc := range []struct {
		name string
		// rules replace the Hall's while the root runs.
		rules string
		// denied is the hop's deny code, "" when it runs.
		denied wcp.DenyCode
	}{
		{"rule-withdrawn", chainRules("caller", "self", "a", "b"), wcp.DenyNoMatchingRule},
		{"rules-changed", chainRules("caller", "leaf", "self", "a", "b", "extra"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			g := &reloadGate{reached: make(chan struct{}), done: make(chan struct{})}
			h := openChain(t, "", host.Options{Secrets: g}, map[string]string{
				"caller": chainWorker("org.acme", "caller", []string{"cap.test.leaf"}, "", `, "secrets_access": ["reload"]`),
			})
			before := h.SnapshotDigest()
			type result struct {
				res *host.RunResult
				err error
			}
			ran := make(chan result, 1)
			go func() {
				res, err := h.Run(ctx, host.RunRequest{Input: routeInput(t, "cap.test.caller", "dev", "INTERNAL", "c-reload"),
					Payload: []byte(`{"op":"call","cap":"cap.test.leaf","input":{"op":"echo","text":"x"},"secret":"reload"}`)})
				ran <- result{res, err}
			}()
			<-g.reached
			if _, _, err := h.ReplaceRules(ctx, []byte(tc.rules), "", "test"); err != nil {
				close(g.done)
				t.Fatal(err)
			}
			after := h.SnapshotDigest()
			close(g.done)
			r := <-ran
			if r.err != nil || r.res.Outcome != "ok" {
				t.Fatalf("root: %v %+v", r.err, r.res)
			}
			if before == after || before == "" {
				t.Fatalf("the reload left the snapshot digest %q", after)
			}
			ev, err := h.Evidence()
			if err != nil {
				t.Fatal(err)
			}
			rootID := r.res.Decision.DecisionID.String()
			var hopID string
			if tc.denied != "" {
				e := outputInvokeError(t, r.res.Output)
				if e.Code != "INVOKE_DENIED" || e.DenyCode != string(tc.denied) {
					t.Fatalf("hop after the reload: %+v, want INVOKE_DENIED %s", e, tc.denied)
				}
				hopID = e.DecisionID
			} else {
				if string(r.res.Output) != "echo:x" {
					t.Fatalf("root output %q, want the hop's echo:x", r.res.Output)
				}
				for _, rc := range h.receipts("c-reload") {
					switch rc.DecisionID {
					case rootID:
					default:
						hopID = rc.DecisionID
						if rc.Snapshot != after {
							t.Fatalf("hop receipt names snapshot %s, want the newest %s", rc.Snapshot, after)
						}
					}
				}
			}
			root := byDecision(h.receipts("c-reload"))[rootID]
			if root.Snapshot != before {
				t.Fatalf("root receipt names snapshot %s, want the one it was decided under, %s", root.Snapshot, before)
			}
			for id, want := range map[string]string{rootID: before, hopID: after} {
				d, err := ev.Decision(ctx, id)
				if err != nil {
					t.Fatalf("decision %s: %v", id, err)
				}
				if d.Snapshot != want {
					t.Fatalf("decision %s names snapshot %s, want %s", id, d.Snapshot, want)
				}
			}
			h.verify()
		})
	}
}

// startSignal is a SecretSource that reports the first lookup of
// "started": the hop is running.
type startSignal struct {
	once sync.Once
	ch   chan struct{}
}

func (s *startSignal) Secret(name string) (string, bool) {
	if name == "started" {
		s.once.Do(func() { close(s.ch) })
	}
	return "yes", true
}

// Cancelling the root mid-chain stops the running hop: both are recorded
// CANCELLED.
func TestChainRootCancellation(t *testing.T) {
	sig := &startSignal{ch: make(chan struct{})}
	h := openChain(t, "", host.Options{Secrets: sig}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-sig.ch
		cancel()
	}()
	res, err := h.Run(ctx, host.RunRequest{Input: routeInput(t, "cap.test.caller", "dev", "INTERNAL", "c-cancel"),
		Payload: []byte(`{"op":"call","cap":"cap.test.leaf","input":{"op":"spin","secret":"started"}}`)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != "CANCELLED" {
		t.Fatalf("root outcome %s, want CANCELLED", res.Outcome)
	}
	rs := h.receipts("c-cancel")
	if len(rs) != 2 {
		t.Fatalf("%d receipts, want root and hop", len(rs))
	}
	for _, r := range rs {
		if r.Outcome != "CANCELLED" {
			t.Fatalf("receipt of %s (depth %d): outcome %s, want CANCELLED", r.WorkerID, r.ChainDepth, r.Outcome)
		}
	}
	h.verify()
}

// The chain limits and blast thresholds are evidence: changing them in
// hall.json changes the sealed snapshot's configuration digest, and the
// recorded configuration holds the new values.
func TestChainLimitsAreInTheSnapshot(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	write := func(name, data string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("rules.json", rules)
	write("hall.json", `{}`)
	h, err := host.Open(ctx, host.Options{Dir: dir, Pool: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)
	h.Decide(ctx, input(t, "cap.test.tiny", "org.acme"))
	first := lastSealed(t, h)
	for i, cfg := range []string{
		`{"chain": {"max_depth": 2}}`,
		`{"chain": {"max_depth": 2, "max_calls_per_dispatch": 3}}`,
		`{"chain": {"max_depth": 2, "max_calls_per_dispatch": 3, "max_calls_per_chain": 5}}`,
		`{"chain": {"max_depth": 2, "max_calls_per_dispatch": 3, "max_calls_per_chain": 5, "blast_thresholds": {"dev": {"INTERNAL": 77}}}}`,
	} {
		write("hall.json", cfg)
		if err := h.Reload(ctx); err != nil {
			t.Fatal(err)
		}
		h.Decide(ctx, input(t, "cap.test.tiny", "org.acme"))
		last := lastSealed(t, h)
		if last.Manifest.Config == first.Manifest.Config {
			t.Fatalf("step %d: hall.json %s left the snapshot's configuration digest unchanged", i, cfg)
		}
		first = last
	}
	if got := string(first.Changed["config"]); !strings.Contains(got, `"max_calls_per_chain":5`) || !strings.Contains(got, `"INTERNAL":77`) {
		t.Fatalf("the recorded configuration lacks the chain block: %s", got)
	}
}

// A chain block that cannot be meant is refused, naming the field.
func TestChainConfigRefused(t *testing.T) {
	for _, tc := range []struct{ cfg, field string }{
		{`{"chain": {"max_depth": -1}}`, "chain.max_depth"},
		{`{"chain": {"max_calls_per_chain": -3}}`, "chain.max_calls_per_chain"},
		{`{"chain": {"blast_thresholds": {"prod": {"PUBLIC": -1}}}}`, "chain.blast_thresholds.prod.PUBLIC"},
	} {
		if _, err := host.ParseConfig([]byte(tc.cfg)); err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: error %v, want one naming %s", tc.cfg, err, tc.field)
		}
	}
}

// A replay re-runs one receipt's worker, never a chain: its hall_invoke
// answers INVOKE_UNAVAILABLE, and the replay reports the mismatch.
func TestChainReplayMakesNoHops(t *testing.T) {
	caller := strings.Replace(chainWorker("org.acme", "caller", []string{"cap.test.leaf"}, "", ""), `"risk_tier": "low",`, `"risk_tier": "low", "determinism": "full",`, 1)
	h := openChain(t, "", host.Options{}, map[string]string{"caller": caller})
	payload := `{"op":"call","cap":"cap.test.leaf","input":{"op":"echo","text":"r"}}`
	res := h.run(context.Background(), "caller", "c-replay", payload)
	rp, err := h.Replay(context.Background(), res.ReceiptID, []byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	if rp.Match || !strings.Contains(string(rp.Output), "INVOKE_UNAVAILABLE") {
		t.Fatalf("replay of a chain root: match %v output %s; want INVOKE_UNAVAILABLE", rp.Match, rp.Output)
	}
	if rs := h.receipts("c-replay"); len(rs) != 3 {
		t.Fatalf("%d receipts, want the root, its hop and the replay (no hop of the replay)", len(rs))
	}
	h.verify()
}

// A capability that is not a capability id is refused to the guest as
// BAD_REQUEST, before anything is decided or recorded.
func TestChainInvalidCapabilityID(t *testing.T) {
	h := openChain(t, "", host.Options{}, nil)
	for _, c := range []string{"NOT A CAP", "cap.", strings.Repeat("cap.x", 100)} {
		prog, _ := json.Marshal(map[string]any{"op": "call", "cap": c, "input": map[string]any{"op": "echo"}})
		res := h.run(context.Background(), "caller", "c-badcap", string(prog))
		if e := outputInvokeError(t, res.Output); e.Code != "BAD_REQUEST" || e.DecisionID != "" {
			t.Fatalf("capability %.20q: %+v, want BAD_REQUEST with no decision", c, e)
		}
		if root := byDecision(h.receipts("c-badcap"))[res.Decision.DecisionID.String()]; root.BlastScore != nil || root.ChainHops != 0 {
			t.Fatalf("a refused capability id counted as a hop: %+v", root)
		}
	}
	h.verify()
}
