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
	// Members every event has, in no layout.
	fEventID
	fDryRun
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

// AppendJSON appends the event's JSON to b: exactly the keys PyHall
// writes for its event id, in its order, strings escaped as CanonicalJSON
// escapes them.
func (e *Event) AppendJSON(b []byte) []byte { return e.appendJSON(b, false) }

// appendJSON appends the event's JSON; html writes its strings as
// encoding/json leaves them when it compacts a MarshalJSON's output
// ('<', '>', '&', U+2028 and U+2029 escaped), which is how a decision's
// JSON holds its events.
func (e *Event) appendJSON(b []byte, html bool) []byte {
	b = append(b, `{"event_id":`...)
	b = appendEventString(b, e.EventID, html)
	fields, known := eventFields[e.EventID]
	if !known {
		fields = genericFields
	}
	for _, f := range fields {
		switch f {
		case fTimestamp:
			if known || !e.Timestamp.IsZero() {
				b = append(b, `,"timestamp":`...)
				b = appendTime(b, e.Timestamp)
			}
		case fBlast:
			if known || e.BlastScore != 0 {
				b = append(b, `,"blast_score":`...)
				b = strconv.AppendInt(b, int64(e.BlastScore), 10)
			}
		default:
			key, v := e.stringField(f)
			if !known && v == "" {
				continue
			}
			b = append(b, ',', '"')
			b = append(b, key...)
			b = append(b, '"', ':')
			b = appendEventString(b, v, html)
		}
	}
	if e.DryRun {
		b = append(b, `,"dry_run":true`...)
	}
	return append(b, '}')
}

func appendEventString(b []byte, s string, html bool) []byte {
	if html {
		return appendWireString(b, s, true)
	}
	return appendString(b, s)
}

// stringField returns the key and value of a string field.
func (e *Event) stringField(f field) (key, v string) {
	switch f {
	case fCorrelation:
		return "correlation_id", e.CorrelationID
	case fTenant:
		return "tenant_id", e.TenantID
	case fTask:
		return "task_id", e.TaskID
	case fCapability:
		return "capability_id", e.CapabilityID
	case fEnv:
		return "env", e.Env
	case fDataLabel:
		return "data_label", e.DataLabel
	case fMatchedRule:
		return "matched_rule_id", e.MatchedRuleID
	case fSelected:
		return "selected_worker_species_id", e.SelectedWorkerSpeciesID
	case fSpecies:
		return "worker_species_id", e.WorkerSpeciesID
	case fPolicyVersion:
		return "policy_version", e.PolicyVersion
	case fQoS:
		return "qos_class", e.QoSClass
	case fDecision:
		return "decision", e.Decision
	case fReason:
		return "reason", e.Reason
	case fSeverity:
		return "severity", e.Severity
	case fDenyCode:
		return "deny_code", string(e.DenyCode)
	case fDenyMessage:
		return "deny_message", e.DenyMessage
	}
	panic("wcp: not a string field of an event")
}

// eventCanonicalOrder is every key an event can have, sorted (RFC 8785),
// with its field; event_id and dry_run have none (fEventID, fDryRun).
var eventCanonicalOrder = [...]struct {
	key string
	f   field
}{
	{"blast_score", fBlast}, {"capability_id", fCapability}, {"correlation_id", fCorrelation}, {"data_label", fDataLabel},
	{"decision", fDecision}, {"deny_code", fDenyCode}, {"deny_message", fDenyMessage}, {"dry_run", fDryRun}, {"env", fEnv},
	{"event_id", fEventID}, {"matched_rule_id", fMatchedRule}, {"policy_version", fPolicyVersion}, {"qos_class", fQoS},
	{"reason", fReason}, {"selected_worker_species_id", fSelected}, {"severity", fSeverity}, {"task_id", fTask},
	{"tenant_id", fTenant}, {"timestamp", fTimestamp}, {"worker_species_id", fSpecies},
}

// appendCanonical appends the event's JSON in canonical form: the same
// members as AppendJSON, sorted, so CanonicalJSON(AppendJSON) exactly.
func (e *Event) appendCanonical(b []byte) []byte {
	fields, known := eventFields[e.EventID]
	if !known {
		fields = genericFields
	}
	var has uint32
	for _, f := range fields {
		has |= 1 << f
	}
	b = append(b, '{')
	first := true
	for _, kf := range eventCanonicalOrder {
		f := kf.f
		switch f {
		case fEventID:
		case fDryRun:
			if !e.DryRun {
				continue
			}
		case fTimestamp:
			if has&(1<<f) == 0 || !known && e.Timestamp.IsZero() {
				continue
			}
		case fBlast:
			if has&(1<<f) == 0 || !known && e.BlastScore == 0 {
				continue
			}
		default:
			if has&(1<<f) == 0 {
				continue
			}
			if _, v := e.stringField(f); !known && v == "" {
				continue
			}
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, '"')
		b = append(b, kf.key...)
		b = append(b, '"', ':')
		switch f {
		case fEventID:
			b = appendString(b, e.EventID)
		case fDryRun:
			b = append(b, "true"...)
		case fTimestamp:
			b = appendTime(b, e.Timestamp)
		case fBlast:
			b = appendIntCanonical(b, int64(e.BlastScore))
		default:
			_, v := e.stringField(f)
			b = appendString(b, v)
		}
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
