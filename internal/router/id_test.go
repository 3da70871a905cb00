package router

import (
	"testing"
	"time"
)

func TestNewIDIsTimeOrderedV7(t *testing.T) {
	seen := map[string]bool{}
	before := time.Now().UnixMilli()
	for range 1000 {
		id := newID()
		if id.Version() != 7 || id.Variant().String() != "RFC4122" {
			t.Fatalf("%s: version %d variant %s", id, id.Version(), id.Variant())
		}
		if sec, nsec := id.Time().UnixTime(); sec*1000+nsec/1e6 < before || sec*1000+nsec/1e6 > time.Now().UnixMilli() {
			t.Fatalf("%s: its time %d ms is not when it was made (after %d)", id, sec*1000+nsec/1e6, before)
		}
		if seen[id.String()] {
			t.Fatalf("%s handed out twice", id)
		}
		seen[id.String()] = true
	}
}
