package ledger

import (
	"encoding/json"
	"strings"
)

// parseStoredChange fills c's ChangeID, Kind, Subject and PrevHash from a
// stored change body: the top-level members of the JSON object, as
// json.Unmarshal(body, c) would. changesToHead reads every change after
// an approval's newest one in the committer's transaction, and decoding
// each body with encoding/json (which validates it, then decodes it) was
// 70% of that walk's cost. The fast path reads the compact form the
// ledger stores (no whitespace, no escapes in the members it takes) in
// one pass; on anything else it falls back to json.Unmarshal, so for a
// valid JSON body its result is json.Unmarshal's (FuzzParseStoredChange
// holds them equal). It may accept a body that is not valid JSON (it
// does not check numbers or UTF-8): changesToHead only succeeds when
// every body it read is covered by the head's signature, so such a body
// ends in an error there.
func parseStoredChange(body string, c *storedChange) error {
	if parseChangeHead(body, c) {
		return nil
	}
	*c = storedChange{body: c.body, hash: c.hash, sig: c.sig}
	return json.Unmarshal([]byte(body), c)
}

// parseChangeHead is the fast path of parseStoredChange; false means
// "not sure", never "invalid".
func parseChangeHead(b string, c *storedChange) bool {
	var out storedChange
	if len(b) < 2 || b[0] != '{' {
		return false
	}
	i := 1
	if b[i] == '}' {
		return i+1 == len(b) && set(c, out)
	}
	for {
		key, j, ok := plainString(b, i)
		if !ok || j >= len(b) || b[j] != ':' {
			return false
		}
		i = j + 1
		if !exactMember(key) {
			return false
		}
		switch key {
		case "change_id", "kind", "subject", "prev_hash":
			if key == "prev_hash" && hasPrefixAt(b, i, "null") {
				out.PrevHash, i = nil, i+4
				break
			}
			v, j, ok := plainString(b, i)
			if !ok {
				return false
			}
			switch key {
			case "change_id":
				out.ChangeID = v
			case "kind":
				out.Kind = v
			case "subject":
				out.Subject = v
			case "prev_hash":
				vv := v
				out.PrevHash = &vv
			}
			i = j
		default:
			j, ok := skipValue(b, i, 0)
			if !ok {
				return false
			}
			i = j
		}
		if i >= len(b) {
			return false
		}
		switch b[i] {
		case ',':
			i++
		case '}':
			return i+1 == len(b) && set(c, out)
		default:
			return false
		}
	}
}

// exactMember is false for a key encoding/json would match to a member
// parseChangeHead takes, without being spelled as its tag (it matches
// keys case-insensitively).
func exactMember(key string) bool {
	for _, m := range []string{"change_id", "kind", "subject", "prev_hash"} {
		if key != m && strings.EqualFold(key, m) {
			return false
		}
	}
	return true
}

func set(c *storedChange, v storedChange) bool {
	c.ChangeID, c.Kind, c.Subject, c.PrevHash = v.ChangeID, v.Kind, v.Subject, v.PrevHash
	return true
}

func hasPrefixAt(b string, i int, p string) bool {
	return len(b)-i >= len(p) && b[i:i+len(p)] == p
}

// plainString reads a JSON string at b[i] with no escapes and only
// printable ASCII, and returns it and the index after its closing quote.
func plainString(b string, i int) (string, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return "", 0, false
	}
	for j := i + 1; j < len(b); j++ {
		switch ch := b[j]; {
		case ch == '"':
			return b[i+1 : j], j + 1, true
		case ch == '\\' || ch < 0x20 || ch >= 0x7f:
			return "", 0, false
		}
	}
	return "", 0, false
}

// skipValue returns the index after the compact JSON value at b[i]. It
// does not validate numbers or UTF-8 (see parseStoredChange).
func skipValue(b string, i, depth int) (int, bool) {
	if i >= len(b) || depth > 64 {
		return 0, false
	}
	switch ch := b[i]; {
	case ch == '"':
		for j := i + 1; j < len(b); j++ {
			switch b[j] {
			case '\\':
				j++
			case '"':
				return j + 1, true
			default:
				if b[j] < 0x20 {
					return 0, false
				}
			}
		}
		return 0, false
	case ch == '{' || ch == '[':
		end := byte('}')
		if ch == '[' {
			end = ']'
		}
		i++
		if i < len(b) && b[i] == end {
			return i + 1, true
		}
		for {
			if ch == '{' {
				j, ok := skipValue(b, i, depth+1)
				if !ok || j >= len(b) || b[i] != '"' || b[j] != ':' {
					return 0, false
				}
				i = j + 1
			}
			j, ok := skipValue(b, i, depth+1)
			if !ok || j >= len(b) {
				return 0, false
			}
			i = j
			switch b[i] {
			case ',':
				i++
			case end:
				return i + 1, true
			default:
				return 0, false
			}
		}
	case ch == '-' || ch >= '0' && ch <= '9':
		j := i + 1
		for j < len(b) && (b[j] >= '0' && b[j] <= '9' || b[j] == '.' || b[j] == 'e' || b[j] == 'E' || b[j] == '+' || b[j] == '-') {
			j++
		}
		return j, true
	default:
		for _, lit := range []string{"true", "false", "null"} {
			if hasPrefixAt(b, i, lit) {
				return i + len(lit), true
			}
		}
		return 0, false
	}
}
