package main

import (
	"strings"
	"testing"
)

func TestSplice(t *testing.T) {
	gen := map[string]string{"a": "| t |\n|---|\n| 1 |\n"}
	for _, tc := range []struct {
		name, doc, want, err string
	}{
		{name: "replaces the block",
			doc:  "# R\n\n## Performance\n\nProse.\n<!-- bench:begin a -->\nold\n<!-- bench:end -->\nMore prose.\n\n## Next\n",
			want: "# R\n\n## Performance\n\nProse.\n<!-- bench:begin a -->\n\n| t |\n|---|\n| 1 |\n\n<!-- bench:end -->\nMore prose.\n\n## Next\n"},
		{name: "empty block", doc: "## Performance\n<!-- bench:begin a -->\n<!-- bench:end -->\n",
			want: "## Performance\n<!-- bench:begin a -->\n\n| t |\n|---|\n| 1 |\n\n<!-- bench:end -->\n"},
		{name: "outside Performance", doc: "## Performance\n\n## Other\n<!-- bench:begin a -->\n<!-- bench:end -->\n", err: "outside"},
		{name: "not closed", doc: "## Performance\n<!-- bench:begin a -->\nx\n", err: "not closed"},
		{name: "not closed before the next section", doc: "## Performance\n<!-- bench:begin a -->\n## Next\n<!-- bench:end -->\n", err: "next section"},
		{name: "nested", doc: "## Performance\n<!-- bench:begin a -->\n<!-- bench:begin b -->\n<!-- bench:end -->\n", err: "inside"},
		{name: "end alone", doc: "## Performance\n<!-- bench:end -->\n", err: "without"},
		{name: "a top-level Performance heading", doc: "# Performance\n<!-- bench:begin a -->\n<!-- bench:end -->\n",
			want: "# Performance\n<!-- bench:begin a -->\n\n| t |\n|---|\n| 1 |\n\n<!-- bench:end -->\n"},
		{name: "not closed before a top-level heading", doc: "# Performance\n<!-- bench:begin a -->\n# Next\n<!-- bench:end -->\n", err: "next section"},
		{name: "no id", doc: "## Performance\n<!-- bench:begin  -->\n<!-- bench:end -->\n", err: "without an id"},
		{name: "twice", doc: "## Performance\n<!-- bench:begin a -->\n<!-- bench:end -->\n<!-- bench:begin a -->\n<!-- bench:end -->\n", err: "twice"},
		{name: "unknown block", doc: "## Performance\n<!-- bench:begin a -->\n<!-- bench:end -->\n<!-- bench:begin z -->\n<!-- bench:end -->\n", err: "no such"},
		{name: "markers gone", doc: "## Performance\n\n| t |\n", err: "no block \"a\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := splice(tc.doc, gen)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}
