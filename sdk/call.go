package sdk

import (
	"encoding/json"
	"fmt"
)

// Call is one invocation of a capability: its input, its output, its
// configuration and its access to the Hall host functions. Dispatch creates
// a Call and passes it to the handler registered for the capability.
//
// # Notes
//
//   - A Call is valid only during the handler it is passed to; the Hall
//     resets kernel memory between calls, so keep the values, not the Call.
//   - Not safe for concurrent use (a wasip1 guest runs one goroutine at a
//     time anyway).
type Call struct {
	capability string
	input      []byte
	inputRead  bool
	corr       *Correlation
}

func newCall(capability string) *Call {
	return &Call{capability: capability}
}

// Capability is the capability id this call was dispatched for (the argument
// of Dispatch, or the wcp.capability_id config for Run).
func (c *Call) Capability() string { return c.capability }

// Input returns the call's input bytes. The first call copies them out of
// kernel memory; later calls return the same slice.
func (c *Call) Input() []byte {
	if !c.inputRead {
		c.input = readInput()
		c.inputRead = true
	}
	return c.input
}

// InputJSON decodes the input as JSON into v.
func (c *Call) InputJSON(v any) error {
	if err := json.Unmarshal(c.Input(), v); err != nil {
		return fmt.Errorf("sdk: decoding input as JSON: %w", err)
	}
	return nil
}

// Output sets the call's output. A later Output replaces an earlier one.
func (c *Call) Output(b []byte) {
	extismOutputSet(writeBlock(b), uint64(len(b)))
}

// OutputString is Output for a string.
func (c *Call) OutputString(s string) { c.Output([]byte(s)) }

// OutputJSON sets the output to the JSON encoding of v.
func (c *Call) OutputJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("sdk: encoding output as JSON: %w", err)
	}
	c.Output(b)
	return nil
}

// Config returns the value of a configuration key and whether it is set.
// The Hall sets the wcp.* keys (see Correlation) on every call; other keys
// come from the worker's manifest.
func (c *Call) Config(key string) (string, bool) {
	k := writeBlock([]byte(key))
	v := extismConfigGet(k)
	extismFree(k)
	if v == 0 {
		return "", false
	}
	return string(takeBlock(v)), true
}

// Correlation is the WCP context the Hall passes with every call, read from
// the wcp.* configuration keys. A key the host did not set is "".
type Correlation struct {
	CorrelationID string `json:"correlation_id"` // wcp.correlation_id
	TenantID      string `json:"tenant_id"`      // wcp.tenant_id
	CapabilityID  string `json:"capability_id"`  // wcp.capability_id
	Env           string `json:"env"`            // wcp.env: dev, stage, prod, edge
	DataLabel     string `json:"data_label"`     // wcp.data_label: PUBLIC, INTERNAL, ...
	WorkerID      string `json:"worker_id"`      // wcp.worker_id
}

// The configuration keys of the Hall ABI (docs/ABI.md).
const (
	ConfigCorrelationID = "wcp.correlation_id"
	ConfigTenantID      = "wcp.tenant_id"
	ConfigCapabilityID  = "wcp.capability_id"
	ConfigEnv           = "wcp.env"
	ConfigDataLabel     = "wcp.data_label"
	ConfigWorkerID      = "wcp.worker_id"
)

// Correlation returns the call's WCP context. It is read once per Call.
func (c *Call) Correlation() Correlation {
	if c.corr == nil {
		get := func(k string) string { v, _ := c.Config(k); return v }
		c.corr = &Correlation{
			CorrelationID: get(ConfigCorrelationID),
			TenantID:      get(ConfigTenantID),
			CapabilityID:  get(ConfigCapabilityID),
			Env:           get(ConfigEnv),
			DataLabel:     get(ConfigDataLabel),
			WorkerID:      get(ConfigWorkerID),
		}
	}
	return *c.corr
}

// Level is a log level; the values are the Extism kernel's (get_log_level).
type Level int32

// Log levels, least to most severe.
const (
	LevelTrace Level = 0
	LevelDebug Level = 1
	LevelInfo  Level = 2
	LevelWarn  Level = 3
	LevelError Level = 4
)

func (l Level) String() string {
	switch l {
	case LevelTrace:
		return "trace"
	case LevelDebug:
		return "debug"
	case LevelInfo:
		return "info"
	case LevelWarn:
		return "warn"
	case LevelError:
		return "error"
	}
	return fmt.Sprintf("Level(%d)", int32(l))
}

// Log sends msg to the host's log at level, prefixed with the correlation
// id ("[<id>] msg") so that the Hall can join worker logs to its ledger.
//
// # Notes
//
//   - Messages below the host's level are dropped in the guest, before any
//     copy into kernel memory.
//   - A level outside LevelTrace..LevelError is logged as LevelError.
//
//lint:ignore SA4009 msg is used by the wasip1 build; the host build stubs the log level
func (c *Call) Log(level Level, msg string) {
	if int32(level) < extismGetLogLevel() {
		return
	}
	if id := c.Correlation().CorrelationID; id != "" {
		msg = "[" + id + "] " + msg
	}
	off := writeBlock([]byte(msg))
	// The host reads and frees the block.
	switch level {
	case LevelTrace:
		extismLogTrace(off)
	case LevelDebug:
		extismLogDebug(off)
	case LevelInfo:
		extismLogInfo(off)
	case LevelWarn:
		extismLogWarn(off)
	default:
		extismLogError(off)
	}
}

// Logf is Log with fmt.Sprintf formatting.
func (c *Call) Logf(level Level, format string, args ...any) {
	if int32(level) < extismGetLogLevel() {
		return
	}
	c.Log(level, fmt.Sprintf(format, args...))
}

// setError records msg as the call's Extism error (error_set). The kernel
// keeps the block, so it is not freed.
func setError(msg string) {
	extismErrorSet(writeBlock([]byte(msg)))
}
