package wcp

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"math"
	"math/big"
	"reflect"
	"strconv"
	"unicode/utf8"

	"github.com/google/uuid"
)

// A decision's two encodings, written by hand: every decision the Hall
// makes is encoded (its wire JSON) and canonicalized (the form its
// evidence-ledger entry signs), and reflection plus a re-parse cost more
// than deciding.
//
// The wire form must stay byte for byte what encoding/json wrote for the
// struct (the bytes are stored, hashed and compared with PyHall's):
// strings are escaped as encoding/json escapes them ('<', '>', '&',
// U+2028 and U+2029 as \u escapes, invalid UTF-8 as \ufffd), except in
// the fields whose types write themselves through a MarshalJSON method
// (OptString, Event), whose output encoding/json only compacts and
// HTML-escapes: there invalid UTF-8 is the character U+FFFD. Raw JSON
// fields (JSONArray) are validated and compacted as encoding/json does.
// decisionjson_test.go checks all of it against the reflection-based
// encoder.

// AppendJSON appends the decision's JSON (its wire form) to b and returns
// the extended buffer. The bytes are exactly those MarshalJSON and
// json.Marshal return for the decision, which are those encoding/json
// wrote for it before this appender existed: compact, PyHall's key order
// with the timestamp second, every key present, null where unset
// ("policy" only when set), strings escaped as encoding/json escapes them.
// Callers that want the bytes should call it rather than json.Marshal,
// which validates and copies MarshalJSON's output once more.
//
// It fails exactly where MarshalJSON fails, with the same error (a
// *json.MarshalerError): a score hint that is NaN or infinite, or a raw
// JSON field (RecommendedProfilesEffective,
// EscalationEffective.HumanRequiredIf) that is not valid JSON. On failure
// it returns b as it was.
func (d *RouteDecision) AppendJSON(b []byte) ([]byte, error) {
	n := len(b)
	b, err := d.appendJSON(b)
	if err != nil {
		return b[:n], err
	}
	return b, nil
}

