package devenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestREADMEReadsInFiveMinutes (issue 27, item 10): the README a newcomer
// opens is short — what Hall is, the two commands, the quick start, then
// links — and holds no benchmark tables (docs/PERFORMANCE.md does). At
// 7d8ebc3 it was 804 lines, mostly generated tables.
func TestREADMEReadsInFiveMinutes(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	lines := strings.Split(doc, "\n")
	if len(lines) > 200 {
		t.Errorf("README.md has %d lines; keep it under 200 (reference material belongs in docs/GUIDE.md)", len(lines))
	}
	head := strings.Join(lines[:min(12, len(lines))], "\n")
	for _, cmd := range []string{"make demo", "make test"} {
		if !strings.Contains(head, cmd) {
			t.Errorf("README.md does not open with %q", cmd)
		}
	}
	if strings.Contains(doc, "<!-- bench:begin") {
		t.Error("README.md holds generated benchmark tables; they belong in docs/PERFORMANCE.md")
	}
	for _, link := range []string{"docs/GUIDE.md", "docs/PERFORMANCE.md"} {
		if !strings.Contains(doc, "]("+link) {
			t.Errorf("README.md does not link %s", link)
		}
	}
}
