package host

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/ledger"
	"github.com/wcphall/hall/internal/router"
	"github.com/wcphall/hall/internal/sandbox"
)

// Governed pipelines (issue 23). A worker asks for another capability
// through hall_invoke_mem (sdk Call.Invoke) or hall_invoke (the first
// SDK's); the Hall decides that hop as a dispatch of its own, through the
// same path as Run, and records it under the decision of the dispatch
// that asked (its parent). A root dispatch
// and every hop below it form a chain.
//
// The rules, in the order a hop meets them:
//
//   - The capability must be a well-formed capability id (else the guest
//     gets BAD_REQUEST; nothing is decided).
//   - Chain limits (hall.json chain; part of the sealed snapshot): the
//     hop's depth, the calls its parent made, the calls its chain made.
//     Past one, the hop is denied DENY_CHAIN_LIMIT and recorded; the
//     parent's later attempts are refused under that same decision
//     (nothing more is recorded for them, so a loop cannot flood the
//     ledger).
//   - privilege_envelope.tools of the parent's worker must list the
//     capability, else DENY_TOOL_NOT_DECLARED, recorded. Both checks come
//     before routing: no rule, gate or policy sees such a request.
//   - The full decision (rules, controls, envelopes, policies, approvals,
//     attestation) for the parent's tenant, env, data label, tenant risk,
//     QoS class, correlation id and credential. A hop that needs a human
//     is denied DENY_REQUIRES_HUMAN_APPROVAL to its parent; no approval
//     is held for it (an approval binds one request, and a hop cannot
//     present one).
//   - The chain's blast: the sum of the blast scores of the root and of
//     every hop allowed so far, plus this hop's, must not pass the
//     threshold for the root's env and data label (ChainConfig
//     BlastThreshold), else DENY_CHAIN_BLAST, recorded.
//
// Snapshots: a hop is decided under the newest snapshot, as any Run
// (planFor), so a reload mid-chain applies to the hops after it (a
// withdrawn rule or worker stops the chain at its next hop) and each hop's
// decision and receipt name the snapshot it used. The chain's limits and
// blast threshold stay its root's (chain.cfg): a chain's budget is fixed
// when it is admitted (docs/EVIDENCE.md, "Chains of dispatches";
// TestChainHopSnapshotAfterReload).
//
// Resources: a hop runs while its parent waits inside the host call, so a
// chain never runs two workers at once. It takes no dispatch slot (it
// runs on its root's, admission.go) and never waits for the memory
// budget (sandbox Request.Hop): its ancestors hold their own charges, so
// waiting could wait on them. It gets its parent's remaining time, less a
// tenth (at most 50 ms) so that the parent can still act on the answer,
// and the parent's cancellation cancels it (recorded CANCELLED).

// Default chain limits (hall.json chain).
const (
	DefaultChainDepth            = 4
	DefaultChainCallsPerDispatch = 16
	DefaultChainCallsPerChain    = 64
)

// ChainConfig is the "chain" block of hall.json. Zero fields take the
// defaults.
type ChainConfig struct {
	// MaxDepth is how deep hops may nest below a root (default 4).
	MaxDepth int `json:"max_depth,omitempty"`
	// MaxCallsPerDispatch bounds the hops one dispatch may ask for
	// (default 16).
	MaxCallsPerDispatch int `json:"max_calls_per_dispatch,omitempty"`
	// MaxCallsPerChain bounds the hops of a whole chain (default 64).
	MaxCallsPerChain int `json:"max_calls_per_chain,omitempty"`
	// BlastThresholds overrides the chain blast threshold by env, then
	// data label (DefaultChainBlastThresholds).
	BlastThresholds map[string]map[string]int `json:"blast_thresholds,omitempty"`
}

func (c ChainConfig) check() error {
	for _, f := range []struct {
		name string
		v    int
	}{{"max_depth", c.MaxDepth}, {"max_calls_per_dispatch", c.MaxCallsPerDispatch}, {"max_calls_per_chain", c.MaxCallsPerChain}} {
		if f.v < 0 || f.v > 1<<20 {
			return fmt.Errorf("chain.%s: %d is out of range; give a count from 1 to %d (0 or absent: the default)", f.name, f.v, 1<<20)
		}
	}
	for env, row := range c.BlastThresholds {
		for label, v := range row {
			if v < 0 {
				return fmt.Errorf("chain.blast_thresholds.%s.%s: %d is negative; give the largest summed blast score a chain may reach (0 denies every hop)", env, label, v)
			}
		}
	}
	return nil
}

func (c ChainConfig) maxDepth() int { return cmpOr(c.MaxDepth, DefaultChainDepth) }
func (c ChainConfig) maxCalls() int {
	return cmpOr(c.MaxCallsPerDispatch, DefaultChainCallsPerDispatch)
}
func (c ChainConfig) maxChain() int { return cmpOr(c.MaxCallsPerChain, DefaultChainCallsPerChain) }

