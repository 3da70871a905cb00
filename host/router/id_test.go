package router

import "testing"

func TestNewIDIsRandomV4(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := newID()
		if id.Version() != 4 || id.Variant().String() != "RFC4122" {
			t.Fatalf("%s: version %d variant %s", id, id.Version(), id.Variant())
		}
		if seen[id.String()] {
			t.Fatalf("%s handed out twice", id)
		}
		seen[id.String()] = true
	}
}
