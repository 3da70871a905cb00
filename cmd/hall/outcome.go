package main

import (
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"
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

// flagSuggestion is "; did you mean --X?" for the flag of flags closest to
// the unknown one a flag-parsing error names, or "": command typos got a
// suggestion, flag typos none (issue 27).
func flagSuggestion(errText string, flags []cli.Flag) string {
	const unknown = "flag provided but not defined: -"
	i := strings.Index(errText, unknown)
	if i < 0 {
		return ""
	}
	bad := strings.TrimLeft(strings.Fields(errText[i+len(unknown):] + " ")[0], "-")
	bad, _, _ = strings.Cut(bad, "=")
	var names []string
	for _, f := range flags {
		for _, n := range f.Names() {
			if len(n) > 1 {
				names = append(names, n)
			}
		}
	}
	if s := suggestOne(bad, names); s != "" {
		return "; did you mean --" + s + "?"
	}
	return ""
}
