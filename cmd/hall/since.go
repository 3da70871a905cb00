package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// parseSince reads --since: a duration back from now (Go's units, plus d
// for days: 90m, 1h30m, 2d), an RFC 3339 time, or a date (UTC midnight).
// "--since yesterday" was "parse error" (issue 27): the error says what
// is accepted.
func parseSince(s string, now time.Time) (time.Time, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		if days, err := strconv.ParseFloat(n, 64); err == nil && days >= 0 {
			return now.Add(-time.Duration(days * 24 * float64(time.Hour))), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--since %q: give a duration back from now (90m, 1h, 2d), an RFC 3339 time (%s) or a date (%s, UTC)",
		s, now.UTC().Add(-24*time.Hour).Truncate(time.Second).Format(time.RFC3339), now.UTC().Add(-24*time.Hour).Format(time.DateOnly))
}
