package main

import "strings"

// DefaultTokens is the chunk size when the request names none: about 500
// tokens, counted as whitespace-separated words.
const DefaultTokens = 500

// Chunk splits text into chunks of at most tokens words (whitespace-
// separated), in order, each joined by single spaces. Empty text has no
// chunk; tokens ≤ 0 means DefaultTokens.
func Chunk(text string, tokens int) []string {
	if tokens <= 0 {
		tokens = DefaultTokens
	}
	words := strings.Fields(text)
	chunks := []string{}
	for len(words) > 0 {
		n := min(tokens, len(words))
		chunks = append(chunks, strings.Join(words[:n], " "))
		words = words[n:]
	}
	return chunks
}
