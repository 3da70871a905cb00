package wcp

import (
	"crypto/sha256"
	"testing"
	"time"

	"github.com/google/uuid"
)

// benchDecision is a realistic allowed decision: four telemetry envelopes,
// three ranked candidates, an artifact hash, an attestation and policy
// evidence (about 2.5 kB of JSON).
func benchDecision() RouteDecision {
	ts := time.Date(2026, 3, 4, 5, 6, 7, 891011000, time.UTC)
	valid := true
	s1, s2, s3 := PyFloat(1), PyFloat(0.73), PyFloat(0.25)
	ctls := []string{"ctrl.obs.audit-log-append-only"}
	const (
		corr    = "550e8400-e29b-41d4-a716-446655440000"
		tenant  = "tenant-acme"
		capID   = "cap.doc.summarize"
		rule    = "rr_doc_summarize_prod"
		species = "wrk.doc.summarizer"
	)
	ev := func(id string) Event {
		return Event{EventID: id, Timestamp: ts, CorrelationID: corr, TenantID: tenant, TaskID: "task_default", CapabilityID: capID,
			Env: "prod", DataLabel: "INTERNAL", MatchedRuleID: rule, SelectedWorkerSpeciesID: species, WorkerSpeciesID: species,
			PolicyVersion: "policy.v0", QoSClass: "P2", BlastScore: 25, Decision: "ALLOW"}
	}
	blast, routed, sel, gated := ev(EvtBlastScored), ev(EvtTaskRouted), ev(EvtWorkerSelected), ev(EvtPolicyGated)
	sel.Reason = "first_available_candidate"
	gated.Reason = "no_gate_required"
	return RouteDecision{
		DecisionID:    uuid.MustParse("0190f1c2-7d3e-7a4b-9c5d-6e7f8091a2b3"),
		Timestamp:     ts,
		CorrelationID: corr, TenantID: tenant, CapabilityID: capID, MatchedRuleID: rule,
		Env: "prod", DataLabel: "INTERNAL", TenantRisk: "low", QoSClass: "P2",
		SelectedWorkerSpeciesID: species,
		CandidateWorkersRanked: []CandidateWorker{
			{WorkerSpeciesID: species, ScoreHint: &s1, RequiresControlsMinimum: &ctls},
			{WorkerSpeciesID: "wrk.doc.summarizer.large", ScoreHint: &s2, SkipReason: SkipAlreadySelected},
			{WorkerSpeciesID: "wrk.ghost.none", ScoreHint: &s3, SkipReason: SkipUnavailable},
		},
		RequiredControlsEffective:    []string{"ctrl.obs.audit-log-append-only", "ctrl.blast_radius_scoring"},
		RecommendedProfilesEffective: JSONArray(`[{"profile":"fast","weight":2}]`),
		EscalationEffective:          Escalation{HumanRequiredIf: JSONArray(`[]`)},
		PreconditionsChecked:         DefaultPreconditions(),
		ArtifactHash:                 "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		WorkerAttestationChecked:     true,
		WorkerAttestationValid:       &valid,
		TelemetryEnvelopes:           []Event{blast, routed, sel, gated},
		RequestHash:                  sha256.Sum256([]byte("request")),
		Policy:                       &PolicyEvidence{SetDigest: "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae", Outcome: "ALLOW"},
	}
}

// BenchmarkDecisionMarshal: old is the reflection-based MarshalJSON, new
// the appender's (a fresh buffer), new-append AppendJSON into a reused one.
func BenchmarkDecisionMarshal(b *testing.B) {
	d := benchDecision()
	b.Run("old", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := oracleMarshalDecision(d); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("new", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := d.MarshalJSON(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("new-append", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			var err error
			if buf, err = d.AppendJSON(buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkCanonical: old and new are CanonicalJSON of the decision's wire
// form (the reference implementation and the tokenizer); direct is
// AppendCanonicalJSON, which writes the same bytes from the struct.
func BenchmarkCanonical(b *testing.B) {
	d := benchDecision()
	wire, err := oracleMarshalDecision(d)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("decision wire JSON: %d bytes", len(wire))
	b.Run("old", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := oracleCanonicalJSON(wire); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("new", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := CanonicalJSON(wire); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			var err error
			if buf, err = d.AppendCanonicalJSON(buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
	})
}
