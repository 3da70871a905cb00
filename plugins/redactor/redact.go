package main

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Kind is a category of personal or sensitive data the redactor finds.
type Kind string

// The kinds, in precedence order: where two matches overlap, the earlier
// kind wins (an email's digits are not a phone number, a card is not a
// phone number, an IP address is not a phone number).
const (
	KindEmail Kind = "email"
	KindCard  Kind = "card" // payment card numbers passing the Luhn check
	KindSSN   Kind = "ssn"  // US social security numbers (AAA-GG-SSSS)
	KindIBAN  Kind = "iban" // IBANs passing the ISO 13616 mod-97 check
	KindIPv4  Kind = "ipv4"
	KindPhone Kind = "phone" // 7 to 15 digits with optional +country and separators
)

// AllKinds lists every kind in precedence order.
var AllKinds = []Kind{KindEmail, KindCard, KindSSN, KindIBAN, KindIPv4, KindPhone}

// Mask styles.
const (
	MaskLabel = "label" // "[EMAIL]" (the default)
	MaskStars = "stars" // one '*' per character, keeping the text's length
)

// Options choose what is redacted and how.
type Options struct {
	Kinds []Kind `json:"kinds,omitempty"` // empty means AllKinds
	Mask  string `json:"mask,omitempty"`  // MaskLabel or MaskStars; empty means MaskLabel
}

// Validate reports unknown kinds or mask styles.
func (o Options) Validate() error {
	for _, k := range o.Kinds {
		if !slices.Contains(AllKinds, k) {
			return fmt.Errorf("unknown kind %q (known: %v)", k, AllKinds)
		}
	}
	if o.Mask != "" && o.Mask != MaskLabel && o.Mask != MaskStars {
		return fmt.Errorf("unknown mask %q (known: %s, %s)", o.Mask, MaskLabel, MaskStars)
	}
	return nil
}

type detector struct {
	re    *regexp.Regexp
	valid func(match string) bool
}

var detectors = map[Kind]detector{
	KindEmail: {regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}`), nil},
	KindCard:  {regexp.MustCompile(`\d(?:[ -]?\d){12,18}`), luhnValid},
	KindSSN:   {regexp.MustCompile(`\d{3}-\d{2}-\d{4}`), ssnValid},
	KindIBAN:  {regexp.MustCompile(`[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}`), ibanValid},
	KindIPv4:  {regexp.MustCompile(`\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}`), ipv4Valid},
	KindPhone: {regexp.MustCompile(`(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,5}(?:[ .-]?\d{2,5}){1,4}`), phoneValid},
}

// Finding is one redacted span of the input, in bytes.
type Finding struct {
	Kind       Kind
	Start, End int
}

// Find returns the non-overlapping findings of the chosen kinds in text,
// in text order.
func Find(text string, kinds []Kind) []Finding {
	if len(kinds) == 0 {
		kinds = AllKinds
	}
	var found []Finding
	for _, k := range AllKinds { // precedence order, whatever the caller's order
		if !slices.Contains(kinds, k) {
			continue
		}
		d := detectors[k]
		for _, loc := range d.re.FindAllStringIndex(text, -1) {
			start, end := loc[0], loc[1]
			if !standsAlone(text, start, end) {
				continue
			}
			if d.valid != nil && !d.valid(text[start:end]) {
				continue
			}
			if overlaps(found, start, end) {
				continue
			}
			found = append(found, Finding{k, start, end})
		}
	}
	slices.SortFunc(found, func(a, b Finding) int { return a.Start - b.Start })
	return found
}

// Redact masks every finding of the chosen kinds and counts them by kind.
func Redact(text string, opts Options) (string, map[Kind]int) {
	counts := map[Kind]int{}
	var b strings.Builder
	last := 0
	for _, f := range Find(text, opts.Kinds) {
		b.WriteString(text[last:f.Start])
		if opts.Mask == MaskStars {
			b.WriteString(strings.Repeat("*", utf8.RuneCountInString(text[f.Start:f.End])))
		} else {
			b.WriteString("[" + strings.ToUpper(string(f.Kind)) + "]")
		}
		last = f.End
		counts[f.Kind]++
	}
	b.WriteString(text[last:])
	return b.String(), counts
}

// standsAlone rejects a match glued to a letter or digit on either side
// (part of a longer token), which Go's regexp cannot express as lookaround.
func standsAlone(text string, start, end int) bool {
	if start > 0 {
		r, _ := utf8.DecodeLastRuneInString(text[:start])
		if unicode.IsLetter(r) || unicode.IsDigit(r) || r == '+' || r == '@' {
			return false
		}
	}
	if end < len(text) {
		r, _ := utf8.DecodeRuneInString(text[end:])
		if unicode.IsLetter(r) || unicode.IsDigit(r) || r == '@' {
			return false
		}
	}
	return true
}

func overlaps(found []Finding, start, end int) bool {
	for _, f := range found {
		if start < f.End && f.Start < end {
			return true
		}
	}
	return false
}

func digits(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s)
}

// luhnValid checks a 13 to 19 digit card number (ISO/IEC 7812).
func luhnValid(s string) bool {
	d := digits(s)
	if len(d) < 13 || len(d) > 19 {
		return false
	}
	sum := 0
	for i := range len(d) {
		n := int(d[len(d)-1-i] - '0')
		if i%2 == 1 {
			n *= 2
			if n > 9 {
				n -= 9
			}
		}
		sum += n
	}
	return sum%10 == 0
}

// ssnValid excludes numbers the SSA never issues: area 000, 666 or 9xx,
// group 00, serial 0000.
func ssnValid(s string) bool {
	area, group, serial := s[0:3], s[4:6], s[7:11]
	return area != "000" && area != "666" && area[0] != '9' && group != "00" && serial != "0000"
}

// ibanValid applies the ISO 13616 mod-97 check.
func ibanValid(s string) bool {
	s = strings.ReplaceAll(s, " ", "")
	if len(s) < 15 || len(s) > 34 {
		return false
	}
	rearranged := s[4:] + s[:4]
	rem := 0
	for _, r := range rearranged {
		switch {
		case r >= '0' && r <= '9':
			rem = (rem*10 + int(r-'0')) % 97
		case r >= 'A' && r <= 'Z':
			rem = (rem*100 + int(r-'A'+10)) % 97
		default:
			return false
		}
	}
	return rem == 1
}

func ipv4Valid(s string) bool {
	for _, part := range strings.Split(s, ".") {
		n, err := strconv.Atoi(part)
		if err != nil || n > 255 || (len(part) > 1 && part[0] == '0') {
			return false
		}
	}
	return true
}

// isoDate matches what the phone pattern would otherwise take for a number.
var isoDate = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)

// phoneValid wants 7 to 15 digits (E.164 allows at most 15) and rejects ISO
// dates and plain runs of digits without a "+" or any separator, which are
// more often ids and amounts than phone numbers.
func phoneValid(s string) bool {
	n := len(digits(s))
	if n < 7 || n > 15 || isoDate.MatchString(s) {
		return false
	}
	return strings.HasPrefix(s, "+") || strings.ContainsAny(s, " .-()")
}

// countsJSON renders counts with every chosen kind present, for events
// and the JSON response.
func countsJSON(kinds []Kind, counts map[Kind]int) map[string]int {
	if len(kinds) == 0 {
		kinds = AllKinds
	}
	out := make(map[string]int, len(kinds))
	for _, k := range kinds {
		out[string(k)] = counts[k]
	}
	for k, n := range maps.All(counts) {
		out[string(k)] = n
	}
	return out
}
