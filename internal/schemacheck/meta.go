package schemacheck

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"

	"github.com/google/jsonschema-go/jsonschema"
)

// MetaURL is the URI of the JSON Schema 2020-12 dialect meta-schema, the
// "$ref" by which a schema says "this member is a JSON Schema".
const MetaURL = "https://json-schema.org/draft/2020-12/schema"

const metaBase = "https://json-schema.org/draft/2020-12/"

//go:embed metaschema/draft2020-12
var metaFS embed.FS

// loadMeta is a jsonschema.Loader of the embedded 2020-12 meta-schemas. It
// refuses every other URI: a schema cannot make the Hall read a file or
// the network.
func loadMeta(u *url.URL) (*jsonschema.Schema, error) {
	s := u.String()
	name, ok := strings.CutPrefix(s, metaBase)
	if !ok || u.Fragment != "" || (name != "schema" && !strings.HasPrefix(name, "meta/")) {
		return nil, fmt.Errorf("a record's schema may not reference %s (only its own definitions and the JSON Schema 2020-12 meta-schemas)", s)
	}
	data, err := metaFS.ReadFile("metaschema/draft2020-12/" + name + ".json")
	if err != nil {
		return nil, fmt.Errorf("%s is not a JSON Schema 2020-12 meta-schema", s)
	}
	var sch jsonschema.Schema
	if err := json.Unmarshal(data, &sch); err != nil {
		return nil, fmt.Errorf("embedded meta-schema %s: %w", s, err)
	}
	return &sch, nil
}

// Meta returns the Checker of the 2020-12 dialect meta-schema: Check(v)
// lists what keeps v from being a JSON Schema. It is built on first use
// and shared.
var Meta = sync.OnceValues(func() (*Checker, error) {
	u, _ := url.Parse(MetaURL)
	sch, err := loadMeta(u)
	if err != nil {
		return nil, err
	}
	return New(sch)
})

// Compile prepares a JSON Schema that a record declares (an MCP tool's
// input_schema or output_schema) for validation. The schema is JSON
// Schema 2020-12 unless its "$schema" names draft-07; references may
// point into the schema itself or at the 2020-12 meta-schemas, nowhere
// else.
func Compile(raw []byte) (*jsonschema.Resolved, error) {
	var sch jsonschema.Schema
	if err := json.Unmarshal(raw, &sch); err != nil {
		return nil, fmt.Errorf("not a JSON Schema: %w", err)
	}
	switch sch.Schema {
	case "", MetaURL, "http://json-schema.org/draft-07/schema#", "https://json-schema.org/draft-07/schema#":
	default:
		return nil, fmt.Errorf("$schema %q: only JSON Schema 2020-12 (%s, the default) and draft-07 are supported; remove $schema or name one of them", sch.Schema, MetaURL)
	}
	rs, err := sch.Resolve(&jsonschema.ResolveOptions{BaseURI: "urn:hall:record-schema", Loader: loadMeta})
	if err != nil {
		// The library prefixes its type name and "<anonymous schema>",
		// which say nothing to the author of the schema.
		msg := strings.TrimPrefix(err.Error(), "jsonschema.Schema: ")
		return nil, errors.New(strings.TrimPrefix(msg, "<anonymous schema>: "))
	}
	return rs, nil
}
