package main

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// A figure is a looked-up value, or the reason there is none.
type figure struct {
	v  float64
	ok bool
}

func (s *Set) value(x metric) figure {
	r, ok := s.Get(x.pkg, x.bench)
	if !ok {
		return figure{}
	}
	v, ok := r.Values[x.unit]
	return figure{v, ok}
}

// rate says whether more of unit is better (dispatches/s, MB/s); for
// every other unit (ns/op, MiB, s/verify) less is.
func rate(unit string) bool { return strings.HasSuffix(unit, "/s") }

// ratioOf is the row's cost in multiples of its anchor's: time over the
// anchor's time, or the anchor's rate over the row's rate, so that above
// 1 always means slower (or bigger) than the anchor. The ratio a
// benchmark measured itself (ratioUnit) is preferred to one of two
// figures: it is a median of pairs run side by side.
func ratioOf(s *Set, r row) (float64, bool) {
	a := r.anchor
	if a == nil {
		return 0, false
	}
	if a.ratioUnit != "" {
		f := s.value(metric{r.m.pkg, r.m.bench, a.ratioUnit})
		if !f.ok {
			return 0, false
		}
		if a.pct {
			return 1 + f.v/100, true
		}
		return f.v, true
	}
	subj, base := s.value(r.m), s.value(a.m)
	if !subj.ok || !base.ok || subj.v == 0 || base.v == 0 || rate(r.m.unit) != rate(a.m.unit) {
		return 0, false
	}
	if rate(r.m.unit) {
		return base.v / subj.v, true
	}
	return subj.v / base.v, true
}

// num writes v with about three significant digits and thousands
// separators: 1,684; 50.2; 1.93; 0.0421.
func num(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 100 || v == math.Trunc(v) && a >= 1:
		return group(strconv.FormatFloat(math.Round(v), 'f', 0, 64))
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	case a == 0:
		return "0"
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}

// group puts a comma between each three digits of an integer's text.
func group(s string) string {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// dur writes a duration in nanoseconds in the unit that keeps it short.
func dur(ns float64) string {
	switch a := math.Abs(ns); {
	case a < 1e4:
		return num(ns) + " ns"
	case a < 1e6:
		return num(ns/1e3) + " µs"
	case a < 1e9:
		return num(ns/1e6) + " ms"
	default:
		return num(ns/1e9) + " s"
	}
}

// size writes a size in bytes in B, KiB or MiB.
func size(b float64) string {
	switch a := math.Abs(b); {
	case a < 10<<10:
		return num(b) + " B"
	case a < 1<<20:
		return num(b/(1<<10)) + " KiB"
	default:
		return num(b/(1<<20)) + " MiB"
	}
}

// unitFormats say how a figure reads in a table; %s is the number.
// Units not listed read "<number> <unit>".
var unitFormats = map[string]string{
	"p50-ms":           "p50 %s ms",
	"p99-ms":           "p99 %s ms",
	"MiB-rss":          "RSS %s MiB",
	"MiB-hwm":          "peak RSS %s MiB",
	"MiB-heap":         "Go heap %s MiB",
	"MiB-go":           "Go runtime %s MiB",
	"MiB-ready":        "ready instances %s MiB",
	"MiB-idle":         "%s MiB",
	"KiB/idle-worker":  "%s KiB",
	"loaded":           "%s loaded",
	"compiled-modules": "%s",
	"ms/hall-run":      "%s ms",
	"ms/floor":         "%s ms",
	"hall/floor":       "%s×",
	"s/verify":         "%s s",
	"allocs/op":        "%s allocs/op",
	"overhead-%":       "%s%%",
}

// show writes one figure with its unit, as a table cell reads it.
func show(unit string, v float64) string {
	switch unit {
	case "ns/op":
		return dur(v) + "/op"
	case "ns/iter":
		return dur(v) + "/iter"
	case "B/op":
		return size(v) + "/op"
	case "module-bytes":
		return "module " + size(v)
	}
	if f, ok := unitFormats[unit]; ok {
		return fmt.Sprintf(f, num(v))
	}
	if strings.HasSuffix(unit, "-%") {
		return num(v) + "% " + strings.TrimSuffix(unit, "-%")
	}
	if strings.HasSuffix(unit, "-µs/call") {
		// wcp-run-µs/call, mcp-cpu-µs/call…: the row says which.
		return num(v) + " µs/call"
	}
	return num(v) + " " + unit
}

// missing is what a cell says when the run has no such figure.
const missing = "not in this run"

// cells renders one row: result, anchor, anchor's figure, ratio, budget.
func (s *Set) cells(r row) [6]string {
	var c [6]string
	c[0] = r.label
	if f := s.value(r.m); f.ok {
		parts := []string{show(r.m.unit, f.v)}
		for _, u := range r.extra {
			if e := s.value(metric{r.m.pkg, r.m.bench, u}); e.ok {
				parts = append(parts, show(u, e.v))
			}
		}
		c[1] = strings.Join(parts, ", ")
	} else {
		c[1] = missing
	}
	c[2], c[3], c[4] = "—", "—", "—"
	if a := r.anchor; a != nil {
		c[2] = a.label
		if f := s.value(a.m); f.ok {
			c[3] = show(a.m.unit, f.v)
		} else {
			c[3] = missing
		}
		if x, ok := ratioOf(s, r); ok {
			c[4] = num(x) + "×"
			if a.pct {
				c[4] += fmt.Sprintf(" (%+.1f%%)", (x-1)*100)
			}
		}
	}
	c[5] = r.budget
	if c[5] == "" {
		c[5] = "—"
	}
	return c
}

// table renders an area as a Markdown table.
func (s *Set) table(a area) string {
	var b strings.Builder
	b.WriteString("| | result | anchor (same run) | anchor's result | × anchor | budget |\n")
	b.WriteString("|---|---|---|---|---|---|\n")
	for _, r := range a.rows {
		c := s.cells(r)
		b.WriteString("| " + strings.Join(c[:], " | ") + " |\n")
	}
	return b.String()
}

// A Stamp is what `benchreport stamp` records at the start and at the end
// of a run.
type Stamp struct {
	Time    time.Time
	Go      string
	CPU     string
	Cores   int
	LoadAvg string // the three figures of /proc/loadavg
}

// A Run is one `make bench`: its results, its stamps and the go test
// header lines (cpu:).
type Run struct {
	Set        *Set
	Start, End Stamp
	TestCPU    string   // the "cpu:" line of go test, when it names the CPU differently
	Files      []string // the output files read, in order
}

// environment is one sentence on where and when the run was measured.
func (r Run) environment() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Generated from `make bench` of %s", r.Start.Time.UTC().Format("2006-01-02 15:04 UTC"))
	if !r.End.Time.IsZero() {
		fmt.Fprintf(&b, " (wall time %s)", r.End.Time.Sub(r.Start.Time).Round(time.Second))
	}
	fmt.Fprintf(&b, " with %s on %s", r.Start.Go, r.Start.CPU)
	if r.TestCPU != "" && r.TestCPU != r.Start.CPU {
		fmt.Fprintf(&b, " (go test: %q)", r.TestCPU)
	}
	fmt.Fprintf(&b, ", %d cores; load average (1, 5, 15 min) %s at the start", r.Start.Cores, r.Start.LoadAvg)
	if r.End.LoadAvg != "" {
		fmt.Fprintf(&b, ", %s at the end", r.End.LoadAvg)
	}
	b.WriteString(".")
	if r.loaded() {
		b.WriteString(" The load average was above the number of cores: other work shared the CPUs, so every figure," +
			" anchors included, is slower and noisier than on an idle machine, and ratios of benchmarks run minutes apart are rough.")
	}
	return b.String()
}

