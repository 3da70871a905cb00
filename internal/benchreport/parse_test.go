package main

import (
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// TestParseFiles reads real outputs of `go test -bench` (testdata/run,
// saved from quick runs of the repository's benchmarks) and checks
// figures of each kind: the standard ones, b.ReportMetric's, and -N
// suffixes stripped.
func TestParseFiles(t *testing.T) {
	for _, tc := range []struct {
		file, pkg, name string
		results         int
		unit            string
		want            float64
	}{
		{"engine.txt", "internal/router", "BenchmarkDecide/allow-1rule/defaults", 19, "ns/op", 1805},
		{"engine.txt", "internal/router", "BenchmarkDecideRules/rules=10000/wildcards-no-match", 19, "allocs/op", 2},
		{"engine.txt", "internal/policy", "BenchmarkEvaluate20", 19, "B/op", 649},
		{"host.txt", "host", "BenchmarkDispatchParallel", 9, "dispatches/s", 19.10},
		{"host.txt", "host", "BenchmarkHallDecide/workers=10000", 9, "ns/op", 2757},
		{"sandbox.txt", "internal/sandbox", "BenchmarkLoopTermination/no_check", 6, "ns/iter", 2.831},
		{"ledger.txt", "internal/ledger", "BenchmarkAppendParallel/SyncFull", 10, "writes/commit", 12.50},
		{"sdk.txt", "sdk", "BenchmarkEcho1MiB", 1, "MB/s", 7.45},
	} {
		t.Run(tc.file+"/"+tc.name+"/"+tc.unit, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", "run", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			res, hdr, err := Parse(f, tc.file)
			if err != nil {
				t.Fatal(err)
			}
			if len(res) != tc.results {
				t.Errorf("%d results, want %d", len(res), tc.results)
			}
			if hdr["goos"] != "linux" || hdr["cpu"] == "" {
				t.Errorf("header = %v", hdr)
			}
			r, ok := NewSet(res).Get(tc.pkg, tc.name)
			if !ok {
				t.Fatalf("%s %s not found", tc.pkg, tc.name)
			}
			if r.Procs != 2 || r.File != tc.file {
				t.Errorf("procs %d file %q", r.Procs, r.File)
			}
			if got := r.Values[tc.unit]; got != tc.want {
				t.Errorf("%s = %v, want %v", tc.unit, got, tc.want)
			}
		})
	}
}

// TestParseLines covers what a saved run's files may hold beside clean
// result lines. The lines are taken from real runs; the interleavings are
// what testing prints when the code under test writes to the same stream
// or a benchmark fails.
func TestParseLines(t *testing.T) {
	const hdr = "goos: linux\ngoarch: amd64\npkg: github.com/wcphall/hall/internal/router\ncpu: AMD EPYC\n"
	for _, tc := range []struct {
		name string
		in   string
		want []string // "name procs N unit=value…" of each result, units sorted
	}{
		{"clean", hdr + "BenchmarkDecide/no-match-2                     \t     100\t       864.9 ns/op\t     480 B/op\t       2 allocs/op\nPASS\n",
			[]string{"BenchmarkDecide/no-match 2 100 B/op=480 allocs/op=2 ns/op=864.9"}},
		{"no procs suffix", hdr + "BenchmarkEvaluate20 \t 100\t 3478 ns/op\n",
			[]string{"BenchmarkEvaluate20 1 100 ns/op=3478"}},
		{"name ending in digits before the suffix", hdr + "BenchmarkHallDecide/workers=1000-2      \t      50\t      2022 ns/op\n",
			[]string{"BenchmarkHallDecide/workers=1000 2 50 ns/op=2022"}},
		{"custom metrics", hdr + "BenchmarkRunHTTP/wat-noop-2 \t 300\t 600000 ns/op\t 1650 dispatches/s\t 17.20 p50-ms\t 41.90 p99-ms\n",
			[]string{"BenchmarkRunHTTP/wat-noop 2 300 dispatches/s=1650 ns/op=600000 p50-ms=17.2 p99-ms=41.9"}},
		{"log line between name and figures", hdr + "BenchmarkIdleWorkers-2   \t2026/12/01 17:30:00 loaded 1000 workers\n       1\t5000000000 ns/op\t 210.5 MiB-rss\n",
			[]string{"BenchmarkIdleWorkers 2 1 MiB-rss=210.5 ns/op=5e+09"}},
		{"log text before the figures on their line", hdr + "BenchmarkX-2   \tnote: retry 3 2 times\n done       1\t42 ns/op\n",
			[]string{"BenchmarkX 2 1 ns/op=42"}},
		{"failed benchmark", hdr + "BenchmarkA-2   \t--- FAIL: BenchmarkA-2\n    bench_test.go:10: boom\nBenchmarkB-2 \t 10\t 5 ns/op\nFAIL\n",
			[]string{"BenchmarkB 2 10 ns/op=5"}},
		{"test output and ok lines only", "=== RUN TestX\n--- PASS: TestX\nok  \tgithub.com/wcphall/hall/host\t0.1s\n", nil},
		{"count 2", hdr + "BenchmarkX-2 \t 10\t 5 ns/op\nBenchmarkX-2 \t 10\t 7 ns/op\n",
			[]string{"BenchmarkX 2 10 ns/op=5", "BenchmarkX 2 10 ns/op=7"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, _, err := Parse(strings.NewReader(tc.in), "x.txt")
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range res {
				got = append(got, describe(r))
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func describe(r Result) string {
	s := r.Name + " " + strconv.Itoa(r.Procs) + " " + strconv.FormatInt(r.N, 10)
	units := sortedUnits(r.Values)
	sort.Strings(units)
	for _, u := range units {
		s += " " + u + "=" + trimFloat(r.Values[u])
	}
	return s
}

// TestSetMedian: with -count, Get gives each figure's median.
func TestSetMedian(t *testing.T) {
	res, _, err := Parse(strings.NewReader("pkg: github.com/wcphall/hall/host\nBenchmarkX-2 \t 10\t 5 ns/op\nBenchmarkX-2 \t 10\t 9 ns/op\nBenchmarkX-2 \t 10\t 6 ns/op\n"), "x.txt")
	if err != nil {
		t.Fatal(err)
	}
	r, ok := NewSet(res).Get("host", "BenchmarkX")
	if !ok || r.Values["ns/op"] != 6 || r.N != 30 {
		t.Errorf("got %+v, %v", r, ok)
	}
	if _, ok := NewSet(res).Get("internal/router", "BenchmarkX"); ok {
		t.Error("found in another package")
	}
}
