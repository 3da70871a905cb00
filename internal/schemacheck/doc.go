// Package schemacheck is the Hall's use of JSON Schema 2020-12, on
// github.com/google/jsonschema-go (the library the MCP SDK already links
// in): the embedded 2020-12 meta-schemas, [Compile] for the schemas a
// record declares (a tool's input and output schema), and [Checker], which
// validates an instance and, when it fails, names every rule it breaks at
// its place in the instance ("privilege_envelope.filesystem_writes[0]").
//
//	c, err := schemacheck.New(schema) // a parsed *jsonschema.Schema
//	for _, p := range c.Check(instance) {
//		fmt.Println(p.Loc, p.Message)
//	}
//
// # Notes
//
//   - The library decides: an instance is valid exactly when
//     jsonschema.Resolved.Validate says so. The library stops at the first
//     failure and names schema paths, not instance paths, so a Checker
//     then walks the schema's applicators itself (properties, items, $ref,
//     $dynamicRef, allOf, anyOf, oneOf, not…) and asks the library about
//     each assertion keyword on its own (a schema of that one keyword), to
//     report every failure with its instance location.
//   - The walk supports the keywords of the schemas the Hall checks with
//     it: its record schema and the 2020-12 meta-schemas (a test walks them
//     all). Where a schema uses a keyword the walk does not follow, the
//     library's own message is reported as well, so a failure is never
//     reported without a reason.
//   - Nothing is done at package initialisation: the meta-schemas are
//     parsed and resolved the first time they are needed (see
//     internal/registry's RATIONALE.md for why that matters to `hall run`).
package schemacheck
