package main

import (
	"io"
	"os"
)

// sameFile reports whether two writers are the same open file (stdout and
// stderr both a terminal, or `2>&1` into one file or pipe): the outcome
// line on standard error then follows the output, and an output without a
// trailing newline would run into it (issue 27). Outputs going elsewhere
// keep their bytes exactly.
func sameFile(a, b io.Writer) bool {
	fa, ok1 := a.(*os.File)
	fb, ok2 := b.(*os.File)
	if !ok1 || !ok2 {
		return false
	}
	sa, err1 := fa.Stat()
	sb, err2 := fb.Stat()
	if err1 != nil || err2 != nil {
		return false
	}
	return os.SameFile(sa, sb) || (isTerminal(a) && isTerminal(b))
}
