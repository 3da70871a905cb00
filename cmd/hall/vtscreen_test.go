package main

import (
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// renderScreen is what a terminal of rows×cols shows after out: just
// enough of a VT100 to read a full-screen program (printing with
// auto-wrap, CR, LF, BS, cursor moves and erases); colours and modes are
// ignored. A full-screen program redraws only the cells that changed, so
// its output can only be read as a screen, not searched as a text.
// Trailing spaces are trimmed from each line.
func renderScreen(out []byte, rows, cols int) []string {
	grid := make([][]rune, rows)
	blank := func() []rune { return []rune(strings.Repeat(" ", cols)) }
	for i := range grid {
		grid[i] = blank()
	}
	r, c, wrap := 0, 0, false
	lf := func() {
		if r < rows-1 {
			r++
			return
		}
		copy(grid, grid[1:])
		grid[rows-1] = blank()
	}
	clamp := func(v, lo, hi int) int { return max(lo, min(v, hi)) }
	erase := func(row, from, to int) {
		for i := from; i < to; i++ {
			grid[row][i] = ' '
		}
	}
	for i := 0; i < len(out); {
		b := out[i]
		switch {
		case b == 0x1b:
			n, final, params, ok := escape(out[i:])
			if n == 0 {
				i = len(out) // an incomplete sequence: the rest has not arrived
				continue
			}
			i += n
			if !ok {
				continue
			}
			p := func(k, def int) int {
				if k < len(params) && params[k] > 0 {
					return params[k]
				}
				return def
			}
			wrap = false
			switch final {
			case 'A':
				r = clamp(r-p(0, 1), 0, rows-1)
			case 'B':
				r = clamp(r+p(0, 1), 0, rows-1)
			case 'C':
				c = clamp(c+p(0, 1), 0, cols-1)
			case 'D':
				c = clamp(c-p(0, 1), 0, cols-1)
			case 'G':
				c = clamp(p(0, 1)-1, 0, cols-1)
			case 'H', 'f':
				r, c = clamp(p(0, 1)-1, 0, rows-1), clamp(p(1, 1)-1, 0, cols-1)
			case 'J':
				switch p(0, 0) {
				case 0:
					erase(r, c, cols)
					for k := r + 1; k < rows; k++ {
						erase(k, 0, cols)
					}
				case 1:
					for k := 0; k < r; k++ {
						erase(k, 0, cols)
					}
					erase(r, 0, c+1)
				default:
					for k := range rows {
						erase(k, 0, cols)
					}
				}
			case 'K':
				switch p(0, 0) {
				case 0:
					erase(r, c, cols)
				case 1:
					erase(r, 0, c+1)
				default:
					erase(r, 0, cols)
				}
			}
		case b == '\r':
			c, wrap = 0, false
			i++
		case b == '\n':
			lf()
			wrap = false
			i++
		case b == '\b':
			c, wrap = max(c-1, 0), false
			i++
		case b < 0x20 || b == 0x7f:
			i++
		default:
			if !utf8.FullRune(out[i:]) {
				i = len(out)
				continue
			}
			ch, n := utf8.DecodeRune(out[i:])
			i += n
			if wrap {
				c, wrap = 0, false
				lf()
			}
			grid[r][c] = ch
			if c == cols-1 {
				wrap = true
			} else {
				c++
			}
		}
	}
	lines := make([]string, rows)
	for k, row := range grid {
		lines[k] = strings.TrimRight(string(row), " ")
	}
	return lines
}

// escape reads the escape sequence at the start of b: its length (0 when
// incomplete), and for a plain CSI sequence (no private marker, no
// intermediate bytes) its final byte and numeric parameters with ok.
func escape(b []byte) (n int, final byte, params []int, ok bool) {
	if len(b) < 2 {
		return 0, 0, nil, false
	}
	switch b[1] {
	case '[': // CSI: parameters 0x30-0x3F, intermediates 0x20-0x2F, final 0x40-0x7E
		i := 2
		for i < len(b) && b[i] >= 0x30 && b[i] <= 0x3f {
			i++
		}
		p := string(b[2:i])
		j := i
		for j < len(b) && b[j] >= 0x20 && b[j] <= 0x2f {
			j++
		}
		if j >= len(b) {
			return 0, 0, nil, false
		}
		if p != "" && strings.ContainsAny(p[:1], "<=>?") || j > i {
			return j + 1, b[j], nil, false
		}
		for _, f := range strings.Split(p, ";") {
			v, _ := strconv.Atoi(f)
			params = append(params, v)
		}
		return j + 1, b[j], params, true
	case ']', 'P', '_', '^': // OSC, DCS, APC, PM: up to BEL or ST
		for i := 2; i < len(b); i++ {
			if b[i] == 0x07 {
				return i + 1, 0, nil, false
			}
			if b[i] == 0x1b && i+1 < len(b) && b[i+1] == '\\' {
				return i + 2, 0, nil, false
			}
		}
		return 0, 0, nil, false
	default: // ESC, intermediates, final
		i := 1
		for i < len(b) && b[i] >= 0x20 && b[i] <= 0x2f {
			i++
		}
		if i >= len(b) {
			return 0, 0, nil, false
		}
		return i + 1, 0, nil, false
	}
}

// TestRenderScreen: the emulator the full-screen tests read the terminal
// with, on the kinds of output a bubbletea program writes.
func TestRenderScreen(t *testing.T) {
	for _, tc := range []struct {
		name string
		out  string
		want []string
	}{
		{"text and CRLF", "ab\r\ncd", []string{"ab", "cd", ""}},
		{"colours ignored", "\x1b[38;5;62;1mtitle\x1b[m \x1b[?25l\x1b[>4;2m\x1b[?2026$p", []string{"title", "", ""}},
		{"cursor up and back", "one\r\ntwo\x1b[1A\x1b[2DX", []string{"oXe", "two", ""}},
		{"backspace redraw", "> or\x1b[38;5;36;7m \x1b[m\bg.x", []string{"> org.x", "", ""}},
		{"line feed keeps the column", "ab\ncd", []string{"ab", "  cd", ""}},
		{"erase to end of line", "abcdef\r\x1b[3C\x1b[K", []string{"abc", "", ""}},
		{"erase below", "a\r\nb\r\nc\x1b[1A\r\x1b[J", []string{"a", "", ""}},
		{"multi-byte runes", "┃ > ✓ dev", []string{"┃ > ✓ dev", "", ""}},
		{"auto-wrap", "0123456789ab", []string{"0123456789", "ab", ""}},
		{"scroll", "1\r\n2\r\n3\r\n4", []string{"2", "3", "4"}},
		{"incomplete tail", "ok\x1b[3", []string{"ok", "", ""}},
		{"osc title", "\x1b]2;title\x07x", []string{"x", "", ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := renderScreen([]byte(tc.out), 3, 10)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("screen:\n%q\nwant:\n%q", got, tc.want)
			}
		})
	}
}