func (d *RouteDecision) appendJSON(b []byte) ([]byte, error) {
	var err error
	b = append(b, `{"decision_id":"`...)
	b = appendUUID(b, d.DecisionID)
	b = append(b, `","timestamp":`...)
	b = appendTime(b, d.Timestamp)
	b = append(b, `,"correlation_id":`...)
	b = appendWireString(b, d.CorrelationID, false)
	b = append(b, `,"tenant_id":`...)
	b = appendWireString(b, d.TenantID, false)
	b = append(b, `,"capability_id":`...)
	b = appendWireString(b, d.CapabilityID, false)
	b = append(b, `,"matched_rule_id":`...)
	b = appendWireString(b, d.MatchedRuleID, false)
	b = append(b, `,"env":`...)
	b = appendWireString(b, d.Env, false)
	b = append(b, `,"data_label":`...)
	b = appendWireString(b, d.DataLabel, false)
	b = append(b, `,"tenant_risk":`...)
	b = appendWireString(b, d.TenantRisk, false)
	b = append(b, `,"qos_class":`...)
	b = appendWireString(b, d.QoSClass, false)
	b = append(b, `,"denied":`...)
	b = strconv.AppendBool(b, d.Denied)
	b = append(b, `,"deny_reason_if_denied":`...)
	if d.DenyReason == nil {
		b = append(b, "null"...)
	} else {
		b = d.DenyReason.appendJSON(b)
	}
	b = append(b, `,"selected_worker_species_id":`...)
	b = appendOptWire(b, d.SelectedWorkerSpeciesID)
	b = append(b, `,"candidate_workers_ranked":`...)
	if d.CandidateWorkersRanked == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range d.CandidateWorkersRanked {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = d.CandidateWorkersRanked[i].appendJSON(b); err != nil {
				return b, err
			}
		}
		b = append(b, ']')
	}
	b = append(b, `,"required_controls_effective":`...)
	b = appendWireStrings(b, d.RequiredControlsEffective)
	b = append(b, `,"recommended_profiles_effective":`...)
	if b, err = appendRawWire(b, d.RecommendedProfilesEffective); err != nil {
		return b, err
	}
	esc := &d.EscalationEffective
	b = append(b, `,"escalation_effective":{"policy_gate":`...)
	b = strconv.AppendBool(b, esc.PolicyGate)
	b = append(b, `,"msavx_step_up":`...)
	b = strconv.AppendBool(b, esc.MsavxStepUp)
	b = append(b, `,"human_required_default":`...)
	b = strconv.AppendBool(b, esc.HumanRequiredDefault)
	b = append(b, `,"human_required_if":`...)
	if b, err = appendRawWire(b, esc.HumanRequiredIf); err != nil {
		return b, err
	}
	b = append(b, `,"rationale":`...)
	b = appendWireStringPtr(b, esc.Rationale)
	pre := &d.PreconditionsChecked
	b = append(b, `},"preconditions_checked":{"must_have_correlation_id":`...)
	b = strconv.AppendBool(b, pre.MustHaveCorrelationID)
	b = append(b, `,"must_attach_policy_version":`...)
	b = strconv.AppendBool(b, pre.MustAttachPolicyVersion)
	b = append(b, `,"must_record_artifact_hash_if_executes":`...)
	b = strconv.AppendBool(b, pre.MustRecordArtifactHashIfExecutes)
	b = append(b, `,"deny_if_missing_required_controls":`...)
	b = strconv.AppendBool(b, pre.DenyIfMissingRequiredControls)
	b = append(b, `,"deny_if_unsigned_artifact_in_prod":`...)
	b = strconv.AppendBool(b, pre.DenyIfUnsignedArtifactInProd)
	b = append(b, `,"deny_if_no_attestation_in_prod":`...)
	b = strconv.AppendBool(b, pre.DenyIfNoAttestationInProd)
	b = append(b, `},"artifact_hash":`...)
	b = appendOptWire(b, d.ArtifactHash)
	b = append(b, `,"worker_attestation_checked":`...)
	b = strconv.AppendBool(b, d.WorkerAttestationChecked)
	b = append(b, `,"worker_attestation_valid":`...)
	b = appendBoolPtr(b, d.WorkerAttestationValid)
	b = append(b, `,"dry_run":`...)
	b = strconv.AppendBool(b, d.DryRun)
	b = append(b, `,"telemetry_envelopes":`...)
	if d.TelemetryEnvelopes == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range d.TelemetryEnvelopes {
			if i > 0 {
				b = append(b, ',')
			}
			b = d.TelemetryEnvelopes[i].appendJSON(b, true)
		}
		b = append(b, ']')
	}
	b = append(b, `,"request_hash":`...)
	b = appendDigest(b, d.RequestHash)
	if p := d.Policy; p != nil {
		b = append(b, `,"policy":{"set_digest":`...)
		b = appendWireString(b, p.SetDigest, false)
		if p.Outcome != "" {
			b = append(b, `,"outcome":`...)
			b = appendWireString(b, p.Outcome, false)
		}
		if p.PolicyID != "" {
			b = append(b, `,"policy_id":`...)
			b = appendWireString(b, p.PolicyID, false)
		}
		if p.ApprovalID != "" {
			b = append(b, `,"approval_id":`...)
			b = appendWireString(b, p.ApprovalID, false)
		}
		b = append(b, '}')
	}
	if c := d.Chain; c != nil {
		b = append(b, `,"chain":{"parent_decision_id":`...)
		b = appendWireString(b, c.ParentDecisionID, false)
		b = append(b, `,"depth":`...)
		b = strconv.AppendInt(b, int64(c.Depth), 10)
		b = append(b, '}')
	}
	return append(b, '}'), nil
}

func (r *DenyReason) appendJSON(b []byte) []byte {
	b = append(b, `{"code":`...)
	b = appendWireString(b, string(r.Code), false)
	b = append(b, `,"message":`...)
	b = appendWireString(b, r.Message, false)
	if r.BlastScore != nil {
		b = append(b, `,"blast_score":`...)
		b = r.BlastScore.Append(b, 10)
	}
	if len(r.ShadowedRuleIDs) > 0 {
		b = append(b, `,"shadowed_rule_ids":`...)
		b = appendWireStrings(b, r.ShadowedRuleIDs)
	}
	if r.ShadowCount != nil {
		b = append(b, `,"shadow_count":`...)
		b = strconv.AppendInt(b, int64(*r.ShadowCount), 10)
	}
	if len(r.Missing) > 0 {
		b = append(b, `,"missing":`...)
		b = appendWireStrings(b, r.Missing)
	}
	for _, m := range [...]struct {
		key string
		v   *string
	}{{`,"tenant_id":`, r.TenantID}, {`,"reason":`, r.Reason}, {`,"policy_version":`, r.PolicyVersion}} {
		if m.v != nil {
			b = append(b, m.key...)
			b = appendWireString(b, *m.v, false)
		}
	}
	if r.SupervisorRequired {
		b = append(b, `,"supervisor_required":true`...)
	}
	for _, m := range [...]struct {
		key string
		v   *string
	}{{`,"worker_species_id":`, r.WorkerSpeciesID}, {`,"pending_approval_id":`, r.PendingApprovalID}, {`,"approval_expires_at":`, r.ApprovalExpiresAt}} {
		if m.v != nil {
			b = append(b, m.key...)
			b = appendWireString(b, *m.v, false)
		}
	}
	return append(b, '}')
}

