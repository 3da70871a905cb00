package wcp

import (
	"bytes"
	"encoding/json"
	"reflect"
	"sort"
	"strings"
	"sync"
)

// Extra holds the JSON members of an object that its Go type does not
// declare. Records and rules keep them so that a file read and written back
// by the Hall loses nothing (a newer spec field, a vendor annotation).
type Extra map[string]json.RawMessage

var knownKeys sync.Map // reflect.Type -> map[string]bool

func declaredKeys(t reflect.Type) map[string]bool {
	if v, ok := knownKeys.Load(t); ok {
		return v.(map[string]bool)
	}
	keys := map[string]bool{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		keys[name] = true
	}
	knownKeys.Store(t, keys)
	return keys
}

// decodeWithExtra decodes data into v (a pointer to an alias struct type
// without methods) and returns the members v's type does not declare.
func decodeWithExtra(data []byte, v any) (Extra, error) {
	if err := json.Unmarshal(data, v); err != nil {
		return nil, err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(data, &all); err != nil {
		return nil, err
	}
	known := declaredKeys(reflect.TypeOf(v).Elem())
	var extra Extra
	folded := false
	for k, raw := range all {
		if !known[k] {
			if extra == nil {
				extra = Extra{}
			}
			extra[k] = raw
			folded = folded || foldsToDeclared(known, k)
		}
	}
	if folded {
		// encoding/json also fills a field from a member whose name
		// differs only in case ("Privilege_Envelope"); that member would
		// escape the (case-sensitive) schema. Decode the declared members
		// alone: like PyHall, treat the variant as an unknown member.
		exact := make(map[string]json.RawMessage, len(all))
		for k, raw := range all {
			if known[k] {
				exact[k] = raw
			}
		}
		b, err := json.Marshal(exact)
		if err != nil {
			return nil, err
		}
		rv := reflect.ValueOf(v).Elem()
		rv.SetZero()
		if err := json.Unmarshal(b, v); err != nil {
			return nil, err
		}
	}
	return extra, nil
}

func foldsToDeclared(known map[string]bool, k string) bool {
	for d := range known {
		if strings.EqualFold(d, k) {
			return true
		}
	}
	return false
}

// encodeWithExtra encodes v (an alias struct value) and appends the extra
// members, sorted by key, after the declared ones.
func encodeWithExtra(v any, extra Extra) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil || len(extra) == 0 {
		return b, err
	}
	keys := make([]string, 0, len(extra))
	for k := range extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var buf bytes.Buffer
	buf.Write(b[:len(b)-1])
	first := len(b) == 2 // "{}"
	for _, k := range keys {
		if !first {
			buf.WriteByte(',')
		}
		first = false
		kb, _ := json.Marshal(k)
		buf.Write(kb)
		buf.WriteByte(':')
		buf.Write(extra[k])
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}
