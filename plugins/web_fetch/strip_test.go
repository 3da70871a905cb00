package main

import (
	"strings"
	"testing"
)

func TestStripTags(t *testing.T) {
	got := strings.Join(strings.Fields(StripTags(`<html><style>p{}</style><p>Hello <b>world</b></p><script>x<1</script>!`)), " ")
	if got != "Hello world !" {
		t.Fatalf("StripTags = %q", got)
	}
}
