package host

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/wcphall/hall/internal/suggest"
)

// unknownConfigKey finds the first key of a hall.json document that names
// no field, at any depth (limits, workers.<id>, …), and says where it is,
// the key it is closest to and the keys allowed there: a typo inside
// limits listed the top-level keys (issue 27). It returns nil when every
// key is known or the document does not decode (the decoder then says
// why).
func unknownConfigKey(data []byte) error {
	var doc any
	if json.Unmarshal(data, &doc) != nil {
		return nil
	}
	return checkKeys(doc, reflect.TypeFor[Config](), "")
}

func checkKeys(v any, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		fields := jsonFields(t)
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			ft, ok := fields[k]
			if !ok {
				// encoding/json matches field names case-insensitively.
				for n, t := range fields {
					if strings.EqualFold(n, k) {
						ft, ok = t, true
						break
					}
				}
			}
			if !ok {
				names := make([]string, 0, len(fields))
				for n := range fields {
					names = append(names, n)
				}
				slices.Sort(names)
				where, in := path+k, "the top level"
				if path != "" {
					in = strings.TrimSuffix(path, ".")
				}
				msg := fmt.Sprintf("%s: unknown key", where)
				if s := suggest.Closest(k, names, 1); len(s) > 0 {
					msg += fmt.Sprintf("; did you mean %q?", path+s[0])
				}
				return fmt.Errorf("%s (keys of %s: %s)", msg, in, strings.Join(names, ", "))
			}
			if err := checkKeys(obj[k], ft, path+k+"."); err != nil {
				return err
			}
		}
	case reflect.Map:
		if obj, ok := v.(map[string]any); ok {
			keys := make([]string, 0, len(obj))
			for k := range obj {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				if err := checkKeys(obj[k], t.Elem(), fmt.Sprintf("%s[%q].", strings.TrimSuffix(path, "."), k)); err != nil {
					return err
				}
			}
		}
	case reflect.Slice, reflect.Array:
		if arr, ok := v.([]any); ok {
			for i, e := range arr {
				if err := checkKeys(e, t.Elem(), fmt.Sprintf("%s[%d].", strings.TrimSuffix(path, "."), i)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// jsonFields maps the JSON names of a struct's fields, embedded structs'
// included, to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for f := range t.Fields() {
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range jsonFields(ft) {
					out[k] = v
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}
