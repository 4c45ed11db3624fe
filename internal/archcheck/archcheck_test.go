package archcheck

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestArchitecture holds docs/architecture.md's table to the code.
func TestArchitecture(t *testing.T) {
	doc := filepath.Join("..", "..", "docs", "architecture.md")
	f, err := os.Open(doc)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := ParseTable(f)
	if err != nil {
		t.Fatalf("%s: %v", doc, err)
	}
	pkgs := listPackages(t)

	position := map[string]int{}
	for i, r := range rows {
		if _, dup := position[r.Package]; dup {
			t.Errorf("%s:%d: %s has two rows", doc, r.Line, r.Package)
		}
		position[r.Package] = i
	}
	for _, r := range rows {
		p, ok := pkgs[r.Package]
		if !ok {
			t.Errorf("%s:%d: %s is not a package of the module: remove its row", doc, r.Line, r.Package)
			continue
		}
		p.documented = true
		if !r.Any {
			for _, imp := range p.imports {
				if !slices.Contains(r.Imports, imp) {
					t.Errorf("%s imports %s, which its row (%s:%d) does not list: add it there, or drop the import", r.Package, imp, doc, r.Line)
				}
			}
			for _, imp := range r.Imports {
				if !slices.Contains(p.imports, imp) {
					t.Errorf("%s:%d: the row lists %s -> %s, which the code does not import: remove it", doc, r.Line, r.Package, imp)
				}
			}
		}
		for _, imp := range p.imports {
			if j, ok := position[imp]; ok && j <= position[r.Package] {
				t.Errorf("%s imports %s, listed above it (%s:%d): imports run down the table; move the row or the code", r.Package, imp, doc, rows[j].Line)
			}
		}
		for _, d := range p.deps {
			for _, prefix := range r.NeverLinks {
				if Forbidden(d, prefix) {
					t.Errorf("%s links %s, which its row (%s:%d) says it never links", r.Package, d, doc, r.Line)
				}
			}
		}
	}
	for name, p := range pkgs {
		if !p.documented {
			t.Errorf("package %s has no row in %s: add one where its imports put it", name, doc)
		}
	}
}

type pkgInfo struct {
	imports, deps []string // project imports (below Module); every dependency
	documented    bool
}

// listPackages lists the module's packages with their non-test imports.
func listPackages(t *testing.T) map[string]*pkgInfo {
	t.Helper()
	trackSources(t, filepath.Join("..", ".."))
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}|{{join .Imports " "}}|{{join .Deps " "}}`, Module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	pkgs := map[string]*pkgInfo{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		path, rest, _ := strings.Cut(line, "|")
		imports, deps, _ := strings.Cut(rest, "|")
		name, ok := below(path)
		if !ok {
			continue
		}
		p := &pkgInfo{deps: strings.Fields(deps)}
		for _, imp := range strings.Fields(imports) {
			if n, ok := below(imp); ok && n != name {
				p.imports = append(p.imports, n)
			}
		}
		pkgs[name] = p
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found %d packages", len(pkgs))
	}
	return pkgs
}

// trackSources reads the module's directories, go.mod and non-test Go
// files, so that go test's cache, which records the files a test opens
// but not what a `go list` child reads, reruns this test when an import,
// a package or a dependency changes instead of replaying a stale pass.
func trackSources(t *testing.T, root string) {
	t.Helper()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir() && path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata"):
			return filepath.SkipDir
		case d.IsDir(), !(d.Name() == "go.mod" || strings.HasSuffix(d.Name(), ".go") && !strings.HasSuffix(d.Name(), "_test.go")):
			return nil
		}
		_, err = os.ReadFile(path)
		return err
	})
	if err != nil {
		t.Fatalf("reading the module's sources: %v", err)
	}
}

func below(path string) (string, bool) {
	return strings.CutPrefix(path, Module+"/")
}

func TestParseTable(t *testing.T) {
	t.Parallel()
	doc := "intro `x` |\n" + beginMarker + "\n| package | holds | imports | never links |\n|---|---|---|---|\n" +
		"| `cmd/a` | wiring | `*` | |\n| `b` | b things | `c`, `d` | `net/http`, `github.com/x/` |\n| `c` | | | |\n" + endMarker + "\n| `z` | after | | |\n"
	rows, err := ParseTable(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 {
		t.Fatalf("got %d rows, want 3: %+v", len(rows), rows)
	}
	if !rows[0].Any || rows[0].Package != "cmd/a" {
		t.Errorf("row 0 = %+v", rows[0])
	}
	if !slices.Equal(rows[1].Imports, []string{"c", "d"}) || !slices.Equal(rows[1].NeverLinks, []string{"net/http", "github.com/x/"}) || rows[1].Line != 6 {
		t.Errorf("row 1 = %+v", rows[1])
	}
	if _, err := ParseTable(strings.NewReader(beginMarker + "\n| `a` | b |\n" + endMarker)); err == nil {
		t.Error("a row of two cells parsed")
	}
	if _, err := ParseTable(strings.NewReader("| `a` | | | |\n")); err == nil {
		t.Error("a document without markers parsed")
	}
}

func TestForbidden(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		dep, prefix string
		want        bool
	}{
		{"net/http", "net/http", true},
		{"net/http/httptest", "net/http", false},
		{"net/httpx", "net/http", false},
		{"github.com/sigstore/cosign/v2/pkg", "github.com/sigstore/", true},
		{"github.com/sigstorex/a", "github.com/sigstore/", false},
	} {
		if got := Forbidden(tc.dep, tc.prefix); got != tc.want {
			t.Errorf("Forbidden(%q, %q) = %v, want %v", tc.dep, tc.prefix, got, tc.want)
		}
	}
}
