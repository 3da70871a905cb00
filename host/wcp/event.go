package wcp

import (
	"encoding/json"
	"strconv"
	"time"
)

// Telemetry event ids (WCP §5.4, without the ".v1" suffix the spec's prose
// mentions: PyHall's ids are these).
const (
	EvtTaskDenied         = "evt.os.task.denied"
	EvtBlastScored        = "evt.gov.blast_scored"
	EvtPrivilegeChecked   = "evt.gov.privilege_envelope.checked"
	EvtAttestationSkipped = "evt.os.worker.attestation_skipped"
	EvtTaskRouted         = "evt.os.task.routed"
	EvtWorkerSelected     = "evt.os.worker.selected"
	EvtPolicyGated        = "evt.os.policy.gated"
)

// Event is one telemetry envelope. Which fields an event carries depends on
// its EventID (see eventFields); identifiers are sanitized of control
// characters before they get here.
type Event struct {
	EventID                 string    `json:"event_id"`
	Timestamp               time.Time `json:"timestamp"`
	CorrelationID           string    `json:"correlation_id"`
	TenantID                string    `json:"tenant_id"`
	TaskID                  string    `json:"task_id"`
	CapabilityID            string    `json:"capability_id"`
	Env                     string    `json:"env"`
	DataLabel               string    `json:"data_label"`
	MatchedRuleID           string    `json:"matched_rule_id"`
	SelectedWorkerSpeciesID string    `json:"selected_worker_species_id"`
	WorkerSpeciesID         string    `json:"worker_species_id"`
	PolicyVersion           string    `json:"policy_version"`
	QoSClass                string    `json:"qos_class"`
	BlastScore              int       `json:"blast_score"`
	Decision                string    `json:"decision"`
	Reason                  string    `json:"reason"`
	Severity                string    `json:"severity"`
	DenyCode                DenyCode  `json:"deny_code"`
	DenyMessage             string    `json:"deny_message"`
	DryRun                  bool      `json:"dry_run"`
}

type field uint8

const (
	fTimestamp field = iota
	fCorrelation
	fTenant
	fTask
	fCapability
	fEnv
	fDataLabel
	fMatchedRule
	fSelected
	fSpecies
	fPolicyVersion
	fQoS
	fBlast
	fDecision
	fReason
	fSeverity
	fDenyCode
	fDenyMessage
)

// eventFields lists each event's keys in PyHall's order (after event_id;
// dry_run is appended when true).
var eventFields = map[string][]field{
	EvtTaskDenied:         {fTimestamp, fCorrelation, fTenant, fCapability, fDenyCode, fDenyMessage, fMatchedRule},
	EvtBlastScored:        {fTimestamp, fCorrelation, fTenant, fEnv, fDataLabel, fPolicyVersion, fBlast, fDecision},
	EvtPrivilegeChecked:   {fTimestamp, fCorrelation, fTenant, fEnv, fDataLabel, fPolicyVersion, fSpecies, fDecision},
	EvtAttestationSkipped: {fCorrelation, fSpecies, fEnv, fReason, fSeverity},
	EvtTaskRouted:         {fTimestamp, fCorrelation, fTenant, fTask, fCapability, fMatchedRule, fSelected, fPolicyVersion, fQoS},
	EvtWorkerSelected:     {fTimestamp, fCorrelation, fTenant, fCapability, fSelected, fReason},
	EvtPolicyGated:        {fTimestamp, fCorrelation, fTenant, fCapability, fDecision, fPolicyVersion, fReason},
}

// genericFields is the layout of an event id the Hall does not know:
// every non-empty field.
var genericFields = []field{fTimestamp, fCorrelation, fTenant, fTask, fCapability, fEnv, fDataLabel, fMatchedRule, fSelected, fSpecies, fPolicyVersion, fQoS, fBlast, fDecision, fReason, fSeverity, fDenyCode, fDenyMessage}

// MarshalJSON writes exactly the keys PyHall writes for this event id, in
// its order.
func (e Event) MarshalJSON() ([]byte, error) {
	return e.AppendJSON(make([]byte, 0, 256)), nil
}

// AppendJSON appends the event's JSON to b.
func (e *Event) AppendJSON(b []byte) []byte {
	b = append(b, `{"event_id":`...)
	b = appendString(b, e.EventID)
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
		b = appendString(b, v)
	}
	for _, f := range fields {
		switch f {
		case fTimestamp:
			if known || !e.Timestamp.IsZero() {
				b = append(b, `,"timestamp":`...)
				b = appendTime(b, e.Timestamp)
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

// UnmarshalJSON reads any event.
func (e *Event) UnmarshalJSON(b []byte) error {
	type plain Event
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*e = Event(p)
	return nil
}
