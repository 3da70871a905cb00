package host_test

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/host/wcp"
)

// parseDir parses the non-test Go files of dir (one level).
func parseDir(t *testing.T, dir string) []*ast.File {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var files []*ast.File
	for _, m := range matches {
		if strings.HasSuffix(m, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, m, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	return files
}

// The public packages (TestPublicPackages) export no variable a caller could change under the
// Hall (issue 21: wcp.DefaultPreconditions(), wcp.Codes, wcp.DenyCodes and
// sandbox.DefaultLimits were mutable globals). Sentinel errors (ErrX) are
// the exception: comparing them is their use.
func TestNoExportedMutableVariables(t *testing.T) {
	for _, dir := range []string{".", "wcp", "mcp", "server", "../sdk"} {
		for _, f := range parseDir(t, dir) {
			for _, decl := range f.Decls {
				gd, ok := decl.(*ast.GenDecl)
				if !ok || gd.Tok != token.VAR {
					continue
				}
				for _, spec := range gd.Specs {
					for _, name := range spec.(*ast.ValueSpec).Names {
						if name.IsExported() && !strings.HasPrefix(name.Name, "Err") {
							t.Errorf("%s: exported variable %s: make it a function returning a fresh copy (or a constant)", filepath.Join("host", dir), name.Name)
						}
					}
				}
			}
		}
	}
}

// Library code sets no process-wide state: Extism's log level is the
// embedding program's choice (cmd/hall sets it).
func TestLibraryDoesNotSetExtismLogLevel(t *testing.T) {
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "testdata" {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok && sel.Sel.Name == "SetLogLevel" {
				t.Errorf("%s: calls %s.SetLogLevel, a process-wide setting: leave it to the program (cmd/hall)", fset.Position(sel.Pos()), sel.X)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Every coded error of the host packages has the one method signature
// Code() wcp.Code, so that one errors.As finds any of them (issue 21:
// Code() returned a string on some and a wcp.Code on others).
func TestCodedErrorsShareOneSignature(t *testing.T) {
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			fd, ok := decl.(*ast.FuncDecl)
			if !ok || fd.Recv == nil || fd.Name.Name != "Code" {
				continue
			}
			recv := types(fd.Recv.List[0].Type)
			if recv == "RouteDecision" { // a decision's deny code, not an error's
				continue
			}
			res := ""
			if fd.Type.Results != nil && len(fd.Type.Results.List) == 1 {
				res = types(fd.Type.Results.List[0].Type)
			}
			want := "wcp.Code"
			if f.Name.Name == "wcp" {
				want = "Code"
			}
			if len(fd.Type.Params.List) != 0 || res != want {
				t.Errorf("%s: (%s).Code returns %q, want %s", fset.Position(fd.Pos()), recv, res, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// types renders a (receiver or result) type expression.
func types(e ast.Expr) string {
	switch x := e.(type) {
	case *ast.StarExpr:
		return types(x.X)
	case *ast.Ident:
		return x.Name
	case *ast.SelectorExpr:
		return types(x.X) + "." + x.Sel.Name
	}
	return "?"
}

// A refused rules document carries RULES_INVALID, a code of the table
// (issue 21: the code was missing from wcp.Codes and docs/CODES.md).
func TestRulesErrorCodeInTable(t *testing.T) {
	err := error(&host.RulesError{Err: errors.New("rule r is shadowed")})
	c, ok := wcp.CodeOf(err)
	if !ok || c != "RULES_INVALID" {
		t.Fatalf("CodeOf(RulesError) = %q, %v; want RULES_INVALID from the table", c, ok)
	}
	if c.HTTPStatus() != 422 {
		t.Errorf("RULES_INVALID answers %d, want 422", c.HTTPStatus())
	}
}
