package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Options choose how long a summary is. Sentences wins over Ratio; with
// neither, DefaultSentences are kept.
type Options struct {
	Sentences int     `json:"sentences,omitempty"` // keep this many sentences
	Ratio     float64 `json:"ratio,omitempty"`     // keep this fraction of sentences (0 < r <= 1)
}

// DefaultSentences is the summary length when no option is given.
const DefaultSentences = 3

// Validate reports an option out of range.
func (o Options) Validate() error {
	if o.Sentences < 0 {
		return fmt.Errorf("sentences must be >= 0, got %d", o.Sentences)
	}
	if o.Ratio < 0 || o.Ratio > 1 || math.IsNaN(o.Ratio) {
		return fmt.Errorf("ratio must be in (0, 1], got %v", o.Ratio)
	}
	return nil
}

// want is the number of sentences to keep out of n.
func (o Options) want(n int) int {
	k := DefaultSentences
	switch {
	case o.Sentences > 0:
		k = o.Sentences
	case o.Ratio > 0:
		k = int(math.Ceil(o.Ratio * float64(n)))
	}
	return max(1, min(k, n))
}

// Summary is an extractive summary: sentences of the text, in their
// original order.
type Summary struct {
	Sentences []string `json:"sentences"`
	Indices   []int    `json:"indices"` // positions of Sentences in the split text
	Total     int      `json:"total_sentences"`
}

// Text joins the chosen sentences with single spaces.
func (s Summary) Text() string { return strings.Join(s.Sentences, " ") }

// Summarize picks the most representative sentences of text: each content
// word scores its relative frequency in the whole text; a sentence scores
// the sum over its content words divided by the square root of their count
// (so long sentences win on substance, not length), times a position weight
// that favours the lead sentence, as news and reports put the gist first.
// Ties keep the earlier sentence. The result is deterministic.
func Summarize(text string, opts Options) Summary {
	sents := SplitSentences(text)
	sum := Summary{Sentences: []string{}, Indices: []int{}, Total: len(sents)}
	if len(sents) == 0 {
		return sum
	}
	k := opts.want(len(sents))

	words := make([][]string, len(sents))
	freq := map[string]int{}
	maxFreq := 0
	for i, s := range sents {
		words[i] = contentWords(s)
		for _, w := range words[i] {
			freq[w]++
			maxFreq = max(maxFreq, freq[w])
		}
	}

	type scored struct {
		idx   int
		score float64
	}
	ranked := make([]scored, len(sents))
	for i := range sents {
		var s float64
		for _, w := range words[i] {
			s += float64(freq[w]) / float64(maxFreq)
		}
		if n := len(words[i]); n > 0 {
			s /= math.Sqrt(float64(n))
		}
		ranked[i] = scored{i, s * positionWeight(i, len(sents))}
	}
	slices.SortStableFunc(ranked, func(a, b scored) int {
		switch {
		case a.score > b.score:
			return -1
		case a.score < b.score:
			return 1
		}
		return 0
	})
	for _, r := range ranked[:k] {
		sum.Indices = append(sum.Indices, r.idx)
	}
	slices.Sort(sum.Indices)
	for _, i := range sum.Indices {
		sum.Sentences = append(sum.Sentences, sents[i])
	}
	return sum
}

// positionWeight gives the first sentence a 50% bonus and the ones after it
// a bonus that fades linearly to none at the end of the text.
func positionWeight(i, n int) float64 {
	if i == 0 {
		return 1.5
	}
	return 1 + 0.2*(1-float64(i)/float64(n))
}

// contentWords lower-cases the words of s, drops stopwords and one-letter
// tokens, and folds a plural "s" so that "model" and "models" count as one.
func contentWords(s string) []string {
	var out []string
	for _, w := range strings.FieldsFunc(s, func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '\''
	}) {
		w = strings.Trim(strings.ToLower(w), "'")
		w = strings.TrimSuffix(w, "'s")
		if utf8.RuneCountInString(w) < 2 || stopwords[w] {
			continue
		}
		if len(w) > 3 && strings.HasSuffix(w, "s") && !strings.HasSuffix(w, "ss") && !strings.HasSuffix(w, "us") && !strings.HasSuffix(w, "is") {
			w = w[:len(w)-1]
		}
		out = append(out, w)
	}
	return out
}