func (c *CandidateWorker) appendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"worker_species_id":`...)
	b = appendWireString(b, c.WorkerSpeciesID, false)
	b = append(b, `,"score_hint":`...)
	if c.ScoreHint == nil {
		b = append(b, "null"...)
	} else {
		f := float64(*c.ScoreHint)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			// encoding/json refuses what PyFloat writes for them.
			raw, _ := c.ScoreHint.MarshalJSON()
			return b, marshalerError(reflect.TypeFor[*PyFloat](), raw)
		}
		b = appendPyFloat(b, f)
	}
	b = append(b, `,"requires_controls_minimum":`...)
	if c.RequiresControlsMinimum == nil {
		b = append(b, "null"...)
	} else {
		b = appendWireStrings(b, *c.RequiresControlsMinimum)
	}
	b = append(b, `,"skip_reason":`...)
	b = appendOptWire(b, c.SkipReason)
	return append(b, '}'), nil
}

// marshalerError is the error encoding/json returns when a MarshalJSON
// method of type t returns raw, which is not valid JSON.
func marshalerError(t reflect.Type, raw []byte) error {
	var buf bytes.Buffer
	err := json.Compact(&buf, raw) // the same scanner, so the same error
	if err == nil {
		panic("wcp: marshalerError on valid JSON")
	}
	return &json.MarshalerError{Type: t, Err: err}
}

// appendPyFloat appends a finite f as PyFloat.MarshalJSON writes it.
func appendPyFloat(b []byte, f float64) []byte {
	n := len(b)
	b = strconv.AppendFloat(b, f, 'g', -1, 64)
	if !bytes.ContainsAny(b[n:], ".e") {
		b = append(b, '.', '0')
	}
	return b
}

// appendRawWire appends a raw JSON field as encoding/json writes a
// JSONArray: [] when empty or exactly null, otherwise validated, compacted
// and HTML-escaped.
func appendRawWire(b []byte, a JSONArray) ([]byte, error) {
	if len(a) == 0 || string(a) == "null" {
		return append(b, "[]"...), nil
	}
	if !json.Valid(a) {
		return b, marshalerError(reflect.TypeFor[JSONArray](), a)
	}
	// White space outside strings goes; inside strings '<', '>', '&',
	// U+2028 and U+2029 are escaped (they cannot occur outside one).
	start, inString := 0, false
	for i := 0; i < len(a); i++ {
		c := a[i]
		if !inString {
			switch c {
			case '"':
				inString = true
			case ' ', '\t', '\n', '\r':
				b = append(b, a[start:i]...)
				start = i + 1
			}
			continue
		}
		switch {
		case c == '\\':
			i++ // an escape's second byte is ASCII and none of these
		case c == '"':
			inString = false
		case c == '<' || c == '>' || c == '&':
			b = append(b, a[start:i]...)
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			start = i + 1
		case c == 0xE2 && i+2 < len(a) && a[i+1] == 0x80 && a[i+2]&^1 == 0xA8:
			b = append(b, a[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[a[i+2]&0xF])
			i += 2
			start = i + 1
		}
	}
	return append(b, a[start:]...), nil
}

// wireSafe marks the ASCII bytes encoding/json writes as they are in a
// string (its htmlSafeSet): printable ASCII but '"', '\\', '<', '>', '&'.
var wireSafe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendWireString appends s as encoding/json writes a string with HTML
// escaping on (json.Marshal's default): '"' and '\\' escaped, \b \f \n \r
// \t, other control characters as \u00xx, '<', '>', '&', U+2028 and U+2029
// as \u escapes. Invalid UTF-8 is written as \ufffd, or, with rawFFFD, as
// the character U+FFFD: what encoding/json leaves of a string a
// MarshalJSON method wrote with appendString.
func appendWireString(b []byte, s string, rawFFFD bool) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if wireSafe[c] {
				i++
				continue
			}
			b = appendASCIIEscape(append(b, s[start:i]...), c)
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			if rawFFFD {
				b = append(b, "\uFFFD"...)
			} else {
				b = append(b, `\ufffd`...)
			}
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendOptWire appends an OptString as encoding/json writes it.
func appendOptWire(b []byte, s OptString) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	return appendWireString(b, string(s), true)
}

func appendWireStringPtr(b []byte, s *string) []byte {
	if s == nil {
		return append(b, "null"...)
	}
	return appendWireString(b, *s, false)
}

// appendWireStrings appends a []string as encoding/json writes it (nil is
// null).
func appendWireStrings(b []byte, ss []string) []byte {
	if ss == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendWireString(b, s, false)
	}
	return append(b, ']')
}

func appendBoolPtr(b []byte, v *bool) []byte {
	if v == nil {
		return append(b, "null"...)
	}
	return strconv.AppendBool(b, *v)
}

// appendUUID appends id as uuid.UUID.String writes it (without quotes).
func appendUUID(b []byte, id uuid.UUID) []byte {
	b = hex.AppendEncode(b, id[0:4])
	b = append(b, '-')
	b = hex.AppendEncode(b, id[4:6])
	b = append(b, '-')
	b = hex.AppendEncode(b, id[6:8])
	b = append(b, '-')
	b = hex.AppendEncode(b, id[8:10])
	b = append(b, '-')
	return hex.AppendEncode(b, id[10:16])
}

// appendDigest appends d as a JSON string, "sha256:<hex>".
func appendDigest(b []byte, d Digest) []byte {
	b = append(b, `"sha256:`...)
	b = hex.AppendEncode(b, d[:])
	return append(b, '"')
}

