package schemacheck

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/google/jsonschema-go/jsonschema"
)

// Problem is one rule an instance breaks.
type Problem struct {
	// Loc is where in the instance: member names and array indexes
	// ("0", "1"…) from the root; empty for the instance itself.
	Loc []string
	// Message says what the rule wants, in the words of the keyword
	// ("value must be one of 'low', 'medium'", "maximum: got 7, want 5").
	Message string
}

// Checker validates instances against one resolved schema. It is safe for
// concurrent use.
type Checker struct {
	rs      *jsonschema.Resolved
	root    *jsonschema.Schema
	rootURI string
	// docs are the schema resources by URI (no fragment): the root and
	// every meta-schema it references.
	docs map[string]*jsonschema.Schema

	mu      sync.Mutex
	leaves  map[leafKey]*jsonschema.Resolved
	regexps map[string]*regexp.Regexp
}

type leafKey struct {
	s       *jsonschema.Schema
	keyword string
}

// New resolves sch (its "$id", when it has one, is its URI; references
// may point into it and at the 2020-12 meta-schemas). sch must not be
// changed afterwards.
func New(sch *jsonschema.Schema) (*Checker, error) {
	c := &Checker{
		root:    sch,
		rootURI: sch.ID,
		docs:    map[string]*jsonschema.Schema{},
		leaves:  map[leafKey]*jsonschema.Resolved{},
		regexps: map[string]*regexp.Regexp{},
	}
	if c.rootURI == "" {
		c.rootURI = "urn:hall:schema"
	}
	c.docs[c.rootURI] = sch
	// The loader keeps what it loads, so that the walk follows a $ref to
	// the very schema the library resolved.
	load := func(u *url.URL) (*jsonschema.Schema, error) {
		key := u.String()
		if s, ok := c.docs[key]; ok {
			return s, nil
		}
		s, err := loadMeta(u)
		if err == nil {
			c.docs[key] = s
		}
		return s, err
	}
	rs, err := sch.Resolve(&jsonschema.ResolveOptions{BaseURI: c.rootURI, Loader: load})
	if err != nil {
		return nil, err
	}
	c.rs = rs
	return c, nil
}

// Check returns nil when v (a value as encoding/json decodes into an any)
// is valid, and otherwise every rule it breaks, in the order of the
// schema, members in name order.
func (c *Checker) Check(v any) []Problem {
	err := c.rs.Validate(v)
	if err == nil {
		return nil
	}
	w := &walk{c: c}
	probs := dedupe(w.eval(c.root, c.rootURI, v, nil))
	if len(probs) == 0 || w.unsupported {
		// The library's verdict stands even where the walk cannot
		// account for it.
		probs = append(probs, Problem{Message: err.Error()})
	}
	return probs
}

// dedupe drops repeats of a problem, which schemas that apply the same
// rule twice (the 2020-12 vocabularies each say "type": ["object",
// "boolean"]) would report more than once.
func dedupe(probs []Problem) []Problem {
	seen := map[string]bool{}
	out := probs[:0]
	for _, p := range probs {
		key := strings.Join(p.Loc, "\x00") + "\x01" + p.Message
		if !seen[key] {
			seen[key] = true
			out = append(out, p)
		}
	}
	return out
}

// walk is one account of why an instance fails.
type walk struct {
	c *Checker
	// scope is the dynamic scope: the URIs of the resources entered, the
	// outermost first ($dynamicRef resolves against it).
	scope       []string
	unsupported bool
}

