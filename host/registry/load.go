package registry

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/wcphall/hall/host/wcp"
)

//go:embed schemas/registry-record.schema.json
var recordSchemaJSON []byte

const recordSchemaURL = "https://wcphall.dev/schemas/registry-record.schema.json"

var (
	schemaOnce sync.Once
	schema     *jsonschema.Schema
	schemaErr  error
	printer    = message.NewPrinter(language.English)
)

func recordSchema() (*jsonschema.Schema, error) {
	schemaOnce.Do(func() {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(recordSchemaJSON))
		if err != nil {
			schemaErr = fmt.Errorf("registry: embedded schema: %w", err)
			return
		}
		c := jsonschema.NewCompiler()
		if err := c.AddResource(recordSchemaURL, doc); err != nil {
			schemaErr = fmt.Errorf("registry: embedded schema: %w", err)
			return
		}
		schema, schemaErr = c.Compile(recordSchemaURL)
	})
	return schema, schemaErr
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
	sch, err := recordSchema()
	if err != nil {
		return nil, err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return nil, &RecordError{Problems: []Problem{{Message: "not valid JSON: " + err.Error()}}}
	}
	var probs []Problem
	if err := sch.Validate(inst); err != nil {
		var ve *jsonschema.ValidationError
		if !errors.As(err, &ve) {
			return nil, err
		}
		probs = appendSchemaProblems(probs, ve)
	}
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

// appendSchemaProblems flattens a validation error tree into its leaves.
func appendSchemaProblems(probs []Problem, ve *jsonschema.ValidationError) []Problem {
	if len(ve.Causes) == 0 {
		// A missing required member is a problem of that member, so that
		// every problem names the field at fault.
		if req, ok := ve.ErrorKind.(*kind.Required); ok {
			for _, m := range req.Missing {
				loc := append(slices.Clone(ve.InstanceLocation), m)
				probs = append(probs, Problem{Field: jsonPath(loc), Message: "is required"})
			}
			return probs
		}
		return append(probs, Problem{Field: jsonPath(ve.InstanceLocation), Message: ve.ErrorKind.LocalizedString(printer)})
	}
	for _, c := range ve.Causes {
		probs = appendSchemaProblems(probs, c)
	}
	return probs
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
