// Command benchreport turns the outputs of `make bench` into tables:
// bin/bench/report.md, and the generated blocks of docs/PERFORMANCE.md's
// "Performance" section. It reads standard `go test -bench` output
// (one file per step of `make bench`, bin/bench/*.txt), sets every figure
// beside its anchor measured in the same run (areas.go) and says where
// and when the run was measured (the stamps `benchreport stamp` writes at
// the start and at the end).
//
//	benchreport stamp bin/bench/start.env
//	benchreport report [-dir bin/bench] [-o bin/bench/report.md]
//	benchreport readme [-dir bin/bench] [-readme docs/PERFORMANCE.md]
//
// It is a command under internal/ because only the Makefile runs it:
// nothing imports it, and it needs no dependency beyond the standard
// library.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

const usage = "usage: benchreport stamp FILE | report [-dir DIR] [-o FILE] | readme [-dir DIR] [-readme FILE]"

func run(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	dir := fs.String("dir", "bin/bench", "the directory of the outputs of `make bench`")
	switch args[0] {
	case "stamp":
		if len(args) != 2 {
			return errors.New(usage)
		}
		return os.WriteFile(args[1], []byte(formatStamp(stampNow())), 0o644)
	case "report":
		out := fs.String("o", "", "where to write the report (default DIR/report.md)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		r, err := load(*dir)
		if err != nil {
			return err
		}
		if *out == "" {
			*out = filepath.Join(*dir, "report.md")
		}
		if err := os.WriteFile(*out, []byte(r.Report()), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "benchreport: %d results from %d files -> %s\n", len(r.Set.All()), len(r.Files), *out)
		return nil
	case "readme":
		readme := fs.String("readme", "docs/PERFORMANCE.md", "the document whose generated blocks are replaced")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		r, err := load(*dir)
		if err != nil {
			return err
		}
		doc, err := os.ReadFile(*readme)
		if err != nil {
			return err
		}
		out, err := splice(string(doc), r.Blocks())
		if err != nil {
			return fmt.Errorf("%s: %w", *readme, err)
		}
		if err := os.WriteFile(*readme, []byte(out), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "benchreport: %s: generated blocks replaced from the run of %s\n", *readme, r.Start.Time.UTC().Format(time.RFC3339))
		return nil
	}
	return errors.New(usage)
}

// load reads a run: every DIR/*.txt in name order, start.env and, if the
// run finished, end.env.
func load(dir string) (Run, error) {
	var r Run
	start, err := readStamp(filepath.Join(dir, "start.env"))
	if err != nil {
		return r, fmt.Errorf("%w (run `make bench` first)", err)
	}
	r.Start = start
	if end, err := readStamp(filepath.Join(dir, "end.env")); err == nil {
		r.End = end
	} else if !errors.Is(err, os.ErrNotExist) {
		return r, err
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.txt"))
	if err != nil {
		return r, err
	}
	sort.Strings(files)
	var all []Result
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return r, err
		}
		res, hdr, err := Parse(fh, filepath.Base(f))
		fh.Close()
		if err != nil {
			return r, fmt.Errorf("%s: %w", f, err)
		}
		if hdr["cpu"] != "" {
			r.TestCPU = hdr["cpu"]
		}
		all = append(all, res...)
		r.Files = append(r.Files, filepath.Base(f))
	}
	if len(all) == 0 {
		return r, fmt.Errorf("%s: no benchmark results in *.txt", dir)
	}
	r.Set = NewSet(all)
	return r, nil
}

// stampNow describes this machine now: the time, the Go toolchain this
// program was built with (the one `make bench` runs: both are $(GO)), the
// CPU model and the number of logical CPUs in /proc/cpuinfo, and the load
// average.
func stampNow() Stamp {
	s := Stamp{Time: time.Now().UTC(), Go: runtime.Version(), Cores: runtime.NumCPU(), CPU: "unknown CPU", LoadAvg: "unknown"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		s.CPU, s.Cores = cpuinfo(string(b), s.Cores)
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			s.LoadAvg = strings.Join(f[:3], " ")
		}
	}
	return s
}

// cpuinfo returns the first "model name" of /proc/cpuinfo and how many
// processors it lists (cores when it lists none).
func cpuinfo(text string, cores int) (model string, n int) {
	model = "unknown CPU"
	for _, line := range strings.Split(text, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "model name":
			if n == 0 || model == "unknown CPU" {
				model = strings.TrimSpace(v)
			}
		case "processor":
			n++
		}
	}
	if n == 0 {
		n = cores
	}
	return model, n
}

func formatStamp(s Stamp) string {
	return fmt.Sprintf("time: %s\ngo: %s\ncpu: %s\ncores: %d\nloadavg: %s\n", s.Time.Format(time.RFC3339Nano), s.Go, s.CPU, s.Cores, s.LoadAvg)
}

func readStamp(path string) (Stamp, error) {
	var s Stamp
	f, err := os.Open(path)
	if err != nil {
		return s, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ": ")
		if !ok {
			continue
		}
		switch k {
		case "time":
			if s.Time, err = time.Parse(time.RFC3339Nano, v); err != nil {
				return s, fmt.Errorf("%s: %w", path, err)
			}
		case "go":
			s.Go = v
		case "cpu":
			s.CPU = v
		case "cores":
			if s.Cores, err = strconv.Atoi(v); err != nil {
				return s, fmt.Errorf("%s: %w", path, err)
			}
		case "loadavg":
			s.LoadAvg = v
		}
	}
	if err := sc.Err(); err != nil {
		return s, err
	}
	if s.Time.IsZero() {
		return s, fmt.Errorf("%s: no time", path)
	}
	return s, nil
}
