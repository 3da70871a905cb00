package registry

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/google/jsonschema-go/jsonschema"

	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/schemacheck"
)

//go:embed schemas/registry-record.schema.json
var recordSchemaJSON []byte

// compiledRecordSchema is the record schema ready to check records.
type compiledRecordSchema struct {
	check *schemacheck.Checker
	// schemaMembers are the members whose value is itself a JSON Schema
	// ("$ref" to the 2020-12 meta-schema: input_schema, output_schema).
	// The Checker is built without those references and the members are
	// checked against the meta-schema apart, only when a record has them:
	// loading the meta-schemas costs more than the whole record schema,
	// and `hall run` validates every enrolled record at start.
	schemaMembers []string
}

// recordSchema is built on first use, not at package initialisation
// (RATIONALE.md: the cost of a one-shot `hall run`).
var recordSchema = sync.OnceValues(func() (*compiledRecordSchema, error) {
	var sch jsonschema.Schema
	if err := json.Unmarshal(recordSchemaJSON, &sch); err != nil {
		return nil, fmt.Errorf("registry: embedded schema: %w", err)
	}
	out := &compiledRecordSchema{}
	for _, name := range slices.Sorted(maps.Keys(sch.Properties)) {
		if p := sch.Properties[name]; p.Ref == schemacheck.MetaURL {
			p.Ref = ""
			out.schemaMembers = append(out.schemaMembers, name)
		}
	}
	c, err := schemacheck.New(&sch)
	if err != nil {
		return nil, fmt.Errorf("registry: embedded schema: %w", err)
	}
	out.check = c
	return out, nil
})

// problems lists what the record schema finds wrong with inst.
func (rs *compiledRecordSchema) problems(inst any) []Problem {
	var probs []Problem
	for _, p := range rs.check.Check(inst) {
		probs = append(probs, Problem{Field: jsonPath(p.Loc), Message: p.Message})
	}
	obj, _ := inst.(map[string]any)
	for _, m := range rs.schemaMembers {
		v, ok := obj[m]
		if !ok || slices.ContainsFunc(probs, func(p Problem) bool { return p.Field == m }) {
			continue // absent, or already wrong as a whole (not an object)
		}
		probs = append(probs, schemaMemberProblems(m, v)...)
	}
	return probs
}

// schemaMemberProblems checks the value of member m, a JSON Schema of the
// worker's: against the 2020-12 meta-schema, then whether the Hall can
// compile it (MCP validates arguments and outputs with it; its patterns
// must be Go regular expressions, its references local).
func schemaMemberProblems(m string, v any) []Problem {
	meta, err := schemacheck.Meta()
	if err != nil {
		return []Problem{{Field: m, Message: err.Error()}}
	}
	var probs []Problem
	for _, p := range meta.Check(v) {
		probs = append(probs, Problem{Field: jsonPath(append([]string{m}, p.Loc...)), Message: p.Message})
	}
	if len(probs) > 0 {
		return probs
	}
	raw, err := json.Marshal(v)
	if err == nil {
		_, err = schemacheck.Compile(raw)
	}
	if err != nil {
		return []Problem{{Field: m, Message: "not usable as a tool schema: " + err.Error()}}
	}
	return nil
}

// Problem is one thing wrong with a record: the JSON path of the field
// ("" for the document itself) and what to do about it.
type Problem struct {
	Field   string
	Message string
}

func (p Problem) String() string {
	if p.Field == "" {
		return p.Message
	}
	return p.Field + ": " + p.Message
}

// RecordError lists every problem of one record.
type RecordError struct {
	Path     string // the file, when the record came from one
	Problems []Problem
}

func (e *RecordError) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("\n")
		}
		if e.Path != "" {
			b.WriteString(e.Path + ": ")
		}
		b.WriteString(p.String())
	}
	return b.String()
}

// Validate parses and checks one record document: JSON syntax, the Hall's
// record schema, members the schema does not know (refused, with the
// closest known name), then the id rules (worker, species, capability and
// control ids, attestation code hash). Every problem is reported, sorted
// by field. It is ValidateWith with the strict default options.
func Validate(data []byte) (*wcp.Record, error) { return ValidateWith(data, Options{}) }

// Options relax Validate.
type Options struct {
	// AllowUnknownFields accepts members the record schema does not know
	// (PyHall's behaviour: `"risk_teir": "low"` is then silently ignored).
	// hall.json's allow_unknown_record_fields sets it.
	AllowUnknownFields bool
}

