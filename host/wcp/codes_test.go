package wcp

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var updateCodes = flag.Bool("update", false, "rewrite docs/CODES.md from Codes")

const codesDoc = "../../docs/CODES.md"

// codesDocText is docs/CODES.md as generated from Codes.
func codesDocText() []byte {
	var b bytes.Buffer
	b.WriteString(`# Hall codes

Every code the Hall emits, from ` + "`wcp.Codes()`" + ` (` + "`host/wcp/codes.go`" + `), the one
table the constants of ` + "`wcp`" + `, ` + "`sandbox`" + `, ` + "`ledger`" + ` and ` + "`server`" + ` are defined from.
Regenerate this file with ` + "`go test ./host/wcp -run TestCodesDoc -update`" + `;
a test fails when it and the table differ.

A program acts on the code, never on the message. Codes never change meaning
once released: outcome codes are written into signed receipts.

| kind | where it appears |
|---|---|
| ` + "`deny`" + ` | ` + "`deny_reason_if_denied.code`" + ` of a RouteDecision (WCP §4.2); the names are WCP's, verbatim |
| ` + "`outcome`" + ` | the outcome of a dispatch whose worker did not succeed, recorded in its receipt, and ` + "`error.code`" + ` of ` + "`POST /wcp/run`" + ` |
| ` + "`ledger`" + ` | errors of the evidence ledger (` + "`ledger.Err*`" + `, whose ` + "`Code()`" + ` returns the code) |
| ` + "`enroll`" + ` | errors of enrolling a worker and of the enrolled registry |
| ` + "`http`" + ` | ` + "`error.code`" + ` of the HTTP API (docs/HTTP.md) |
| ` + "`guest`" + ` | the ` + "`{\"error\": {\"code\"}}`" + ` a host function returns to the guest (docs/ABI.md); never an HTTP answer |

The status is the one the HTTP API answers with when the code is the error
(– for guest codes).

| code | kind | status | meaning |
|---|---|---|---|
`)
	for _, info := range Codes() {
		status := "–"
		if info.HTTPStatus != 0 {
			status = strconv.Itoa(info.HTTPStatus)
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", info.Code, info.Kind, status, info.Meaning)
	}
	return b.Bytes()
}

var codeRow = regexp.MustCompile("(?m)^\\| `([^`]*)` \\| ([a-z]+) \\| ([0-9]+|–) \\| (.*) \\|$")

// TestCodesDoc checks that docs/CODES.md lists every code of Codes, with
// its kind, status and meaning, in table order, and nothing else.
func TestCodesDoc(t *testing.T) {
	if *updateCodes {
		if err := os.WriteFile(codesDoc, codesDocText(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(codesDoc)
	if err != nil {
		t.Fatal(err)
	}
	inDoc := map[Code]bool{}
	var order []Code
	for _, m := range codeRow.FindAllStringSubmatch(string(b), -1) {
		c := Code(m[1])
		inDoc[c] = true
		order = append(order, c)
		info, ok := c.Info()
		if !ok {
			t.Errorf("docs/CODES.md lists %s, which is not in wcp.Codes", c)
			continue
		}
		status := "–"
		if info.HTTPStatus != 0 {
			status = strconv.Itoa(info.HTTPStatus)
		}
		if m[2] != string(info.Kind) || m[3] != status || m[4] != info.Meaning {
			t.Errorf("docs/CODES.md row of %s is %q, want kind %s, status %s, meaning %q", c, m[0], info.Kind, status, info.Meaning)
		}
	}
	for _, info := range Codes() {
		if !inDoc[info.Code] {
			t.Errorf("docs/CODES.md lacks %s", info.Code)
		}
	}
	if !t.Failed() && len(order) == len(Codes()) {
		for i, c := range order {
			if Codes()[i].Code != c {
				t.Fatalf("docs/CODES.md row %d is %s, want %s (table order)", i+1, c, Codes()[i].Code)
			}
		}
	}
	if !bytes.Equal(b, codesDocText()) && !t.Failed() {
		t.Error("docs/CODES.md differs from its generated text; run go test ./host/wcp -run TestCodesDoc -update")
	}
}

var upperSnake = regexp.MustCompile(`^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$`)

// TestCodesTable checks the table itself: every code unique and upper-case
// snake, a known kind, a meaning, an HTTP status for everything a caller
// can receive, and the deny rows equal to DenyCodes.
func TestCodesTable(t *testing.T) {
	kinds := map[Kind]bool{KindDeny: true, KindOutcome: true, KindLedger: true, KindEnroll: true, KindHTTP: true, KindGuest: true}
	seen := map[Code]bool{}
	deny := 0
	for _, info := range Codes() {
		t.Run(string(info.Code), func(t *testing.T) {
			if seen[info.Code] {
				t.Error("code appears twice")
			}
			seen[info.Code] = true
			if !upperSnake.MatchString(string(info.Code)) {
				t.Error("not upper-case snake")
			}
			if !kinds[info.Kind] {
				t.Errorf("unknown kind %q", info.Kind)
			}
			if strings.HasPrefix(string(info.Code), "DENY_") != (info.Kind == KindDeny) {
				t.Error("DENY_ codes, and only they, are deny codes")
			}
			if info.Meaning == "" || strings.Contains(info.Meaning, "|") {
				t.Error("meaning empty or breaks the docs table")
			}
			if (info.HTTPStatus == 0) != (info.Kind == KindGuest) || (info.HTTPStatus != 0 && (info.HTTPStatus < 400 || info.HTTPStatus > 599)) {
				t.Errorf("HTTP status %d", info.HTTPStatus)
			}
			if got, ok := info.Code.Info(); !ok || got != info {
				t.Errorf("Info() = %+v, %v", got, ok)
			}
			if info.Code.HTTPStatus() != info.HTTPStatus {
				t.Errorf("HTTPStatus() = %d", info.Code.HTTPStatus())
			}
		})
		if info.Kind == KindDeny {
			if deny >= len(DenyCodes()) || DenyCodes()[deny] != (DenyCodeInfo{DenyCode(info.Code), info.HTTPStatus, info.Meaning}) {
				t.Errorf("DenyCodes()[%d] is not the deny row %s", deny, info.Code)
			}
			deny++
		}
	}
	if deny != len(DenyCodes()) {
		t.Errorf("%d deny rows, %d DenyCodes", deny, len(DenyCodes()))
	}
	if _, ok := Code("NO_SUCH_CODE").Info(); ok || Code("NO_SUCH_CODE").HTTPStatus() != http.StatusInternalServerError {
		t.Error("an unknown code must have no row and status 500")
	}
	for _, c := range []Code{CodeCancelled, CodeHallError, CodeRecordMismatch, CodeRecordTampered, CodeHallClosed, CodeRulesInvalid, CodePreconditionFailed} {
		if _, ok := c.Info(); !ok {
			t.Errorf("%s has no row", c)
		}
	}
}

type codedErr struct{ c Code }

func (e codedErr) Error() string { return "coded " + string(e.c) }
func (e codedErr) Code() Code    { return e.c }

func TestCodeOf(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want Code
		ok   bool
	}{
		{"code, wrapped", fmt.Errorf("run: %w", codedErr{CodeHallSaturated}), CodeHallSaturated, true},
		{"code in the table, wrapped twice", fmt.Errorf("x: %w", fmt.Errorf("y: %w", codedErr{CodeMemoryBudget})), CodeMemoryBudget, true},
		{"code not in the table", codedErr{"NOT_A_CODE"}, "", false},
		{"empty code", codedErr{}, "", false},
		{"no code", errors.New("plain"), "", false},
		{"nil", nil, "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := CodeOf(tc.err)
			if got != tc.want || ok != tc.ok {
				t.Fatalf("CodeOf = %q, %v; want %q, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

// The tables and defaults the package hands out are copies: changing
// them changes no code, status, value set or default anywhere else
// (issue 21: Codes, DenyCodes and DefaultPreconditions were mutable
// exported variables).
func TestTablesAreCopies(t *testing.T) {
	c := Codes()
	status := CodeHallClosed.HTTPStatus()
	for i := range c {
		c[i].HTTPStatus, c[i].Meaning = 200, "changed"
	}
	if CodeHallClosed.HTTPStatus() != status || Codes()[0].Meaning == "changed" {
		t.Error("changing the slice Codes returned changed the table")
	}
	d := DenyCodes()
	d[0].Status = 200
	if DenyCodes()[0].Status == 200 || Code(d[0].Code).HTTPStatus() == 200 {
		t.Error("changing the slice DenyCodes returned changed the table")
	}
	p := DefaultPreconditions()
	p.MustHaveCorrelationID = false
	if !DefaultPreconditions().MustHaveCorrelationID {
		t.Error("DefaultPreconditions changed")
	}
	for _, set := range [][]string{Envs(), DataLabels(), TenantRisks(), QoSClasses()} {
		set[0] = "changed"
	}
	in := RouteInput{CapabilityID: "cap.x", Env: "changed", DataLabel: "changed", TenantRisk: "changed", QoSClass: "changed", TenantID: "t", CorrelationID: "c"}
	if err := in.Validate(); err == nil {
		t.Error("a value set widened by changing the slice its function returned")
	}
}