// AppendCanonicalJSON appends the decision's canonical JSON to b and
// returns the extended buffer: exactly the bytes of
// CanonicalJSON(MarshalJSON(d)) (RFC 8785, CanonicalVersion 2: the form
// the evidence ledger signs and hashes), written from the struct without
// encoding and re-parsing the wire form.
//
// It fails exactly where that composition fails, with the same error:
// where MarshalJSON fails (see AppendJSON), or where a raw JSON field is
// nested so deep that the decision exceeds encoding/json's nesting limit.
// On failure it returns b as it was.
func (d *RouteDecision) AppendCanonicalJSON(b []byte) ([]byte, error) {
	n := len(b)
	if out, ok := d.appendCanonical(b); ok {
		return out, nil
	}
	// A field the direct path does not write (a non-finite score hint,
	// raw JSON that is invalid or too deep): the composition itself, for
	// its error.
	wire, err := d.AppendJSON(nil)
	if err != nil {
		return b[:n], err
	}
	out, err := appendCanonical(b[:n], wire)
	if err != nil {
		return b[:n], err
	}
	return out, nil
}

// appendCanonical writes the members of the wire form sorted by name
// (RFC 8785), each value as CanonicalJSON writes what the wire form holds:
// strings decoded (invalid UTF-8 is U+FFFD either way) and escaped with
// appendString, numbers as the doubles they denote. ok is false for a
// field it cannot write.
func (d *RouteDecision) appendCanonical(b []byte) (_ []byte, ok bool) {
	b = append(b, `{"artifact_hash":`...)
	b = appendOptCanonical(b, d.ArtifactHash)
	b = append(b, `,"candidate_workers_ranked":`...)
	if d.CandidateWorkersRanked == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range d.CandidateWorkersRanked {
			if i > 0 {
				b = append(b, ',')
			}
			if b, ok = d.CandidateWorkersRanked[i].appendCanonical(b); !ok {
				return b, false
			}
		}
		b = append(b, ']')
	}
	b = append(b, `,"capability_id":`...)
	b = appendString(b, d.CapabilityID)
	if c := d.Chain; c != nil {
		b = append(b, `,"chain":{"depth":`...)
		b = strconv.AppendInt(b, int64(c.Depth), 10)
		b = append(b, `,"parent_decision_id":`...)
		b = appendString(b, c.ParentDecisionID)
		b = append(b, '}')
	}
	b = append(b, `,"correlation_id":`...)
	b = appendString(b, d.CorrelationID)
	b = append(b, `,"data_label":`...)
	b = appendString(b, d.DataLabel)
	b = append(b, `,"decision_id":"`...)
	b = appendUUID(b, d.DecisionID)
	b = append(b, `","denied":`...)
	b = strconv.AppendBool(b, d.Denied)
	b = append(b, `,"deny_reason_if_denied":`...)
	if d.DenyReason == nil {
		b = append(b, "null"...)
	} else {
		b = d.DenyReason.appendCanonical(b)
	}
	b = append(b, `,"dry_run":`...)
	b = strconv.AppendBool(b, d.DryRun)
	b = append(b, `,"env":`...)
	b = appendString(b, d.Env)
	esc := &d.EscalationEffective
	b = append(b, `,"escalation_effective":{"human_required_default":`...)
	b = strconv.AppendBool(b, esc.HumanRequiredDefault)
	b = append(b, `,"human_required_if":`...)
	// Inside the decision and escalation_effective: two levels deep.
	if b, ok = appendRawCanonical(b, esc.HumanRequiredIf, 2); !ok {
		return b, false
	}
	b = append(b, `,"msavx_step_up":`...)
	b = strconv.AppendBool(b, esc.MsavxStepUp)
	b = append(b, `,"policy_gate":`...)
	b = strconv.AppendBool(b, esc.PolicyGate)
	b = append(b, `,"rationale":`...)
	b = appendStringPtrCanonical(b, esc.Rationale)
	b = append(b, `},"matched_rule_id":`...)
	b = appendString(b, d.MatchedRuleID)
	if p := d.Policy; p != nil {
		b = append(b, `,"policy":{`...)
		if p.ApprovalID != "" {
			b = append(b, `"approval_id":`...)
			b = appendString(b, p.ApprovalID)
			b = append(b, ',')
		}
		if p.Outcome != "" {
			b = append(b, `"outcome":`...)
			b = appendString(b, p.Outcome)
			b = append(b, ',')
		}
		if p.PolicyID != "" {
			b = append(b, `"policy_id":`...)
			b = appendString(b, p.PolicyID)
			b = append(b, ',')
		}
		b = append(b, `"set_digest":`...)
		b = appendString(b, p.SetDigest)
		b = append(b, '}')
	}
	pre := &d.PreconditionsChecked
	b = append(b, `,"preconditions_checked":{"deny_if_missing_required_controls":`...)
	b = strconv.AppendBool(b, pre.DenyIfMissingRequiredControls)
	b = append(b, `,"deny_if_no_attestation_in_prod":`...)
	b = strconv.AppendBool(b, pre.DenyIfNoAttestationInProd)
	b = append(b, `,"deny_if_unsigned_artifact_in_prod":`...)
	b = strconv.AppendBool(b, pre.DenyIfUnsignedArtifactInProd)
	b = append(b, `,"must_attach_policy_version":`...)
	b = strconv.AppendBool(b, pre.MustAttachPolicyVersion)
	b = append(b, `,"must_have_correlation_id":`...)
	b = strconv.AppendBool(b, pre.MustHaveCorrelationID)
	b = append(b, `,"must_record_artifact_hash_if_executes":`...)
	b = strconv.AppendBool(b, pre.MustRecordArtifactHashIfExecutes)
	b = append(b, `},"qos_class":`...)
	b = appendString(b, d.QoSClass)
	b = append(b, `,"recommended_profiles_effective":`...)
	if b, ok = appendRawCanonical(b, d.RecommendedProfilesEffective, 1); !ok {
		return b, false
	}
	b = append(b, `,"request_hash":`...)
	b = appendDigest(b, d.RequestHash)
	b = append(b, `,"required_controls_effective":`...)
	b = appendStringsCanonical(b, d.RequiredControlsEffective)
	b = append(b, `,"selected_worker_species_id":`...)
	b = appendOptCanonical(b, d.SelectedWorkerSpeciesID)
	b = append(b, `,"telemetry_envelopes":`...)
	if d.TelemetryEnvelopes == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range d.TelemetryEnvelopes {
			if i > 0 {
				b = append(b, ',')
			}
			b = d.TelemetryEnvelopes[i].appendCanonical(b)
		}
		b = append(b, ']')
	}
	b = append(b, `,"tenant_id":`...)
	b = appendString(b, d.TenantID)
	b = append(b, `,"tenant_risk":`...)
	b = appendString(b, d.TenantRisk)
	b = append(b, `,"timestamp":`...)
	b = appendTime(b, d.Timestamp)
	b = append(b, `,"worker_attestation_checked":`...)
	b = strconv.AppendBool(b, d.WorkerAttestationChecked)
	b = append(b, `,"worker_attestation_valid":`...)
	b = appendBoolPtr(b, d.WorkerAttestationValid)
	return append(b, '}'), true
}

