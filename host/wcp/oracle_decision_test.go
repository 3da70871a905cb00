package wcp

// The reference implementation RouteDecision's appenders are checked
// against: the reflection-based MarshalJSON, frozen here as it was before
// AppendJSON replaced it, with the event encoder it called.

import (
	"encoding/json"
	"strconv"
)

// oracleMarshalDecision is RouteDecision.MarshalJSON as it was: reflection,
// then the timestamp spliced in after decision_id.
func oracleMarshalDecision(d RouteDecision) ([]byte, error) {
	type plain RouteDecision
	body, err := json.Marshal(plain(d))
	if err != nil {
		return nil, err
	}
	const idLen = len(`{"decision_id":"00000000-0000-0000-0000-000000000000"`)
	out := make([]byte, 0, len(body)+48)
	out = append(out, body[:idLen]...)
	out = append(out, `,"timestamp":`...)
	out = append(out, '"')
	out = d.Timestamp.UTC().AppendFormat(out, TimeLayout)
	out = append(out, '"')
	return append(out, body[idLen:]...), nil
}

// oracleEventJSON is Event.AppendJSON as it was (which the reference
// MarshalJSON calls through Event.MarshalJSON: checkDecision checks that
// Event.AppendJSON still writes these bytes).
func oracleEventJSON(e *Event) []byte {
	var b []byte
	b = append(b, `{"event_id":`...)
	b = oracleString(b, e.EventID)
	fields, known := eventFields[e.EventID]
	if !known {
		fields = genericFields
	}
	str := func(key, v string) {
		if !known && v == "" {
			return
		}
		b = append(b, ',', '"')
		b = append(b, key...)
		b = append(b, '"', ':')
		b = oracleString(b, v)
	}
	for _, f := range fields {
		switch f {
		case fTimestamp:
			if known || !e.Timestamp.IsZero() {
				b = append(b, `,"timestamp":`...)
				b = append(b, '"')
				b = e.Timestamp.UTC().AppendFormat(b, TimeLayout)
				b = append(b, '"')
			}
		case fCorrelation:
			str("correlation_id", e.CorrelationID)
		case fTenant:
			str("tenant_id", e.TenantID)
		case fTask:
			str("task_id", e.TaskID)
		case fCapability:
			str("capability_id", e.CapabilityID)
		case fEnv:
			str("env", e.Env)
		case fDataLabel:
			str("data_label", e.DataLabel)
		case fMatchedRule:
			str("matched_rule_id", e.MatchedRuleID)
		case fSelected:
			str("selected_worker_species_id", e.SelectedWorkerSpeciesID)
		case fSpecies:
			str("worker_species_id", e.WorkerSpeciesID)
		case fPolicyVersion:
			str("policy_version", e.PolicyVersion)
		case fQoS:
			str("qos_class", e.QoSClass)
		case fBlast:
			if known || e.BlastScore != 0 {
				b = append(b, `,"blast_score":`...)
				b = strconv.AppendInt(b, int64(e.BlastScore), 10)
			}
		case fDecision:
			str("decision", e.Decision)
		case fReason:
			str("reason", e.Reason)
		case fSeverity:
			str("severity", e.Severity)
		case fDenyCode:
			str("deny_code", string(e.DenyCode))
		case fDenyMessage:
			str("deny_message", e.DenyMessage)
		}
	}
	if e.DryRun {
		b = append(b, `,"dry_run":true`...)
	}
	return append(b, '}')
}