// loaded says whether the 1-minute load average at the start or at the
// end exceeded the number of cores.
func (r Run) loaded() bool {
	for _, s := range []Stamp{r.Start, r.End} {
		f := strings.Fields(s.LoadAvg)
		if len(f) == 0 || s.Cores == 0 {
			continue
		}
		if l, err := strconv.ParseFloat(f[0], 64); err == nil && l > float64(s.Cores) {
			return true
		}
	}
	return false
}

// legend says how to read the tables.
const legend = "Each row's anchor was measured in the same run. × anchor is the row's cost in multiples of the anchor's: " +
	"time over the anchor's time, or the anchor's rate over the row's rate (above 1: slower than the anchor); " +
	"where the benchmark alternates the two itself, it is the median of its pairwise ratios."

// Blocks are the README's generated blocks, by id: "run" (the run's
// environment and the legend) and one table per area.
func (r Run) Blocks() map[string]string {
	out := map[string]string{"run": r.environment() + "\n\n" + legend + "\n"}
	for _, a := range areas {
		out[a.id] = r.Set.table(a)
	}
	return out
}

// Report is bin/bench/report.md: the environment, every area's table and
// every result of the run.
func (r Run) Report() string {
	var b strings.Builder
	b.WriteString("# `make bench` report\n\n")
	b.WriteString(r.environment() + "\n\n")
	if !r.End.Time.IsZero() {
		fmt.Fprintf(&b, "- started %s, finished %s\n", r.Start.Time.UTC().Format(time.RFC3339), r.End.Time.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(&b, "- outputs: %s\n\n", strings.Join(r.Files, ", "))
	b.WriteString(legend + "\n")
	for _, a := range areas {
		fmt.Fprintf(&b, "\n## %s\n\n%s", a.title, r.Set.table(a))
	}
	b.WriteString("\n## All results\n\n| package | benchmark | iterations | figures | file |\n|---|---|---|---|---|\n")
	for _, res := range r.Set.All() {
		var figs []string
		for _, u := range sortedUnits(res.Values) {
			figs = append(figs, trimFloat(res.Values[u])+" "+u)
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %s | %s |\n", res.Rel(), strings.TrimPrefix(res.Name, "Benchmark"), res.N, strings.Join(figs, ", "), res.File)
	}
	return b.String()
}

// unitOrder puts the standard figures first, as go test prints them.
func unitOrder(u string) int {
	switch u {
	case "ns/op":
		return 0
	case "MB/s":
		return 1
	case "B/op":
		return 2
	case "allocs/op":
		return 3
	}
	return 4
}

func sortedUnits(values map[string]float64) []string {
	units := make([]string, 0, len(values))
	for u := range values {
		units = append(units, u)
	}
	sort.Slice(units, func(i, j int) bool {
		oi, oj := unitOrder(units[i]), unitOrder(units[j])
		return oi < oj || oi == oj && units[i] < units[j]
	})
	return units
}

func trimFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
