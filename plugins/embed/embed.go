package main

import (
	"hash/fnv"
	"math"
	"strings"
	"unicode"
)

// DefaultDim is the embedding dimension when the request names none.
const DefaultDim = 256

// Embed is a deterministic local embedding of text: feature hashing (the
// "hashing trick") of its lower-cased words and word bigrams into dim
// buckets, each feature adding +1 or -1 by a bit of its FNV-1a hash, then
// L2-normalized and rounded to 6 decimals. The same text gives the same
// vector on every machine; no model is downloaded. Text without words
// gives the zero vector.
func Embed(text string, dim int) []float64 {
	if dim <= 0 {
		dim = DefaultDim
	}
	v := make([]float64, dim)
	words := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	add := func(feature string) {
		h := fnv.New64a()
		h.Write([]byte(feature))
		x := h.Sum64()
		sign := 1.0
		if x>>63 == 1 {
			sign = -1
		}
		v[x%uint64(dim)] += sign
	}
	for i, w := range words {
		add("w:" + w)
		if i > 0 {
			add("b:" + words[i-1] + " " + w)
		}
	}
	var norm float64
	for _, x := range v {
		norm += x * x
	}
	if norm == 0 {
		return v
	}
	norm = math.Sqrt(norm)
	for i := range v {
		v[i] = math.Round(v[i]/norm*1e6) / 1e6
	}
	return v
}
