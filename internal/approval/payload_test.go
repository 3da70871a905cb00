package approval_test

import (
	"encoding/hex"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/wcphall/hall/internal/approval"
)

func TestNewPayload(t *testing.T) {
	for _, tc := range []struct {
		name      string
		in        string
		max       int
		enc, want string
		truncated bool
		withheld  bool
	}{
		{"text", "line one\n\tline two\r\n", 64, "text", "line one\n\tline two\r\n", false, false},
		{"markup is text", `<script>alert(1)</script>`, 64, "text", `<script>alert(1)</script>`, false, false},
		{"escape sequence", "\x1b[2Jx", 64, "hex", "1b5b324a78", false, false},
		{"bidi override", "abc\u202edef", 64, "hex", hex.EncodeToString([]byte("abc\u202edef")), false, false},
		{"not UTF-8", "\xff\xfe", 64, "hex", "fffe", false, false},
		{"cut on a rune boundary", "ééé", 5, "text", "éé", true, false},
		{"cut bytes", "\x00\x01\x02\x03", 2, "hex", "0001", true, false},
		{"empty", "", 64, "", "", false, false},
		{"previews off", "x", 0, "", "", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := approval.NewPayload([]byte(tc.in), tc.max)
			if p.Size != len(tc.in) || p.Encoding != tc.enc || p.Shown != tc.want || p.Truncated != tc.truncated || (p.Withheld != "") != tc.withheld {
				t.Fatalf("NewPayload(%q, %d) = %+v, want %s %q truncated %v withheld %v", tc.in, tc.max, p, tc.enc, tc.want, tc.truncated, tc.withheld)
			}
		})
	}
}

// FuzzNewPayload: whatever the bytes, what is shown is a prefix of them
// within the cap, text only when printable UTF-8, hex otherwise.
func FuzzNewPayload(f *testing.F) {
	for _, s := range []string{"", "hello", "\x1b[31m", "é", "a\u202eb", "\xff"} {
		f.Add([]byte(s), 3)
	}
	f.Fuzz(func(t *testing.T, b []byte, max int) {
		if max < 1 || max > 1<<16 {
			return
		}
		p := approval.NewPayload(b, max)
		var shown []byte
		switch p.Encoding {
		case "text":
			shown = []byte(p.Shown)
			if !utf8.ValidString(p.Shown) {
				t.Fatalf("text %q is not UTF-8", p.Shown)
			}
			for _, r := range p.Shown {
				if unicode.IsControl(r) && !strings.ContainsRune("\t\n\r", r) || unicode.Is(unicode.Bidi_Control, r) {
					t.Fatalf("text %q holds %U", p.Shown, r)
				}
			}
		case "hex":
			var err error
			if shown, err = hex.DecodeString(p.Shown); err != nil {
				t.Fatal(err)
			}
		case "":
			if len(b) != 0 {
				t.Fatalf("nothing shown of %d bytes", len(b))
			}
		}
		if len(shown) > max || string(b[:len(shown)]) != string(shown) || p.Size != len(b) || p.Truncated != (len(b) > max) {
			t.Fatalf("NewPayload(%q, %d) = %+v: not a prefix within the cap", b, max, p)
		}
	})
}
