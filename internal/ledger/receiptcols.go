package ledger

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// decodeReceiptCols decodes the members of a signed receipt that Verify
// compares, with the result and error json.Unmarshal(body, c) gives.
//
// Receipts are the bulk of a ledger, and json.Unmarshal scans each body
// twice (validation, then decoding) through a general state machine:
// ~20% of Verify's CPU over 100,000 receipts. scanReceiptCols reads the
// body once, validating all of it; whatever it is not sure to read as
// encoding/json does (an escape in a member it keeps, a member name that
// matches only case-insensitively, a null where it would have to guess,
// anything malformed) makes it give up, and json.Unmarshal decides.
// FuzzReceiptCols holds the two equal.
func decodeReceiptCols(body []byte, c *receiptCols) error {
	var fast receiptCols
	if scanReceiptCols(body, &fast) {
		*c = fast
		return nil
	}
	return json.Unmarshal(body, c)
}

// receiptScanner reads one JSON text; every method returns false when it
// gives up.
type receiptScanner struct {
	b []byte
	i int
}

func (s *receiptScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *receiptScanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// plainString reads a string without escapes, returning its bytes; ok is
// false for an escape, a control character or invalid UTF-8 (which
// json.Unmarshal would rewrite), or an unterminated string.
func (s *receiptScanner) plainString() ([]byte, bool) {
	if s.peek() != '"' {
		return nil, false
	}
	start := s.i + 1
	ascii := true
	for j := start; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			s.i = j + 1
			str := s.b[start:j]
			if !ascii && !utf8.Valid(str) {
				return nil, false
			}
			return str, true
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= 0x80:
			ascii = false
		}
	}
	return nil, false
}

// skipString checks a string with any valid escapes.
func (s *receiptScanner) skipString() bool {
	if s.peek() != '"' {
		return false
	}
	for j := s.i + 1; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			s.i = j + 1
			return true
		case c < 0x20:
			return false
		case c == '\\':
			j++
			if j >= len(s.b) {
				return false
			}
			switch s.b[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if j+4 >= len(s.b) {
					return false
				}
				for _, h := range s.b[j+1 : j+5] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return false
					}
				}
				j += 4
			default:
				return false
			}
		}
	}
	return false
}

func (s *receiptScanner) digits() int {
	n := 0
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		s.i++
		n++
	}
	return n
}

// skipNumber checks a number of the JSON grammar.
func (s *receiptScanner) skipNumber() bool {
	if s.peek() == '-' {
		s.i++
	}
	switch c := s.peek(); {
	case c == '0':
		s.i++
	case '1' <= c && c <= '9':
		s.digits()
	default:
		return false
	}
	if s.peek() == '.' {
		s.i++
		if s.digits() == 0 {
			return false
		}
	}
	if c := s.peek(); c == 'e' || c == 'E' {
		s.i++
		if c := s.peek(); c == '+' || c == '-' {
			s.i++
		}
		if s.digits() == 0 {
			return false
		}
	}
	return true
}

// skipValue checks any JSON value, nested at most depth levels.
func (s *receiptScanner) skipValue(depth int) bool {
	if depth == 0 {
		return false
	}
	switch c := s.peek(); {
	case c == '"':
		return s.skipString()
	case c == '-' || '0' <= c && c <= '9':
		return s.skipNumber()
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '{' || c == '[':
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		s.i++
		s.ws()
		if s.peek() == end {
			s.i++
			return true
		}
		for {
			if c == '{' {
				if !s.skipString() {
					return false
				}
				s.ws()
				if s.peek() != ':' {
					return false
				}
				s.i++
				s.ws()
			}
			if !s.skipValue(depth - 1) {
				return false
			}
			s.ws()
			switch s.peek() {
			case ',':
				s.i++
				s.ws()
			case end:
				s.i++
				return true
			default:
				return false
			}
		}
	}
	return false
}

func (s *receiptScanner) literal(lit string) bool {
	if bytes.HasPrefix(s.b[s.i:], []byte(lit)) {
		s.i += len(lit)
		return true
	}
	return false
}

// receiptColNames are the members decodeReceiptCols keeps.
var receiptColNames = []string{"receipt_id", "sequence", "prev_receipt_hash", "signing_key_id", "correlation_id",
	"dispatched_at", "worker_id", "tenant_id", "record_digest", "privilege_envelope", "replay_of"}

// scanReceiptCols fills c from body when it reads body exactly as
// json.Unmarshal would, and returns whether it did.
func scanReceiptCols(body []byte, c *receiptCols) bool {
	s := &receiptScanner{b: body}
	s.ws()
	if s.peek() != '{' {
		return false
	}
	s.i++
	s.ws()
	if s.peek() == '}' {
		s.i++
		s.ws()
		return s.i == len(s.b)
	}
	for {
		name, ok := s.plainString()
		if !ok || !utf8.Valid(name) {
			return false
		}
		s.ws()
		if s.peek() != ':' {
			return false
		}
		s.i++
		s.ws()
		var str *string
		switch string(name) {
		case "receipt_id":
			str = &c.ReceiptID
		case "signing_key_id":
			str = &c.SigningKeyID
		case "correlation_id":
			str = &c.CorrelationID
		case "dispatched_at":
			str = &c.DispatchedAt
		case "worker_id":
			str = &c.WorkerID
		case "tenant_id":
			str = &c.TenantID
		case "record_digest":
			str = &c.RecordDigest
		case "replay_of":
			str = &c.ReplayOf
		case "sequence":
			start := s.i
			if s.digits() == 0 || (s.b[start] == '0' && s.i-start > 1) || s.i-start > 19 {
				return false // not a plain uint64 (or null, sign, fraction: Unmarshal decides)
			}
			var n uint64
			for _, d := range s.b[start:s.i] {
				n = n*10 + uint64(d-'0')
			}
			if c := s.peek(); c == '.' || c == 'e' || c == 'E' {
				return false
			}
			c.Sequence = n
		case "prev_receipt_hash":
			if s.peek() == 'n' {
				if !s.literal("null") {
					return false
				}
				c.PrevReceiptHash = nil
				break
			}
			v, ok := s.plainString()
			if !ok {
				return false
			}
			p := string(v)
			c.PrevReceiptHash = &p
		case "privilege_envelope":
			start := s.i
			if s.peek() == 'n' || !s.skipValue(10000) {
				return false
			}
			c.Envelope = append(json.RawMessage(nil), s.b[start:s.i]...)
		default:
			for _, n := range receiptColNames {
				if bytes.EqualFold(name, []byte(n)) {
					return false // Unmarshal matches names case-insensitively
				}
			}
			if !s.skipValue(10000) {
				return false
			}
		}
		if str != nil {
			v, ok := s.plainString()
			if !ok {
				return false
			}
			*str = string(v)
		}
		s.ws()
		switch s.peek() {
		case ',':
			s.i++
			s.ws()
		case '}':
			s.i++
			s.ws()
			return s.i == len(s.b)
		default:
			return false
		}
	}
}
