package mcp

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/google/jsonschema-go/jsonschema"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/schemacheck"
)

// defaultInputSchema is the input schema of a worker whose record declares
// none: one optional string, passed to the worker as its input bytes.
var defaultInputSchema = json.RawMessage(`{"type":"object","properties":{"input":{"type":"string","description":"The worker's input, passed to it as UTF-8 bytes."}},"additionalProperties":false}`)

// tool is one capability served as an MCP tool.
type tool struct {
	def        *sdk.Tool
	capability string
	workerID   string
	// input validates the arguments of a worker that declares an
	// input_schema (they are passed to it as JSON); nil: the default
	// {"input": string}.
	input *jsonschema.Resolved
	// output validates the output of a worker that declares an
	// output_schema (then returned as structuredContent too).
	output *jsonschema.Resolved
	// key is the tool's JSON definition, to tell whether it changed.
	key string
}

// catalog computes the tools of the Hall as it is now: one per capability
// that a rule routes to an enrolled worker's species. The worker that
// describes it is the one the Hall would pick among the routed species
// (the last worker id), so that the tool says what a call would run.
func catalog(h *host.Hall, logf func(msg string, args ...any)) map[string]*tool {
	cat := h.Registry()
	rules := h.Rules()
	recs := cat.Records() // sorted by worker id
	caps := cat.Capabilities()
	served := map[string]*wcp.Record{}
	for _, c := range slices.Sorted(maps.Keys(caps)) {
		routed := map[string]bool{}
		for _, sp := range caps[c] {
			if rules.Routes(c, sp) {
				routed[sp] = true
			}
		}
		var rec *wcp.Record
		for _, r := range recs {
			if routed[r.WorkerSpeciesID] && slices.Contains(r.Capabilities, c) {
				rec = r
			}
		}
		if rec != nil {
			served[c] = rec
		}
	}
	names := assignNames(slices.Collect(maps.Keys(served)), ToolName, longToolName)
	out := map[string]*tool{}
	for _, c := range slices.Sorted(maps.Keys(served)) {
		rec, tn := served[c], names[c]
		if tn.name == "" {
			logf("mcp: capability not served as a tool: its name collides with another's even after renaming", "capability_id", c, "tool", tn.renamedFrom, "collides_with", strings.Join(tn.collidesWith, ","))
			continue
		}
		if tn.renamedFrom != "" {
			logf("mcp: tool renamed: another capability shares its name", "capability_id", c, "tool", tn.name, "renamed_from", tn.renamedFrom, "collides_with", strings.Join(tn.collidesWith, ","))
		}
		t, err := newTool(c, rec, tn)
		if err != nil {
			logf("mcp: capability not served as a tool", "capability_id", c, "worker_id", rec.WorkerID, "error", err.Error())
			continue
		}
		out[t.def.Name] = t
	}
	return out
}

func newTool(capability string, rec *wcp.Record, tn toolNaming) (*tool, error) {
	t := &tool{capability: capability, workerID: rec.WorkerID}
	in := defaultInputSchema
	if len(rec.InputSchema) > 0 {
		s, err := schemacheck.Compile(rec.InputSchema)
		if err != nil {
			return nil, fmt.Errorf("input_schema: %w", err)
		}
		t.input, in = s, rec.InputSchema
	}
	var outSchema json.RawMessage
	if len(rec.OutputSchema) > 0 {
		s, err := schemacheck.Compile(rec.OutputSchema)
		if err != nil {
			return nil, fmt.Errorf("output_schema: %w", err)
		}
		t.output, outSchema = s, rec.OutputSchema
	}
	desc := rec.Description
	if desc == "" {
		desc = fmt.Sprintf("Runs capability %s on worker %s (risk tier %s) in the Hall's sandbox.", capability, rec.WorkerID, orDash(rec.RiskTier))
		if t.input == nil {
			desc += " Pass the worker's input as the string argument \"input\"."
		}
	}
	desc += " Every call is decided by the Hall's rules and recorded in its evidence ledger."
	if tn.renamedFrom != "" {
		desc += " Named " + tn.name + " rather than " + tn.renamedFrom + " because capability " + strings.Join(tn.collidesWith, ", ") + " would share that name."
	}
	t.def = &sdk.Tool{
		Name:        tn.name,
		Title:       capability,
		Description: desc,
		InputSchema: in,
		Annotations: annotations(capability, rec),
		Meta: sdk.Meta{
			"capability_id": capability,
			"worker_id":     rec.WorkerID,
			"risk_tier":     rec.RiskTier,
		},
	}
	if tn.renamedFrom != "" {
		t.def.Meta["renamed_from"] = tn.renamedFrom
		t.def.Meta["name_collides_with"] = tn.collidesWith
	}
	if outSchema != nil {
		t.def.OutputSchema = outSchema
	}
	key, err := json.Marshal(t.def)
	if err != nil {
		return nil, err
	}
	t.key = string(key)
	return t, nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// annotations are the MCP hints the record supports: read-only when the
// envelope grants no filesystem writes and no network egress; open-world
// when it grants egress; destructive unless the blast radius says the
// effects are reversible; idempotent when the record says so. They are
// hints to the agent; the sandbox enforces the envelope itself.
func annotations(capability string, rec *wcp.Record) *sdk.ToolAnnotations {
	env := rec.PrivilegeEnvelope
	writes := env != nil && len(env.FilesystemWrites) > 0
	egress := env != nil && !env.NetworkEgress.None()
	a := &sdk.ToolAnnotations{
		Title:          capability,
		ReadOnlyHint:   !writes && !egress,
		OpenWorldHint:  &egress,
		IdempotentHint: rec.Idempotency == "full",
	}
	if br := rec.BlastRadius; br != nil && br.Reversibility != "" {
		destructive := br.Reversibility != "reversible"
		a.DestructiveHint = &destructive
	}
	return a
}