// ValidateWith is Validate with options.
func ValidateWith(data []byte, opts Options) (*wcp.Record, error) {
	rs, err := recordSchema()
	if err != nil {
		return nil, err
	}
	var inst any
	if err := json.Unmarshal(data, &inst); err != nil {
		return nil, &RecordError{Problems: []Problem{{Message: "not valid JSON: " + err.Error()}}}
	}
	probs := rs.problems(inst)
	if !opts.AllowUnknownFields {
		probs = append(probs, unknownFields(inst)...)
	}
	var rec wcp.Record
	if err := json.Unmarshal(data, &rec); err != nil {
		if len(probs) == 0 {
			probs = append(probs, Problem{Message: err.Error()})
		}
	} else {
		// Id rules apply to fields the schema accepted; a field the schema
		// already reported is not reported twice.
		reported := map[string]bool{}
		for _, p := range probs {
			reported[p.Field] = true
		}
		for _, p := range idProblems(&rec) {
			if !reported[p.Field] {
				probs = append(probs, p)
			}
		}
	}
	if len(probs) > 0 {
		slices.SortStableFunc(probs, func(a, b Problem) int { return strings.Compare(a.Field, b.Field) })
		return nil, &RecordError{Problems: probs}
	}
	return &rec, nil
}

func jsonPath(loc []string) string {
	var b strings.Builder
	for i, s := range loc {
		if s != "" && strings.Trim(s, "0123456789") == "" {
			b.WriteString("[" + s + "]")
			continue
		}
		if i > 0 {
			b.WriteString(".")
		}
		b.WriteString(s)
	}
	return b.String()
}

func idProblems(rec *wcp.Record) []Problem {
	var probs []Problem
	check := func(field string, kind wcp.IDKind, id string) {
		if err := wcp.CheckID(kind, id); err != nil {
			probs = append(probs, Problem{Field: field, Message: err.Error()})
		}
	}
	check("worker_id", wcp.KindWorker, rec.WorkerID)
	check("worker_species_id", wcp.KindSpecies, rec.WorkerSpeciesID)
	for i, c := range rec.Capabilities {
		check(fmt.Sprintf("capabilities[%d]", i), wcp.KindCapability, c)
	}
	for i, c := range rec.RequiredControls {
		check(fmt.Sprintf("required_controls[%d]", i), wcp.KindControl, c)
	}
	for i, c := range rec.CurrentlyImplements {
		check(fmt.Sprintf("currently_implements[%d]", i), wcp.KindControl, c)
	}
	for c, export := range rec.Entrypoints {
		if !slices.Contains(rec.Capabilities, c) {
			probs = append(probs, Problem{Field: "entrypoints." + c, Message: "names a capability the worker does not declare in capabilities"})
		}
		if export == "" {
			probs = append(probs, Problem{Field: "entrypoints." + c, Message: "export name is empty"})
		}
	}
	if a := rec.Attestation; a != nil && a.CodeHash != "" && !wcp.ValidHexDigest(a.CodeHash) {
		probs = append(probs, Problem{Field: "attestation.code_hash", Message: "must be 64 lowercase hex characters (no \"sha256:\" prefix)"})
	}
	return probs
}

// LoadDir enrolls every *.json file directly in dir, in file-name order.
// Files that fail validation are not enrolled; their problems are returned
// together (one RecordError per file) while the other files load. A
// missing directory is an empty registry.
func LoadDir(dir string) (*Registry, []string, error) {
	reg := New()
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return reg, nil, nil
	}
	if err != nil {
		return reg, nil, fmt.Errorf("registry: %w", err)
	}
	var (
		errs     []error
		warnings []string
	)
	for _, e := range entries { // ReadDir sorts by name
		if e.IsDir() || filepath.Ext(e.Name()) != ".json" {
			continue
		}
		path := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, &RecordError{Path: path, Problems: []Problem{{Message: err.Error()}}})
			continue
		}
		rec, err := Validate(data)
		if err != nil {
			var re *RecordError
			if errors.As(err, &re) {
				re.Path = path
			}
			errs = append(errs, err)
			continue
		}
		for _, w := range reg.Enroll(rec) {
			warnings = append(warnings, path+": "+w)
		}
	}
	return reg, warnings, errors.Join(errs...)
}
