package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"charm.land/huh/v2"
	"github.com/urfave/cli/v2"

	"github.com/wcphall/hall/host/wcp"
)

// runWizard asks for the fields of the record the seed's `pyhall build`
// wizard asks for (worker id, capabilities, risk tier, controls, privilege
// envelope, blast radius), each pre-filled from rec, and writes the answers
// back into rec. The record as a whole is validated afterwards, like one
// made from flags; the prompts only check each answer's form.
func runWizard(c *cli.Context, rec *wcp.Record) error {
	accessible := c.Bool("accessible")
	a := newAnswers(rec)

	// In accessible mode an empty line keeps the current value, which the
	// prompt does not show by itself.
	title := func(t, cur string) string {
		if accessible && cur != "" {
			return t + " [" + cur + "]"
		}
		return t
	}
	input := func(t, desc string, v *string, check func(string) error) *huh.Input {
		cur := *v
		return huh.NewInput().Title(title(t, cur)).Description(desc).Value(v).Validate(func(s string) error {
			if strings.TrimSpace(s) == "" {
				return nil // required fields are reported by the record's validation
			}
			return check(s)
		})
	}
	envOpts := make([]huh.Option[string], 0, 4)
	for _, e := range []string{"dev", "stage", "prod", "edge"} {
		envOpts = append(envOpts, huh.NewOption(e, e))
	}
	reversibility := []huh.Option[string]{
		huh.NewOption("reversible", "reversible"),
		huh.NewOption("partially reversible", "partially_reversible"),
		huh.NewOption("irreversible", "irreversible"),
	}

	form := huh.NewForm(
		huh.NewGroup(
			huh.NewNote().Title("Registry record").Description("The enrollment document of the worker (WCP §6). "+
				"Enter keeps a value; lists are comma-separated."),
			input("Worker id", "worker_id, e.g. org.acme.summarizer", &a.workerID, idCheck(wcp.KindWorker)),
			input("Worker species", "worker_species_id, e.g. wrk.doc.summarizer", &a.species, idCheck(wcp.KindSpecies)),
			input("Capabilities", "capabilities, e.g. cap.doc.summarize", &a.capabilities, listCheck(idCheck(wcp.KindCapability))),
			huh.NewSelect[string]().Title(title("Risk tier", a.riskTier)).Value(&a.riskTier).Options(
				huh.NewOptions("low", "medium", "high", "critical")...),
		),
		huh.NewGroup(
			input("Controls", "controls the worker requires and implements, e.g. ctrl.obs.audit-log-append-only", &a.controls, listCheck(idCheck(wcp.KindControl))),
			huh.NewMultiSelect[string]().Title("Allowed environments").Value(&a.envs).Options(envOpts...),
		),
		huh.NewGroup(
			huh.NewNote().Title("Privilege envelope").Description("Everything the worker may touch; the sandbox grants exactly this."),
			input("Secrets", "secret names the worker may ask for", &a.secrets, listCheck(secretCheck)),
			input("Network egress", `"none", or host[:port] entries`, &a.egress, listCheck(egressCheck)),
			input("Writable directories", "absolute paths (filesystem_writes)", &a.writes, listCheck(absCheck)),
			input("Readable directories", "absolute paths (filesystem_reads)", &a.reads, listCheck(absCheck)),
		),
		huh.NewGroup(
			huh.NewNote().Title("Blast radius").Description("How much harm a misbehaving worker can do, 0 (none) to 5."),
			input("Blast radius: data", "0-5", &a.blast[0], levelCheck),
			input("Blast radius: network", "0-5", &a.blast[1], levelCheck),
			input("Blast radius: financial", "0-5", &a.blast[2], levelCheck),
			input("Blast radius: time", "0-5", &a.blast[3], levelCheck),
			huh.NewSelect[string]().Title(title("Reversibility", a.reversibility)).Value(&a.reversibility).Options(reversibility...),
		),
	).WithAccessible(accessible).WithInput(c.App.Reader).WithOutput(promptWriter(c))

	if err := form.RunWithContext(contextOf(c)); err != nil {
		if errors.Is(err, huh.ErrUserAborted) {
			return failf("build cancelled")
		}
		return failf("prompting: %v", err)
	}
	return a.apply(rec)
}

// promptWriter is where the prompts go: the terminal on stderr when there
// is one, so that stdout stays the command's result.
func promptWriter(c *cli.Context) io.Writer {
	if f, ok := c.App.ErrWriter.(*os.File); ok && isTerminal(f) {
		return f
	}
	return c.App.Writer
}

