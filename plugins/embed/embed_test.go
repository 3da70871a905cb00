package main

import (
	"math"
	"testing"
)

func TestEmbed(t *testing.T) {
	a, b := Embed("The Hall governs workers.", 64), Embed("the hall GOVERNS workers", 64)
	if len(a) != 64 {
		t.Fatalf("dim %d, want 64", len(a))
	}
	var norm, dot float64
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("case and punctuation changed the vector at %d: %v vs %v", i, a[i], b[i])
		}
		norm += a[i] * a[i]
	}
	if math.Abs(norm-1) > 1e-5 {
		t.Fatalf("norm² %v, want 1", norm)
	}
	c := Embed("completely different words here", 64)
	for i := range a {
		dot += a[i] * c[i]
	}
	if dot > 0.9 {
		t.Fatalf("unrelated texts have cosine %v", dot)
	}
	for _, x := range Embed("", 8) {
		if x != 0 {
			t.Fatal("empty text is not the zero vector")
		}
	}
}