func (r *DenyReason) appendCanonical(b []byte) []byte {
	b = append(b, '{')
	if r.ApprovalExpiresAt != nil {
		b = append(b, `"approval_expires_at":`...)
		b = appendString(b, *r.ApprovalExpiresAt)
		b = append(b, ',')
	}
	if r.BlastScore != nil {
		b = append(b, `"blast_score":`...)
		b = appendBigIntCanonical(b, r.BlastScore)
		b = append(b, ',')
	}
	b = append(b, `"code":`...)
	b = appendString(b, string(r.Code))
	b = append(b, `,"message":`...)
	b = appendString(b, r.Message)
	if len(r.Missing) > 0 {
		b = append(b, `,"missing":`...)
		b = appendStringsCanonical(b, r.Missing)
	}
	for _, m := range [...]struct {
		key string
		v   *string
	}{{`,"pending_approval_id":`, r.PendingApprovalID}, {`,"policy_version":`, r.PolicyVersion}, {`,"reason":`, r.Reason}} {
		if m.v != nil {
			b = append(b, m.key...)
			b = appendString(b, *m.v)
		}
	}
	if r.ShadowCount != nil {
		b = append(b, `,"shadow_count":`...)
		b = appendIntCanonical(b, int64(*r.ShadowCount))
	}
	if len(r.ShadowedRuleIDs) > 0 {
		b = append(b, `,"shadowed_rule_ids":`...)
		b = appendStringsCanonical(b, r.ShadowedRuleIDs)
	}
	if r.SupervisorRequired {
		b = append(b, `,"supervisor_required":true`...)
	}
	for _, m := range [...]struct {
		key string
		v   *string
	}{{`,"tenant_id":`, r.TenantID}, {`,"worker_species_id":`, r.WorkerSpeciesID}} {
		if m.v != nil {
			b = append(b, m.key...)
			b = appendString(b, *m.v)
		}
	}
	return append(b, '}')
}

