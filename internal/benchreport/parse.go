package main

import (
	"bufio"
	"io"
	"sort"
	"strconv"
	"strings"
)

// module is the import-path prefix that Rel strips: rows name packages
// relative to the module root ("internal/router").
const module = "github.com/wcphall/hall"

// A Result is one benchmark's line of `go test -bench` output: its
// iteration count and every "value unit" pair, the standard ones (ns/op,
// B/op, allocs/op, MB/s) and those reported with b.ReportMetric
// (dispatches/s, p50-ms, hall/floor, overhead-%…).
type Result struct {
	Pkg    string             // import path, from the "pkg:" line before it
	Name   string             // "BenchmarkDecide/allow-1rule", without the -GOMAXPROCS suffix
	Procs  int                // the GOMAXPROCS suffix; 1 when there is none
	N      int64              // iterations
	Values map[string]float64 // unit → value
	File   string             // the output file it came from
}

// Rel is the package path relative to the module ("internal/router"; "." for
// the module root).
func (r Result) Rel() string {
	if r.Pkg == module {
		return "."
	}
	return strings.TrimPrefix(r.Pkg, module+"/")
}

// Parse reads `go test -bench` output. It keeps the results it can read
// and skips everything else (test logs, PASS/ok lines, a failed
// benchmark's output). A benchmark whose name is printed before it runs
// and whose figures come on a later line, because the code under test
// wrote to stdout or stderr in between, is still read: the figures are
// attached to the last name seen. Fixed header lines (goos, goarch, pkg,
// cpu) are returned in hdr; pkg is tracked per result.
func Parse(r io.Reader, file string) (results []Result, hdr map[string]string, err error) {
	hdr = map[string]string{}
	pkg, pending := "", ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		if k, v, ok := headerLine(line); ok {
			hdr[k] = v
			if k == "pkg" {
				pkg, pending = v, ""
			}
			continue
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if strings.HasPrefix(fields[0], "Benchmark") && len(fields[0]) > len("Benchmark") {
			if res, ok := figures(fields[1:]); ok {
				res.Name, res.Procs = splitProcs(fields[0])
				res.Pkg, res.File = pkg, file
				results = append(results, res)
				pending = ""
			} else if !strings.Contains(line, "--- FAIL") {
				pending = fields[0]
			}
			continue
		}
		if pending != "" {
			// The figures of a benchmark whose name was printed before
			// something else wrote to the same stream; testing prints
			// ns/op first, which keeps a log line's numbers from passing
			// for them.
			for i := range fields {
				if res, ok := figures(fields[i:]); ok && len(fields) > i+2 && fields[i+2] == "ns/op" {
					res.Name, res.Procs = splitProcs(pending)
					res.Pkg, res.File = pkg, file
					results = append(results, res)
					pending = ""
					break
				}
			}
		}
		if strings.Contains(line, "--- FAIL") || strings.Contains(line, "--- BENCH") {
			pending = ""
		}
	}
	return results, hdr, sc.Err()
}

// headerLine reads the "key: value" lines go test prints before a
// package's benchmarks.
func headerLine(line string) (key, value string, ok bool) {
	for _, k := range []string{"goos", "goarch", "pkg", "cpu"} {
		if v, found := strings.CutPrefix(line, k+": "); found {
			return k, strings.TrimSpace(v), true
		}
	}
	return "", "", false
}

// figures reads "N value unit value unit…": an iteration count, then at
// least one pair, and nothing else.
func figures(f []string) (Result, bool) {
	if len(f) < 3 || len(f)%2 != 1 {
		return Result{}, false
	}
	n, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil || n <= 0 {
		return Result{}, false
	}
	res := Result{N: n, Values: make(map[string]float64, len(f)/2)}
	for i := 1; i < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return Result{}, false
		}
		res.Values[f[i+1]] = v
	}
	return res, true
}

// splitProcs removes the "-N" GOMAXPROCS suffix testing appends to every
// name when GOMAXPROCS is not 1. A sub-benchmark whose own name ends in
// "-<digits>" would lose it too when GOMAXPROCS is 1; Hall's do not.
func splitProcs(name string) (string, int) {
	i := strings.LastIndexByte(name, '-')
	if i < 0 {
		return name, 1
	}
	p, err := strconv.Atoi(name[i+1:])
	if err != nil || p <= 0 {
		return name, 1
	}
	return name[:i], p
}

// A Set is every result of one `make bench` run, looked up by package and
// name.
type Set struct {
	results []Result
	byKey   map[string][]int
}

// NewSet indexes results.
func NewSet(results []Result) *Set {
	s := &Set{results: results, byKey: map[string][]int{}}
	for i, r := range results {
		k := r.Rel() + " " + r.Name
		s.byKey[k] = append(s.byKey[k], i)
	}
	return s
}

// Get returns the result of the benchmark name of package rel. When the
// run had several (-count), each value is their median.
func (s *Set) Get(rel, name string) (Result, bool) {
	idx := s.byKey[rel+" "+name]
	if len(idx) == 0 {
		return Result{}, false
	}
	if len(idx) == 1 {
		return s.results[idx[0]], true
	}
	first := s.results[idx[0]]
	m := Result{Pkg: first.Pkg, Name: first.Name, Procs: first.Procs, File: first.File, Values: map[string]float64{}}
	samples := map[string][]float64{}
	for _, i := range idx {
		m.N += s.results[i].N
		for u, v := range s.results[i].Values {
			samples[u] = append(samples[u], v)
		}
	}
	for u, vs := range samples {
		m.Values[u] = median(vs)
	}
	return m, true
}

// All returns the results in the order they were read.
func (s *Set) All() []Result { return s.results }

func median(vs []float64) float64 {
	s := append([]float64(nil), vs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