func cmpOr(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// DefaultChainBlastThresholds is the largest summed blast score a chain
// may reach, by env and data label (docs/EVIDENCE.md, "Chains of
// dispatches"). A worker's blast score is PyHall's heuristic for its
// request (10 base, +20 INTERNAL, +40 RESTRICTED, +15 prod/edge, +10 P0,
// +15 egress, +15 writes; or the request's higher blast_score), raised to
// its record's blast_radius (data + network + financial + time, at most
// 100). PyHall gates one worker at 85 in prod/edge; a chain is gated on
// its sum, tighter in prod/edge and for more sensitive labels. An env not
// listed takes prod's row; a label not listed, the row's smallest value.
func DefaultChainBlastThresholds() map[string]map[string]int {
	return map[string]map[string]int{
		"dev":   {"PUBLIC": 1000, "INTERNAL": 800, "CONFIDENTIAL": 600, "RESTRICTED": 400},
		"stage": {"PUBLIC": 800, "INTERNAL": 600, "CONFIDENTIAL": 400, "RESTRICTED": 300},
		"prod":  {"PUBLIC": 500, "INTERNAL": 400, "CONFIDENTIAL": 300, "RESTRICTED": 200},
		"edge":  {"PUBLIC": 500, "INTERNAL": 400, "CONFIDENTIAL": 300, "RESTRICTED": 200},
	}
}

// BlastThreshold is the chain blast threshold for env and label: hall.json
// chain.blast_thresholds, else DefaultChainBlastThresholds.
func (c ChainConfig) BlastThreshold(env, label string) int {
	if v, ok := c.BlastThresholds[env][label]; ok {
		return v
	}
	def := DefaultChainBlastThresholds()
	row, ok := def[env]
	if !ok {
		row = def["prod"]
	}
	if v, ok := row[label]; ok {
		return v
	}
	vals := make([]int, 0, len(row))
	for _, v := range row {
		vals = append(vals, v)
	}
	return slices.Min(vals)
}

// workerBlast is the blast score a dispatch of in on rec adds to its
// chain (DefaultChainBlastThresholds says how).
func workerBlast(in *wcp.RouteInput, rec *wcp.Record) int {
	s := router.BlastScore(in)
	if b := rec.BlastRadius; b != nil {
		s = max(s, min(max(b.Data, 0)+max(b.Network, 0)+max(b.Financial, 0)+max(b.Time, 0), 100))
	}
	return s
}

// chain is the state a root dispatch shares with its hops.
type chain struct {
	cfg  ChainConfig
	snap *snapshot // the root's: its limits bind the whole chain

	mu      sync.Mutex
	decided int // hops decided (allowed or denied), the root excluded
	blast   int // the root's and every allowed hop's blast score
	// ranHops and ranBlast count the hops that have receipts, for the
	// root's receipt (chain_hops, chain_blast).
	ranHops, ranBlast int
}

// frame is one dispatch of a chain: the root (depth 0) or a hop.
type frame struct {
	chain      *chain
	parent     *frame
	depth      int
	decisionID string
	workerID   string
	in         *wcp.RouteInput
	tools      []string
	blast      int

	// Guarded by chain.mu.
	calls int
	// limitDecision is the recorded DENY_CHAIN_LIMIT under which later
	// attempts of this dispatch are refused.
	limitDecision string
	limitMsg      string
}

func newFrame(c *chain, parent *frame, dec *wcp.RouteDecision, in *wcp.RouteInput, plan *Plan, blast int) *frame {
	f := &frame{chain: c, parent: parent, decisionID: dec.DecisionID.String(), workerID: plan.WorkerID(), in: in, blast: blast}
	if parent != nil {
		f.depth = parent.depth + 1
	}
	if e := plan.w.rec.PrivilegeEnvelope; e != nil {
		f.tools = e.Tools
	}
	return f
}

// hopInput is the RouteInput of a hop for capability: the parent's
// tenant, env, data label, tenant risk, QoS class, correlation id and
// credential; no request flags, blast radius, blast score or dry run of
// the parent's (those described the parent's own request).
func (f *frame) hopInput(capability string) *wcp.RouteInput {
	p := f.in
	in := &wcp.RouteInput{
		CapabilityID: capability, Env: p.Env, DataLabel: p.DataLabel, TenantRisk: p.TenantRisk, QoSClass: p.QoSClass,
		TenantID: p.TenantID, CorrelationID: p.CorrelationID, TenantCredential: p.TenantCredential,
		Request: json.RawMessage(`{}`), BlastRadius: json.RawMessage(`{}`), PrivilegeContext: p.PrivilegeContext,
	}
	if in.PrivilegeContext == nil {
		in.PrivilegeContext = json.RawMessage(`{}`)
	}
	return in
}

// invoker serves hall_invoke for the dispatch f.
func (h *Hall) invoker(f *frame) sandbox.Invoker {
	return func(ctx context.Context, capability string, input []byte) ([]byte, *sandbox.InvokeError) {
		return h.invoke(ctx, f, capability, input)
	}
}

// hopMargin is what a hop leaves of its parent's remaining time, so that
// the parent can still act on the hop's answer.
func hopMargin(remaining time.Duration) time.Duration {
	return min(remaining/10, 50*time.Millisecond)
}

func (h *Hall) invoke(ctx context.Context, f *frame, capability string, input []byte) ([]byte, *sandbox.InvokeError) {
	if err := wcp.CheckID(wcp.KindCapability, capability); err != nil {
		return nil, &sandbox.InvokeError{Code: sandbox.GuestBadRequest, Message: "hall_invoke: capability: " + err.Error()}
	}
	c := f.chain
	in := f.hopInput(capability)
	c.mu.Lock()
	if f.limitDecision != "" {
		id, msg := f.limitDecision, f.limitMsg
		c.mu.Unlock()
		return nil, &sandbox.InvokeError{Code: sandbox.GuestChainLimit, DenyCode: string(wcp.DenyChainLimit), DecisionID: id, Message: msg}
	}
	var code wcp.DenyCode
	var msg string
	switch {
	case f.depth+1 > c.cfg.maxDepth():
		code, msg = wcp.DenyChainLimit, fmt.Sprintf("A hop of %s would be at depth %d, past the chain's max_depth of %d (hall.json chain); it was not routed.", f.workerID, f.depth+1, c.cfg.maxDepth())
	case f.calls >= c.cfg.maxCalls():
		code, msg = wcp.DenyChainLimit, fmt.Sprintf("%s already asked for %d hops, the chain's max_calls_per_dispatch (hall.json chain); this one was not routed, nor will its later ones be.", f.workerID, f.calls)
	case c.decided >= c.cfg.maxChain():
		code, msg = wcp.DenyChainLimit, fmt.Sprintf("The chain already made %d hops, its max_calls_per_chain (hall.json chain); this one was not routed.", c.decided)
	case !slices.Contains(f.tools, capability):
		code, msg = wcp.DenyToolNotDeclared, fmt.Sprintf("%s asked for %s, which its privilege_envelope.tools does not list; it was not routed.", f.workerID, capability)
	}
	if code != wcp.DenyChainLimit {
		f.calls++
		c.decided++
	}
	c.mu.Unlock()
	if code != "" {
		dec := preRoutingDenial(ctx, in, code, msg)
		dec.Chain = &wcp.ChainRef{ParentDecisionID: f.decisionID, Depth: f.depth + 1}
		if err := h.recordDecision(ctx, c.snap, &dec); err != nil {
			return nil, &sandbox.InvokeError{Code: sandbox.GuestInvokeFailed, Outcome: outcomeHallError, Message: "the hop's denial could not be recorded: " + err.Error()}
		}
		ie := &sandbox.InvokeError{Code: sandbox.GuestInvokeDenied, DenyCode: string(code), DecisionID: dec.DecisionID.String(), Message: msg}
		if code == wcp.DenyChainLimit {
			// Later attempts of this dispatch meet the same limit: they
			// are refused under this decision.
			ie.Code = sandbox.GuestChainLimit
			c.mu.Lock()
			f.limitDecision, f.limitMsg = ie.DecisionID, msg
			c.mu.Unlock()
		}
		return nil, ie
	}

	// The hop runs on its own context: cancelled with its parent's, but
	// with its own, earlier deadline, so that a hop that takes all its
	// time is the hop's LIMIT_TIMEOUT and its parent can still answer.
	hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	defer context.AfterFunc(ctx, cancel)()
	var timeout time.Duration
	if dl, ok := ctx.Deadline(); ok {
		remaining := time.Until(dl)
		timeout = max(remaining-hopMargin(remaining), time.Millisecond)
	}
	// Traced, the hop is a "hall.hop" span under its parent's sandbox
	// call, over its own decision, sandbox call and evidence commit.
	hctx, span := h.startSpan(hctx, "hall.hop")
	res, err := h.run(hctx, RunRequest{Input: in, Payload: input, Timeout: timeout}, f)
	endRun(span, res, err, nil)
	switch {
	case err != nil:
		// A failure of the Hall (the hop's evidence could not be
		// committed, the Hall is closing, …): whatever was decided, the
		// caller gets no output.
		ie := &sandbox.InvokeError{Code: sandbox.GuestInvokeFailed, Outcome: outcomeHallError, Message: err.Error()}
		if res != nil {
			ie.DecisionID = res.Decision.DecisionID.String()
			if res.Outcome != "" {
				ie.Outcome = res.Outcome
			}
		}
		if ctx.Err() != nil {
			ie.Outcome = outcomeCancelled
		}
		return nil, ie
	case res.Decision.Denied:
		return nil, &sandbox.InvokeError{Code: sandbox.GuestInvokeDenied, DenyCode: string(res.Decision.Code()), DecisionID: res.Decision.DecisionID.String(), Message: res.Decision.DenyReason.Message}
	case res.Outcome != "ok":
		msg := res.Outcome
		if res.Err != nil {
			msg = res.Err.Error()
		}
		return nil, &sandbox.InvokeError{Code: sandbox.GuestInvokeFailed, Outcome: res.Outcome, DecisionID: res.Decision.DecisionID.String(), Message: msg}
	}
	return res.Output, nil
}

// preRoutingDenial is a decision denied with code before any rule was
// matched (a hop refused by its chain's limits or its parent's tools).
func preRoutingDenial(ctx context.Context, in *wcp.RouteInput, code wcp.DenyCode, msg string) wcp.RouteDecision {
	dec := router.Decide(ctx, in, &router.RuleSet{}, nil, router.Options{})
	dec.TelemetryEnvelopes = nil
	dec.MatchedRuleID = "PRE_ROUTING"
	dec.Denied = true
	dec.DenyReason = &wcp.DenyReason{Code: code, Message: msg}
	dec.SelectedWorkerSpeciesID = ""
	dec.CandidateWorkersRanked = nil
	dec.ArtifactHash = ""
	dec.TelemetryEnvelopes = append(dec.TelemetryEnvelopes, wcp.Event{
		EventID: wcp.EvtTaskDenied, Timestamp: dec.Timestamp, CorrelationID: dec.CorrelationID,
		TenantID: dec.TenantID, CapabilityID: dec.CapabilityID, DenyCode: code, DenyMessage: msg, MatchedRuleID: dec.MatchedRuleID,
	})
	return dec
}

// denyChainBlast turns an allowed hop decision into DENY_CHAIN_BLAST.
func denyChainBlast(dec *wcp.RouteDecision, sum, score, threshold int) {
	msg := fmt.Sprintf("This hop's blast score %d would take its chain's sum from %d to %d, past the threshold of %d for env %s and data label %s (hall.json chain.blast_thresholds); it was not run.", score, sum, sum+score, threshold, dec.Env, dec.DataLabel)
	dec.Denied = true
	dec.DenyReason = &wcp.DenyReason{Code: wcp.DenyChainBlast, Message: msg}
	dec.SelectedWorkerSpeciesID = ""
	dec.ArtifactHash = ""
	dec.TelemetryEnvelopes = append(dec.TelemetryEnvelopes, wcp.Event{
		EventID: wcp.EvtTaskDenied, Timestamp: dec.Timestamp, CorrelationID: dec.CorrelationID,
		TenantID: dec.TenantID, CapabilityID: dec.CapabilityID, DenyCode: wcp.DenyChainBlast, DenyMessage: msg, MatchedRuleID: dec.MatchedRuleID,
	})
}

// envOf and labelOf are the env and data label a chain's blast threshold
// is read for: its root's.
func (s *snapshot) envOf(parent *frame, in *wcp.RouteInput) string {
	for parent != nil {
		in, parent = parent.in, parent.parent
	}
	return in.Env
}

func (s *snapshot) labelOf(parent *frame, in *wcp.RouteInput) string {
	for parent != nil {
		in, parent = parent.in, parent.parent
	}
	return in.DataLabel
}

// fill sets r's chain fields: a hop's parent, depth and blast score; a
// root's blast score, hop count and summed blast when it made hops.
func (f *frame) fill(r *ledger.Receipt) {
	if f == nil {
		return
	}
	c := f.chain
	c.mu.Lock()
	defer c.mu.Unlock()
	if f.parent != nil {
		r.ParentDecisionID, r.ChainDepth = f.parent.decisionID, f.depth
		b := f.blast
		r.BlastScore = &b
		return
	}
	if c.decided > 0 {
		b := f.blast
		r.BlastScore = &b
		r.ChainHops, r.ChainBlast = c.ranHops, f.blast+c.ranBlast
	}
}

// receipted counts a hop whose receipt was committed into its chain's
// totals (the root's chain_hops and chain_blast).
func (f *frame) receipted() {
	if f == nil || f.parent == nil {
		return
	}
	c := f.chain
	c.mu.Lock()
	c.ranHops++
	c.ranBlast += f.blast
	c.mu.Unlock()
}