func (c *CandidateWorker) appendCanonical(b []byte) ([]byte, bool) {
	b = append(b, `{"requires_controls_minimum":`...)
	if c.RequiresControlsMinimum == nil {
		b = append(b, "null"...)
	} else {
		b = appendStringsCanonical(b, *c.RequiresControlsMinimum)
	}
	b = append(b, `,"score_hint":`...)
	if c.ScoreHint == nil {
		b = append(b, "null"...)
	} else {
		var err error
		// PyFloat's shortest digits read back as the same double.
		if b, err = appendFloat(b, float64(*c.ScoreHint)); err != nil {
			return b, false
		}
	}
	b = append(b, `,"skip_reason":`...)
	b = appendOptCanonical(b, c.SkipReason)
	b = append(b, `,"worker_species_id":`...)
	b = appendString(b, c.WorkerSpeciesID)
	return append(b, '}'), true
}

// appendRawCanonical appends the canonical form of what appendRawWire
// writes for a, a being depth levels deep in the decision.
func appendRawCanonical(b []byte, a JSONArray, depth int) ([]byte, bool) {
	if len(a) == 0 || string(a) == "null" {
		return append(b, "[]"...), true
	}
	return appendCanonicalAt(b, a, depth)
}

func appendOptCanonical(b []byte, s OptString) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	return appendString(b, string(s))
}

func appendStringPtrCanonical(b []byte, s *string) []byte {
	if s == nil {
		return append(b, "null"...)
	}
	return appendString(b, *s)
}

func appendStringsCanonical(b []byte, ss []string) []byte {
	if ss == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

// appendIntCanonical appends n as CanonicalJSON writes the integer: as it
// is up to 15 digits, beyond as the nearest double.
func appendIntCanonical(b []byte, n int64) []byte {
	if n > -1e15 && n < 1e15 {
		return strconv.AppendInt(b, n, 10)
	}
	var buf [24]byte
	return appendNumberBytes(b, strconv.AppendInt(buf[:0], n, 10))
}

func appendBigIntCanonical(b []byte, x *big.Int) []byte {
	if x.IsInt64() {
		return appendIntCanonical(b, x.Int64())
	}
	return appendNumberBytes(b, x.Append(nil, 10))
}
