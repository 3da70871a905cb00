package main

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/report.golden from testdata/run")

// TestReport renders testdata/run, real outputs of quick runs of the
// repository's benchmarks, against testdata/report.golden; -update
// rewrites the golden file.
func TestReport(t *testing.T) {
	r, err := load(filepath.Join("testdata", "run"))
	if err != nil {
		t.Fatal(err)
	}
	got := r.Report()
	golden := filepath.Join("testdata", "report.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("report differs from %s (go test -run TestReport -update to accept):\n%s", golden, got)
	}
}

func TestRatio(t *testing.T) {
	set := NewSet([]Result{
		{Pkg: module + "/host", Name: "BenchmarkA", Values: map[string]float64{"ns/op": 3000, "dispatches/s": 500, "overhead-%": 12.5, "hall/floor": 1.7}},
		{Pkg: module + "/internal/sandbox", Name: "BenchmarkB", Values: map[string]float64{"ns/op": 1000, "calls/s": 2000}},
	})
	a, b := func(u string) metric { return m("host", "BenchmarkA", u) }, func(u string) metric { return m("internal/sandbox", "BenchmarkB", u) }
	for _, tc := range []struct {
		name string
		r    row
		want float64
		ok   bool
	}{
		{"time over the anchor's time", row{m: a("ns/op"), anchor: anc("b", b("ns/op"))}, 3, true},
		{"the anchor's rate over the row's", row{m: a("dispatches/s"), anchor: anc("b", b("calls/s"))}, 4, true},
		{"measured by the benchmark", row{m: a("ns/op"), anchor: &anchor{m: b("ns/op"), ratioUnit: "hall/floor"}}, 1.7, true},
		{"an overhead in percent", row{m: a("ns/op"), anchor: &anchor{m: b("ns/op"), ratioUnit: "overhead-%", pct: true}}, 1.125, true},
		{"a rate against a time", row{m: a("dispatches/s"), anchor: anc("b", b("ns/op"))}, 0, false},
		{"anchor not in the run", row{m: a("ns/op"), anchor: anc("c", m("host", "BenchmarkC", "ns/op"))}, 0, false},
		{"row not in the run", row{m: m("host", "BenchmarkC", "ns/op"), anchor: anc("b", b("ns/op"))}, 0, false},
		{"ratio figure not in the run", row{m: a("ns/op"), anchor: &anchor{m: b("ns/op"), ratioUnit: "sdk-overhead-%", pct: true}}, 0, false},
		{"no anchor", row{m: a("ns/op")}, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ratioOf(set, tc.r)
			if ok != tc.ok || got != tc.want {
				t.Errorf("ratio = %v, %v; want %v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestShow(t *testing.T) {
	for _, tc := range []struct {
		unit string
		v    float64
		want string
	}{
		{"ns/op", 864.9, "865 ns/op"},
		{"ns/op", 1805, "1,805 ns/op"},
		{"ns/op", 218655, "219 µs/op"},
		{"ns/op", 29709996, "29.7 ms/op"},
		{"ns/op", 4.1e9, "4.10 s/op"},
		{"ns/iter", 2.831, "2.83 ns/iter"},
		{"B/op", 1072, "1,072 B/op"},
		{"B/op", 5264964, "5.02 MiB/op"},
		{"allocs/op", 4, "4 allocs/op"},
		{"dispatches/s", 19.10, "19.1 dispatches/s"},
		{"receipts/s", 24650.4, "24,650 receipts/s"},
		{"p99-ms", 129.5, "p99 130 ms"},
		{"MiB-rss", 210.2, "RSS 210 MiB"},
		{"hall/floor", 1.7712, "1.77×"},
		{"overhead-%", 7.3, "7.30%"},
		{"cpu-overhead-%", -3.2, "-3.20% cpu-overhead"},
		{"mcp-call-µs/call", 1234.5, "1,235 µs/call"},
		{"KiB/idle-worker", 2.7, "2.70 KiB"},
		{"module-bytes", 1048576, "module 1 MiB"},
		{"module-bytes", 200000, "module 195 KiB"},
		{"s/verify", 0.0421, "0.0421 s"},
		{"compiled-modules", 1, "1"},
	} {
		if got := show(tc.unit, tc.v); got != tc.want {
			t.Errorf("show(%q, %v) = %q, want %q", tc.unit, tc.v, got, tc.want)
		}
	}
}

// TestAreasNameRealBenchmarks: every figure the tables use is a
// benchmark function of its package (its top-level name, before any
// sub-benchmark), so that a renamed benchmark shows here rather than as
// "not in this run" in the README.
func TestAreasNameRealBenchmarks(t *testing.T) {
	root := filepath.Join("..", "..")
	found := map[string]bool{}
	for _, a := range areas {
		for _, r := range a.rows {
			ms := []metric{r.m}
			if r.anchor != nil {
				ms = append(ms, r.anchor.m)
			}
			for _, x := range ms {
				top, _, _ := strings.Cut(x.bench, "/")
				key := x.pkg + " " + top
				if found[key] {
					continue
				}
				files, _ := filepath.Glob(filepath.Join(root, x.pkg, "*_test.go"))
				re := regexp.MustCompile(`(?m)^func ` + top + `\(b \*testing\.B\)`)
				for _, f := range files {
					if src, err := os.ReadFile(f); err == nil && re.Match(src) {
						found[key] = true
					}
				}
				if !found[key] {
					t.Errorf("area %s, %q: no func %s(b *testing.B) in %s", a.id, r.label, top, x.pkg)
				}
			}
		}
	}
}

// TestRunCommand: report and readme from a saved run, end to end.
func TestRunCommand(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "report.md")
	var log strings.Builder
	if err := run([]string{"report", "-dir", filepath.Join("testdata", "run"), "-o", out}, &log); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(filepath.Join("testdata", "report.golden"))
	if got, _ := os.ReadFile(out); string(got) != string(want) {
		t.Error("report command output differs from testdata/report.golden")
	}
	readme := filepath.Join(dir, "README.md")
	doc := "# X\n\n## Performance\n\nProse.\n\n<!-- bench:begin run -->\n<!-- bench:end -->\n"
	for _, a := range areas {
		doc += "\n**" + a.title + "**\n\n<!-- bench:begin " + a.id + " -->\nold table\n<!-- bench:end -->\n"
	}
	doc += "\n## Next\n"
	if err := os.WriteFile(readme, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run([]string{"readme", "-dir", filepath.Join("testdata", "run"), "-readme", readme}, &log); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(readme)
	if strings.Contains(string(got), "old table") || !strings.Contains(string(got), "| 1 enrolled worker |") || !strings.HasSuffix(string(got), "\n## Next\n") {
		t.Errorf("README after readme:\n%s", got)
	}
	for _, args := range [][]string{nil, {"stamp"}, {"report", "-dir", dir}, {"readme", "-dir", filepath.Join("testdata", "run"), "-readme", filepath.Join(dir, "none.md")}, {"bogus"}} {
		if err := run(args, &log); err == nil {
			t.Errorf("benchreport %v: no error", args)
		}
	}
}

func TestLoaded(t *testing.T) {
	for _, tc := range []struct {
		name       string
		start, end string
		want       bool
	}{
		{"idle", "0.50 0.40 0.30", "1.10 0.60 0.40", false},
		{"loaded at the start", "3.20 1.00 1.00", "1.00 1.00 1.00", true},
		{"loaded at the end", "1.00 1.00 1.00", "2.01 1.50 1.00", true},
		{"no end stamp", "0.10 0.10 0.10", "", false},
		{"unreadable", "unknown", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Run{Start: Stamp{Cores: 2, LoadAvg: tc.start}, End: Stamp{Cores: 2, LoadAvg: tc.end}}
			if got := r.loaded(); got != tc.want {
				t.Errorf("loaded = %v, want %v", got, tc.want)
			}
			if got := strings.Contains(r.environment(), "load average was above"); got != tc.want {
				t.Errorf("environment warns = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestStamp(t *testing.T) {
	path := filepath.Join(t.TempDir(), "start.env")
	if err := run([]string{"stamp", path}, &strings.Builder{}); err != nil {
		t.Fatal(err)
	}
	s, err := readStamp(path)
	if err != nil {
		t.Fatal(err)
	}
	if s.Time.IsZero() || !strings.HasPrefix(s.Go, "go") || s.Cores < 1 || s.CPU == "" || s.LoadAvg == "" {
		t.Errorf("stamp = %+v", s)
	}
	model, n := cpuinfo("processor\t: 0\nmodel name\t: AMD EPYC\n\nprocessor\t: 1\nmodel name\t: AMD EPYC\n", 8)
	if model != "AMD EPYC" || n != 2 {
		t.Errorf("cpuinfo = %q, %d", model, n)
	}
	if model, n := cpuinfo("", 8); model != "unknown CPU" || n != 8 {
		t.Errorf("empty cpuinfo = %q, %d", model, n)
	}
}