// answers are the wizard's fields as text.
type answers struct {
	workerID, species, capabilities, riskTier string
	controls                                  string
	envs                                      []string
	secrets, egress, writes, reads            string
	blast                                     [4]string
	reversibility                             string
}

func newAnswers(rec *wcp.Record) *answers {
	a := &answers{
		workerID:     rec.WorkerID,
		species:      rec.WorkerSpeciesID,
		capabilities: strings.Join(rec.Capabilities, ", "),
		riskTier:     rec.RiskTier,
		controls:     strings.Join(rec.CurrentlyImplements, ", "),
		envs:         slices.Clone(rec.AllowedEnvironments),
		egress:       "none",
	}
	if a.riskTier == "" {
		a.riskTier = "low"
	}
	if a.controls == "" {
		a.controls = strings.Join(rec.RequiredControls, ", ")
	}
	if len(a.envs) == 0 {
		a.envs = []string{"dev"}
	}
	if e := rec.PrivilegeEnvelope; e != nil {
		a.secrets = strings.Join(e.SecretsAccess, ", ")
		a.writes = strings.Join(e.FilesystemWrites, ", ")
		a.reads = strings.Join(e.FilesystemReads, ", ")
		if e.NetworkEgress.Mode != "" {
			a.egress = e.NetworkEgress.Mode
		} else if len(e.NetworkEgress.Hosts) > 0 {
			a.egress = strings.Join(e.NetworkEgress.Hosts, ", ")
		}
	}
	br := rec.BlastRadius
	if br == nil {
		br = &wcp.BlastRadius{}
	}
	for i, v := range []int{br.Data, br.Network, br.Financial, br.Time} {
		a.blast[i] = strconv.Itoa(v)
	}
	a.reversibility = br.Reversibility
	if a.reversibility == "" {
		a.reversibility = "reversible"
	}
	return a
}

// apply writes the answers into rec, keeping every member the wizard does
// not ask about.
func (a *answers) apply(rec *wcp.Record) error {
	rec.WorkerID = strings.TrimSpace(a.workerID)
	rec.WorkerSpeciesID = strings.TrimSpace(a.species)
	rec.Capabilities = splitList(a.capabilities)
	rec.RiskTier = a.riskTier
	controls := splitList(a.controls)
	rec.RequiredControls, rec.CurrentlyImplements = controls, slices.Clone(controls)
	rec.AllowedEnvironments = a.envs
	if rec.PrivilegeEnvelope == nil {
		rec.PrivilegeEnvelope = &wcp.PrivilegeEnvelope{}
	}
	env := rec.PrivilegeEnvelope
	env.SecretsAccess = orEmpty(splitList(a.secrets))
	env.NetworkEgress = parseEgress(splitList(a.egress))
	env.FilesystemWrites = orEmpty(splitList(a.writes))
	env.FilesystemReads = splitList(a.reads)
	if env.Tools == nil {
		env.Tools = []string{}
	}
	if rec.BlastRadius == nil {
		rec.BlastRadius = &wcp.BlastRadius{}
	}
	br := rec.BlastRadius
	for i, dst := range []*int{&br.Data, &br.Network, &br.Financial, &br.Time} {
		n, err := strconv.Atoi(strings.TrimSpace(a.blast[i]))
		if err != nil {
			return failf("blast radius: %q is not an integer 0-5", a.blast[i])
		}
		*dst = n
	}
	br.Reversibility = a.reversibility
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func idCheck(kind wcp.IDKind) func(string) error {
	return func(s string) error { return wcp.CheckID(kind, strings.TrimSpace(s)) }
}

func listCheck(each func(string) error) func(string) error {
	return func(s string) error {
		for _, f := range splitList(s) {
			if err := each(f); err != nil {
				return err
			}
		}
		return nil
	}
}

func secretCheck(s string) error {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-') {
			return fmt.Errorf("%q: a secret name is letters, digits, '_', '.' and '-'", s)
		}
	}
	return nil
}

func egressCheck(s string) error {
	if s == "none" {
		return nil
	}
	host, port, hasPort := strings.Cut(s, ":")
	if host == "" || strings.Trim(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") != "" {
		return fmt.Errorf("%q: want host or host:port", s)
	}
	if hasPort {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%q: the port must be 1-65535", s)
		}
	}
	return nil
}

func absCheck(s string) error {
	if !strings.HasPrefix(s, "/") {
		return fmt.Errorf("%q: must be an absolute path (the sandbox mounts it at the same path)", s)
	}
	return nil
}

func levelCheck(s string) error {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 0 || n > 5 {
		return fmt.Errorf("%q: enter a whole number from 0 to 5", s)
	}
	return nil
}
