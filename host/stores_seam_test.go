package host_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// storeImplementations are the only places that may open state directly:
// the engines that implement the stores, and the one file of host that
// opens the SQLite-and-files default (issue 21, "one storage seam").
var storeImplementations = []string{
	"internal/ledger/",
	"internal/auth/",
	"internal/artifact/",
	"host/stores.go",
	// The PostgreSQL backend (issue 22): its dialect layer, the file of
	// host that opens it, and the test harness that starts a server.
	"internal/pgsql/",
	"internal/pgtest/",
	"internal/pgsource/",
	"host/snapsource_postgres.go",
	"host/stores_postgres.go",
}

// storeOpeners are the engine constructors that open stored state.
var storeOpeners = map[string][]string{
	"github.com/wcphall/hall/internal/ledger":   {"Open", "OpenPostgres"},
	"github.com/wcphall/hall/internal/auth":     {"Open", "OpenPostgres"},
	"github.com/wcphall/hall/internal/artifact": {"Open", "OpenPostgres"},
}

// storeDrivers are imports that reach a database directly.
var storeDrivers = []string{"database/sql", "modernc.org/sqlite", "github.com/mattn/go-sqlite3",
	"github.com/jackc/pgx/v5", "github.com/jackc/pgx/v5/stdlib", "github.com/jackc/pgx/v5/pgxpool", "github.com/wcphall/hall/internal/pgsql"}

// TestStateOnlyThroughStores checks, over every non-test Go file of the
// module, that nothing but the store implementations imports a database
// driver or calls an engine's Open: the CLI and the server reach the
// state through host's Stores, so a second backend behind the seam is
// used by all of them.
func TestStateOnlyThroughStores(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var found []string
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if name := d.Name(); rel != "." && (strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(rel, ".go") || strings.HasSuffix(rel, "_test.go") {
			return nil
		}
		for _, p := range storeImplementations {
			if strings.HasPrefix(rel, p) {
				return nil
			}
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		names := map[string]string{} // local name -> import path, for storeOpeners
		for _, im := range f.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			for _, drv := range storeDrivers {
				if p == drv {
					found = append(found, rel+": imports "+p)
				}
			}
			if _, ok := storeOpeners[p]; ok {
				name := p[strings.LastIndex(p, "/")+1:]
				if im.Name != nil {
					name = im.Name.Name
				}
				names[name] = p
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			id, ok := sel.X.(*ast.Ident)
			if !ok {
				return true
			}
			p, ok := names[id.Name]
			if !ok {
				return true
			}
			for _, fn := range storeOpeners[p] {
				if sel.Sel.Name == fn {
					found = append(found, fset.Position(sel.Pos()).String()[len(root)+1:]+": calls "+id.Name+"."+fn)
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range found {
		t.Errorf("%s: open state through host (OpenLocalStores, OpenLocalEvidence, OpenLocalTokens, OpenLocalArtifacts) instead", f)
	}
}