// SplitSentences splits text at '.', '!' or '?' (with any closing quotes or
// brackets) followed by white space or the end, and at blank lines. It does
// not split after common abbreviations ("e.g.", "Dr.") or single-letter
// initials ("J. Smith"), nor inside numbers ("3.14"). Sentences come back
// with their internal white space collapsed.
func SplitSentences(text string) []string {
	var out []string
	var cur strings.Builder
	flush := func() {
		s := strings.Join(strings.Fields(cur.String()), " ")
		if s != "" {
			out = append(out, s)
		}
		cur.Reset()
	}
	runes := []rune(text)
	for i := 0; i < len(runes); i++ {
		r := runes[i]
		if r == '\n' && blankLineFollows(runes, i) {
			cur.WriteRune(r)
			flush()
			continue
		}
		cur.WriteRune(r)
		if r != '.' && r != '!' && r != '?' {
			continue
		}
		// Absorb runs like "?!" or "..." and closing quotes/brackets.
		j := i + 1
		for j < len(runes) && (runes[j] == '.' || runes[j] == '!' || runes[j] == '?' || strings.ContainsRune("\"')]»”’", runes[j])) {
			cur.WriteRune(runes[j])
			j++
		}
		if j < len(runes) && !unicode.IsSpace(runes[j]) {
			i = j - 1
			continue
		}
		if r == '.' && j == i+1 && isAbbreviation(runes[:i]) {
			i = j - 1
			continue
		}
		i = j - 1
		flush()
	}
	flush()
	return out
}

// blankLineFollows reports whether the newline at i starts a blank line.
func blankLineFollows(runes []rune, i int) bool {
	for j := i + 1; j < len(runes); j++ {
		switch runes[j] {
		case '\n':
			return true
		case ' ', '\t', '\r':
		default:
			return false
		}
	}
	return false
}

// isAbbreviation reports whether the word just before a '.' is an
// abbreviation or an initial rather than the end of a sentence.
func isAbbreviation(before []rune) bool {
	start := len(before)
	for start > 0 && !unicode.IsSpace(before[start-1]) && before[start-1] != '(' {
		start--
	}
	word := string(before[start:])
	if utf8.RuneCountInString(word) == 1 && unicode.IsUpper([]rune(word)[0]) {
		return true // an initial: "J. Smith"
	}
	return abbreviations[strings.ToLower(word)]
}

var abbreviations = setOf("mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "e.g", "i.e", "cf",
	"inc", "ltd", "co", "corp", "no", "fig", "approx", "dept", "est", "jan", "feb", "mar", "apr", "jun",
	"jul", "aug", "sep", "sept", "oct", "nov", "dec", "u.s", "u.k", "a.m", "p.m")

var stopwords = setOf("a", "about", "above", "after", "again", "against", "all", "also", "am", "an", "and",
	"any", "are", "as", "at", "be", "because", "been", "before", "being", "below", "between", "both", "but",
	"by", "can", "could", "did", "do", "does", "doing", "down", "during", "each", "either", "few", "for", "from",
	"further", "had", "has", "have", "having", "he", "her", "here", "hers", "herself", "him", "himself", "his",
	"how", "however", "if", "in", "into", "is", "it", "its", "itself", "just", "may", "me", "might", "more",
	"most", "much", "must", "my", "myself", "no", "nor", "not", "now", "of", "off", "on", "once", "one", "only",
	"or", "other", "our", "ours", "ourselves", "out", "over", "own", "same", "shall", "she", "should", "so",
	"some", "such", "than", "that", "the", "their", "theirs", "them", "themselves", "then", "there", "these",
	"they", "this", "those", "through", "thus", "to", "too", "under", "until", "up", "upon", "us", "very",
	"was", "we", "were", "what", "when", "where", "which", "while", "who", "whom", "whose", "why", "will",
	"with", "within", "without", "would", "yet", "you", "your", "yours", "yourself", "yourselves",
	"it's", "don't", "can't", "won't", "isn't", "aren't", "wasn't", "weren't", "i'm", "i've", "we're", "they're")

func setOf(words ...string) map[string]bool {
	m := make(map[string]bool, len(words))
	for _, w := range words {
		m[w] = true
	}
	return m
}
