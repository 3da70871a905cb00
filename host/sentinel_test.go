package host_test

import (
	"context"
	"errors"
	"go/ast"
	"go/token"
	"reflect"
	"strings"
	"testing"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/host/wcp"
)

// hostSentinels are the exported sentinel errors of package host, by name.
var hostSentinels = map[string]error{
	"ErrApprovalNotFound":   host.ErrApprovalNotFound,
	"ErrArtifactNotFound":   host.ErrArtifactNotFound,
	"ErrClosed":             host.ErrClosed,
	"ErrInvalidToken":       host.ErrInvalidToken,
	"ErrNoEvidence":         host.ErrNoEvidence,
	"ErrStoreUnavailable":   host.ErrStoreUnavailable,
	"ErrOffline":            host.ErrOffline,
	"ErrPreconditionFailed": host.ErrPreconditionFailed,
	"ErrReceiptNotFound":    host.ErrReceiptNotFound,
	"ErrTokenNotFound":      host.ErrTokenNotFound,
	"ErrUnknownArtifact":    host.ErrUnknownArtifact,
}

// A sentinel error is compared, never changed: none is a pointer to a
// struct with exported fields an embedder could set (issue 21:
// host.ErrApprovalNotFound was a *ApprovalError, so setting its Code
// changed what errors.Is matched for every caller in the process).
func TestSentinelErrorsCannotBeChanged(t *testing.T) {
	declared := map[string]bool{}
	for _, f := range parseDir(t, ".") {
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || (gd.Tok != token.VAR && gd.Tok != token.CONST) {
				continue
			}
			for _, spec := range gd.Specs {
				for _, name := range spec.(*ast.ValueSpec).Names {
					if name.IsExported() && strings.HasPrefix(name.Name, "Err") {
						declared[name.Name] = true
					}
				}
			}
		}
	}
	for name := range declared {
		if _, ok := hostSentinels[name]; !ok {
			t.Errorf("host.%s is not in hostSentinels: add it, so that this test checks it", name)
		}
	}
	for name, err := range hostSentinels {
		v := reflect.ValueOf(err)
		if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
			continue
		}
		st := v.Elem().Type()
		for i := range st.NumField() {
			if st.Field(i).IsExported() {
				t.Errorf("host.%s is a *%s whose field %s an embedder can set: make the sentinel a constant or hide its fields", name, st.Name(), st.Field(i).Name)
			}
		}
	}
}

// errors.Is(err, host.ErrApprovalNotFound) finds every refusal of an
// unknown or malformed approval id, and nothing else.
func TestApprovalNotFoundMatches(t *testing.T) {
	h := newHall(t, host.Options{})
	ctx := context.Background()
	for _, id := range []string{"apr_0123456789abcdef0123456789abcdef", "apr_bad"} {
		_, err := h.Approval(ctx, id)
		if !errors.Is(err, host.ErrApprovalNotFound) {
			t.Errorf("Approval(%q): %v, want errors.Is ErrApprovalNotFound", id, err)
		}
		var ae *host.ApprovalError
		if !errors.As(err, &ae) || ae.Code != wcp.CodeApprovalNotFound {
			t.Errorf("Approval(%q): %v, want an *ApprovalError of code %s", id, err, wcp.CodeApprovalNotFound)
		}
	}
	if errors.Is(&host.ApprovalError{Code: wcp.CodeApprovalConflict}, host.ErrApprovalNotFound) {
		t.Error("ErrApprovalNotFound matches an error of another code")
	}
	if c, ok := wcp.CodeOf(host.ErrApprovalNotFound); !ok || c != wcp.CodeApprovalNotFound {
		t.Errorf("the sentinel's own code: %q", c)
	}
}