func (w *walk) eval(s *jsonschema.Schema, base string, v any, loc []string) []Problem {
	if s == nil {
		return nil
	}
	if s.ID != "" {
		base = w.resolveURI(base, s.ID)
		w.scope = append(w.scope, base)
		defer func() { w.scope = w.scope[:len(w.scope)-1] }()
	}
	if isFalse(s) {
		return []Problem{{Loc: loc, Message: "is not allowed"}}
	}
	if len(unsupported(s)) > 0 {
		w.unsupported = true
	}
	var probs []Problem
	add := func(msg string) { probs = append(probs, Problem{Loc: loc, Message: msg}) }

	for _, kw := range leafKeywords {
		if has(s, kw) && !w.c.leafValid(s, kw, v) {
			add(leafMessage(s, kw, v))
		}
	}
	if obj, ok := v.(map[string]any); ok {
		for _, m := range s.Required {
			if _, ok := obj[m]; !ok {
				probs = append(probs, Problem{Loc: at(loc, m), Message: "is required"})
			}
		}
	}

	if s.Ref != "" {
		if t, tbase, ok := w.ref(base, s.Ref); ok {
			probs = append(probs, w.enter(t, tbase, v, loc)...)
		} else {
			w.unsupported = true
		}
	}
	if s.DynamicRef != "" {
		if t, tbase, ok := w.dynamicRef(base, s.DynamicRef); ok {
			probs = append(probs, w.enter(t, tbase, v, loc)...)
		} else {
			w.unsupported = true
		}
	}
	for _, sub := range s.AllOf {
		probs = append(probs, w.eval(sub, base, v, loc)...)
	}
	if len(s.AnyOf) > 0 {
		var all []Problem
		valid := false
		for _, sub := range s.AnyOf {
			p := w.eval(sub, base, v, loc)
			valid = valid || len(p) == 0
			all = append(all, p...)
		}
		if !valid {
			probs = append(probs, all...)
		}
	}
	if len(s.OneOf) > 0 {
		var all []Problem
		n := 0
		for _, sub := range s.OneOf {
			p := w.eval(sub, base, v, loc)
			if len(p) == 0 {
				n++
			}
			all = append(all, p...)
		}
		switch {
		case n == 0:
			probs = append(probs, all...)
		case n > 1:
			add(fmt.Sprintf("matches %d of the alternatives of oneOf, want exactly one", n))
		}
	}
	if s.Not != nil && len(w.eval(s.Not, base, v, loc)) == 0 {
		add("matches a schema it must not match (not)")
	}

	switch v := v.(type) {
	case map[string]any:
		probs = append(probs, w.object(s, base, v, loc)...)
	case []any:
		for i, item := range v {
			sub := s.Items
			if i < len(s.PrefixItems) {
				sub = s.PrefixItems[i]
			}
			probs = append(probs, w.eval(sub, base, item, at(loc, strconv.Itoa(i)))...)
		}
	}
	return probs
}

func (w *walk) object(s *jsonschema.Schema, base string, obj map[string]any, loc []string) []Problem {
	var probs []Problem
	for _, name := range slices.Sorted(maps.Keys(obj)) {
		val := obj[name]
		matched := false
		if sub, ok := s.Properties[name]; ok {
			matched = true
			probs = append(probs, w.eval(sub, base, val, at(loc, name))...)
		}
		for _, pat := range slices.Sorted(maps.Keys(s.PatternProperties)) {
			re := w.c.regexp(pat)
			if re == nil {
				w.unsupported = true
				continue
			}
			if re.MatchString(name) {
				matched = true
				probs = append(probs, w.eval(s.PatternProperties[pat], base, val, at(loc, name))...)
			}
		}
		if !matched && s.AdditionalProperties != nil {
			probs = append(probs, w.eval(s.AdditionalProperties, base, val, at(loc, name))...)
		}
		if s.PropertyNames != nil {
			for _, p := range w.eval(s.PropertyNames, base, name, at(loc, name)) {
				p.Message = "member name: " + p.Message
				probs = append(probs, p)
			}
		}
	}
	return probs
}

// enter evaluates the target of a reference, in the target's resource.
func (w *walk) enter(t *jsonschema.Schema, tbase string, v any, loc []string) []Problem {
	if t.ID == "" && tbase != "" && (len(w.scope) == 0 || w.scope[len(w.scope)-1] != tbase) {
		w.scope = append(w.scope, tbase)
		defer func() { w.scope = w.scope[:len(w.scope)-1] }()
	}
	return w.eval(t, tbase, v, loc)
}

func (w *walk) resolveURI(base, ref string) string {
	b, err := url.Parse(base)
	if err != nil {
		return ref
	}
	r, err := url.Parse(ref)
	if err != nil {
		return ref
	}
	return b.ResolveReference(r).String()
}

// ref finds the target of a $ref: a resource, or a member of its $defs
// ("#/$defs/name", the only JSON pointers the checked schemas use).
func (w *walk) ref(base, ref string) (*jsonschema.Schema, string, bool) {
	abs := w.resolveURI(base, ref)
	doc, frag, _ := strings.Cut(abs, "#")
	d := w.c.docs[doc]
	if d == nil {
		return nil, "", false
	}
	if frag == "" {
		return d, doc, true
	}
	if name, ok := strings.CutPrefix(frag, "/$defs/"); ok && !strings.Contains(name, "/") {
		name = strings.ReplaceAll(strings.ReplaceAll(name, "~1", "/"), "~0", "~")
		if t := d.Defs[name]; t != nil {
			// A member of $defs without an $id is in doc's resource.
			return t, doc, true
		}
	}
	return nil, "", false
}

// dynamicRef resolves "$dynamicRef": "#name" to the outermost resource of
// the dynamic scope whose root declares "$dynamicAnchor": "name" (the
// 2020-12 meta-schemas put their anchors on resource roots), else to the
// current resource when its root declares it.
func (w *walk) dynamicRef(base, ref string) (*jsonschema.Schema, string, bool) {
	abs := w.resolveURI(base, ref)
	doc, name, _ := strings.Cut(abs, "#")
	if name == "" || strings.HasPrefix(name, "/") {
		return w.ref(base, ref)
	}
	for _, r := range w.scope {
		if d := w.c.docs[r]; d != nil && d.DynamicAnchor == name {
			return d, r, true
		}
	}
	if d := w.c.docs[doc]; d != nil && d.DynamicAnchor == name {
		return d, doc, true
	}
	return nil, "", false
}

