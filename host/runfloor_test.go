package host_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// BenchmarkHallRunFloor: a one-shot `hall run` process (decide, attest,
// load from the warm compilation cache, run in the sandbox, commit the
// signed receipt) against the floor (testdata/floor: the same export of
// the same module through plain Extism, from a warm cache of its own in
// the same directory), alternated run by run so that the machine's drift
// hits both. Reported: the medians of each and the median of the
// pairwise ratios (hall/floor; issue 12's target: at most 1.3). The
// module is the Extism Rust PDK's count_vowels.
func BenchmarkHallRunFloor(b *testing.B) {
	dir := b.TempDir()
	hall, floor := filepath.Join(dir, "hall"), filepath.Join(dir, "floor")
	for bin, pkg := range map[string]string{hall: "../cmd/hall", floor: "../testdata/floor"} {
		if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
			b.Fatalf("building %s: %v\n%s", pkg, err, out)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "cv.wasm"), countVowels(b), 0o644); err != nil {
		b.Fatal(err)
	}
	rec, _ := filepath.Abs("../testdata/extism/count_vowels.json")
	cmd := func(name string, args ...string) *exec.Cmd {
		c := exec.Command(name, args...)
		c.Dir = dir
		c.Env = append(os.Environ(), "HALL_HOME="+filepath.Join(dir, ".hall"))
		c.Stdin = strings.NewReader("hello world")
		return c
	}
	run := func(c *exec.Cmd) time.Duration {
		start := time.Now()
		if out, err := c.CombinedOutput(); err != nil {
			b.Fatalf("%v: %v\n%s", c.Args, err, out)
		}
		return time.Since(start)
	}
	cache := filepath.Join(dir, ".hall", "cache")
	hallRun := func() *exec.Cmd { return cmd(hall, "run", "cap.extism.count-vowels", "--tenant", "org.acme") }
	floorRun := func() *exec.Cmd { return cmd(floor, cache, "cv.wasm", "count_vowels") }
	run(cmd(hall, "enroll", "cv.wasm", "--record", rec))
	run(hallRun()) // warms the cache
	run(floorRun())
	var hs, fs, ratios []float64
	b.ResetTimer()
	for b.Loop() {
		h, f := run(hallRun()), run(floorRun())
		hs, fs = append(hs, h.Seconds()*1e3), append(fs, f.Seconds()*1e3)
		ratios = append(ratios, float64(h)/float64(f))
	}
	b.ReportMetric(median(hs), "ms/hall-run")
	b.ReportMetric(median(fs), "ms/floor")
	b.ReportMetric(median(ratios), "hall/floor")
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}
