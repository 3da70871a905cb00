package host

import (
	"reflect"
	"testing"
)

// fill sets every field reachable from v to a non-zero value: one entry
// in each map, one element in each slice, an allocated value behind each
// pointer.
func fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i))
			}
		}
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(p.Elem())
		v.Set(p)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fill(s.Index(0))
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(k)
		fill(e)
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.String:
		v.SetString("x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(1)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(1)
	}
}

// shared reports the first map, slice or pointer of b that is the same
// memory as the one at the same place in a.
func shared(a, b reflect.Value, path string) string {
	switch a.Kind() {
	case reflect.Struct:
		for i := range a.NumField() {
			if a.Type().Field(i).IsExported() {
				if p := shared(a.Field(i), b.Field(i), path+"."+a.Type().Field(i).Name); p != "" {
					return p
				}
			}
		}
	case reflect.Pointer:
		if !a.IsNil() && a.Pointer() == b.Pointer() {
			return path
		}
		if !a.IsNil() && !b.IsNil() {
			return shared(a.Elem(), b.Elem(), path)
		}
	case reflect.Slice, reflect.Map:
		if !a.IsNil() && a.Pointer() == b.Pointer() {
			return path
		}
		if a.Kind() == reflect.Slice {
			for i := range min(a.Len(), b.Len()) {
				if p := shared(a.Index(i), b.Index(i), path+"[i]"); p != "" {
					return p
				}
			}
		} else {
			for _, k := range a.MapKeys() {
				if bv := b.MapIndex(k); bv.IsValid() {
					if p := shared(a.MapIndex(k), bv, path+"[k]"); p != "" {
						return p
					}
				}
			}
		}
	}
	return ""
}

// Config.clone shares no map, slice or pointer with the configuration in
// force, whatever fields Config grows (a new reference field that clone
// forgets fails here).
func TestConfigCloneSharesNothing(t *testing.T) {
	var c Config
	fill(reflect.ValueOf(&c).Elem())
	cp := c.clone()
	if !reflect.DeepEqual(c, cp) {
		t.Fatalf("clone differs from the original:\n%+v\n%+v", c, cp)
	}
	if p := shared(reflect.ValueOf(c), reflect.ValueOf(cp), "Config"); p != "" {
		t.Fatalf("%s is shared between the configuration in force and the copy Config() returns: copy it in Config.clone", p)
	}
}