func at(loc []string, name string) []string {
	return append(slices.Clip(loc), name)
}

// isFalse reports the schema false, which the library decodes as
// {"not": {}}.
func isFalse(s *jsonschema.Schema) bool {
	if s.Not == nil || !reflect.ValueOf(*s.Not).IsZero() {
		return false
	}
	rest := *s
	rest.Not = nil
	return reflect.ValueOf(rest).IsZero()
}

// leafKeywords are the assertion keywords that the library checks one at
// a time, in the order they are reported.
var leafKeywords = []string{
	"type", "enum", "const",
	"multipleOf", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
	"minLength", "maxLength", "pattern",
	"minItems", "maxItems", "uniqueItems",
	"minProperties", "maxProperties",
}

// has reports whether s uses keyword kw.
func has(s *jsonschema.Schema, kw string) bool { return !reflect.ValueOf(*leaf(s, kw)).IsZero() }

// leaf is the schema of keyword kw of s alone.
func leaf(s *jsonschema.Schema, kw string) *jsonschema.Schema {
	l := &jsonschema.Schema{}
	switch kw {
	case "type":
		l.Type, l.Types = s.Type, s.Types
	case "enum":
		l.Enum = s.Enum
	case "const":
		l.Const = s.Const
	case "multipleOf":
		l.MultipleOf = s.MultipleOf
	case "minimum":
		l.Minimum = s.Minimum
	case "maximum":
		l.Maximum = s.Maximum
	case "exclusiveMinimum":
		l.ExclusiveMinimum = s.ExclusiveMinimum
	case "exclusiveMaximum":
		l.ExclusiveMaximum = s.ExclusiveMaximum
	case "minLength":
		l.MinLength = s.MinLength
	case "maxLength":
		l.MaxLength = s.MaxLength
	case "pattern":
		l.Pattern = s.Pattern
	case "minItems":
		l.MinItems = s.MinItems
	case "maxItems":
		l.MaxItems = s.MaxItems
	case "uniqueItems":
		l.UniqueItems = s.UniqueItems
	case "minProperties":
		l.MinProperties = s.MinProperties
	case "maxProperties":
		l.MaxProperties = s.MaxProperties
	}
	return l
}

// leafValid asks the library whether v satisfies keyword kw of s.
func (c *Checker) leafValid(s *jsonschema.Schema, kw string, v any) bool {
	c.mu.Lock()
	rs, ok := c.leaves[leafKey{s, kw}]
	if !ok {
		var err error
		rs, err = leaf(s, kw).Resolve(nil)
		if err != nil {
			rs = nil // the whole schema resolved, so this cannot happen
		}
		c.leaves[leafKey{s, kw}] = rs
	}
	c.mu.Unlock()
	return rs == nil || rs.Validate(v) == nil
}

func (c *Checker) regexp(pat string) *regexp.Regexp {
	c.mu.Lock()
	defer c.mu.Unlock()
	re, ok := c.regexps[pat]
	if !ok {
		re, _ = regexp.Compile(pat) // nil: the library refused it at Resolve
		c.regexps[pat] = re
	}
	return re
}

// unsupported lists the keywords of s that the walk does not follow.
func unsupported(s *jsonschema.Schema) []string {
	var out []string
	for kw, present := range map[string]bool{
		"if":                    s.If != nil || s.Then != nil || s.Else != nil,
		"dependentSchemas":      s.DependentSchemas != nil,
		"dependentRequired":     s.DependentRequired != nil,
		"dependencies":          s.DependencySchemas != nil || s.DependencyStrings != nil,
		"contains":              s.Contains != nil || s.MinContains != nil || s.MaxContains != nil,
		"unevaluatedItems":      s.UnevaluatedItems != nil,
		"unevaluatedProperties": s.UnevaluatedProperties != nil,
		"additionalItems":       s.AdditionalItems != nil || s.ItemsArray != nil,
		"$anchor":               s.Anchor != "",
	} {
		if present {
			out = append(out, kw)
		}
	}
	slices.Sort(out)
	return out
}

// leafMessage says what keyword kw of s wants of v, in the words
// santhosh-tekuri/jsonschema used (the Hall's earlier validator), so that
// documented messages keep their wording.
func leafMessage(s *jsonschema.Schema, kw string, v any) string {
	switch kw {
	case "type":
		want := s.Type
		if want == "" {
			want = strings.Join(s.Types, " or ")
		}
		return fmt.Sprintf("got %s, want %s", typeOf(v), want)
	case "enum":
		if len(s.Enum) == 1 {
			return "value must be " + quote(s.Enum[0])
		}
		vals := make([]string, len(s.Enum))
		for i, e := range s.Enum {
			vals[i] = quote(e)
		}
		return "value must be one of " + strings.Join(vals, ", ")
	case "const":
		return "value must be " + quote(*s.Const)
	case "multipleOf":
		return fmt.Sprintf("multipleOf: %s is not a multiple of %s", quote(v), num(*s.MultipleOf))
	case "minimum":
		return fmt.Sprintf("minimum: got %s, want %s", quote(v), num(*s.Minimum))
	case "maximum":
		return fmt.Sprintf("maximum: got %s, want %s", quote(v), num(*s.Maximum))
	case "exclusiveMinimum":
		return fmt.Sprintf("exclusiveMinimum: got %s, want more than %s", quote(v), num(*s.ExclusiveMinimum))
	case "exclusiveMaximum":
		return fmt.Sprintf("exclusiveMaximum: got %s, want less than %s", quote(v), num(*s.ExclusiveMaximum))
	case "minLength":
		return fmt.Sprintf("minLength: got %d, want %d", size(v), *s.MinLength)
	case "maxLength":
		return fmt.Sprintf("maxLength: got %d, want %d", size(v), *s.MaxLength)
	case "pattern":
		return fmt.Sprintf("%s does not match pattern %s", quote(v), quote(s.Pattern))
	case "minItems":
		return fmt.Sprintf("minItems: got %d, want %d", size(v), *s.MinItems)
	case "maxItems":
		return fmt.Sprintf("maxItems: got %d, want %d", size(v), *s.MaxItems)
	case "uniqueItems":
		return "items must be unique (uniqueItems)"
	case "minProperties":
		return fmt.Sprintf("minProperties: got %d, want %d", size(v), *s.MinProperties)
	case "maxProperties":
		return fmt.Sprintf("maxProperties: got %d, want %d", size(v), *s.MaxProperties)
	}
	return kw
}

func typeOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case float64, json.Number:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// quote renders a JSON value as the messages show it: strings in single
// quotes, anything else as JSON.
func quote(v any) string {
	if s, ok := v.(string); ok {
		return "'" + s + "'"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// size is the length that the keywords minLength, minItems,
// minProperties (and their max) measure.
func size(v any) int {
	switch v := v.(type) {
	case string:
		return utf8.RuneCountInString(v)
	case []any:
		return len(v)
	case map[string]any:
		return len(v)
	}
	return 0
}

// Unsupported lists what a Check could not account for in the schema and
// the meta-schemas it references: keywords the walk does not follow and
// references it cannot resolve, each with the resource it is in. Tests of
// the schemas the Hall checks assert that it is empty.
func (c *Checker) Unsupported() []string {
	var out []string
	w := &walk{c: c}
	var visit func(s *jsonschema.Schema, base string)
	visit = func(s *jsonschema.Schema, base string) {
		if s == nil {
			return
		}
		if s.ID != "" {
			base = w.resolveURI(base, s.ID)
		}
		for _, kw := range unsupported(s) {
			out = append(out, base+": "+kw)
		}
		if s.Ref != "" {
			if _, _, ok := w.ref(base, s.Ref); !ok {
				out = append(out, base+": $ref "+s.Ref)
			}
		}
		if s.DynamicRef != "" {
			w.scope = slices.Collect(maps.Keys(c.docs))
			if _, _, ok := w.dynamicRef(base, s.DynamicRef); !ok {
				out = append(out, base+": $dynamicRef "+s.DynamicRef)
			}
		}
		for _, sub := range children(s) {
			visit(sub, base)
		}
	}
	for _, uri := range slices.Sorted(maps.Keys(c.docs)) {
		visit(c.docs[uri], uri)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// children are the subschemas of s, in every keyword that holds one.
func children(s *jsonschema.Schema) []*jsonschema.Schema {
	out := []*jsonschema.Schema{s.Items, s.AdditionalItems, s.Contains, s.UnevaluatedItems,
		s.AdditionalProperties, s.PropertyNames, s.UnevaluatedProperties, s.Not, s.If, s.Then, s.Else, s.ContentSchema}
	out = append(out, s.PrefixItems...)
	out = append(out, s.ItemsArray...)
	out = append(out, s.AllOf...)
	out = append(out, s.AnyOf...)
	out = append(out, s.OneOf...)
	for _, m := range []map[string]*jsonschema.Schema{s.Defs, s.Definitions, s.DependencySchemas, s.Properties, s.PatternProperties, s.DependentSchemas} {
		for _, k := range slices.Sorted(maps.Keys(m)) {
			out = append(out, m[k])
		}
	}
	return out
}
