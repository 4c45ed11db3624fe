// Package archcheck holds the project's architecture to docs/architecture.md:
// the table there lists, for every package, the project packages it imports
// and the modules it must never link. Its test compares that table with the
// code; [NeverLinks] serves the packages' own dependency tests.
package archcheck

import (
	"bufio"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"testing"
)

// Module is the project's module path.
const Module = "github.com/portcullis-dev/portcullis"

// Row is one package of the table.
type Row struct {
	// Package is the path below Module.
	Package string
	// Imports are the project packages it imports (paths below Module);
	// Any is set for "*".
	Imports []string
	Any     bool
	// NeverLinks are module path prefixes none of its dependencies has.
	NeverLinks []string
	// Line is the row's line in the document.
	Line int
}

const (
	beginMarker = "<!-- archcheck: begin -->"
	endMarker   = "<!-- archcheck: end -->"
)

// ParseTable reads the rows between the archcheck markers of r, top first.
func ParseTable(r io.Reader) ([]Row, error) {
	var rows []Row
	in, ended := false, false
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == beginMarker:
			in = true
			continue
		case line == endMarker:
			in, ended = false, true
			continue
		}
		if !in || !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) != 4 {
			return nil, fmt.Errorf("line %d: a row has 4 cells (package | holds | imports | never links), this one %d", n, len(cells))
		}
		pkgs := codeSpans(cells[0])
		if len(pkgs) != 1 {
			return nil, fmt.Errorf("line %d: the first cell names one package in backquotes", n)
		}
		row := Row{Package: pkgs[0], Line: n, NeverLinks: codeSpans(cells[3])}
		for _, imp := range codeSpans(cells[2]) {
			if imp == "*" {
				row.Any = true
				continue
			}
			row.Imports = append(row.Imports, imp)
		}
		rows = append(rows, row)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if !ended {
		return nil, fmt.Errorf("no table between %q and %q", beginMarker, endMarker)
	}
	return rows, nil
}

// codeSpans returns the `quoted` words of a cell.
func codeSpans(cell string) []string {
	var out []string
	for {
		_, rest, ok := strings.Cut(cell, "`")
		if !ok {
			return out
		}
		span, after, ok := strings.Cut(rest, "`")
		if !ok {
			return out
		}
		out = append(out, strings.TrimSpace(span))
		cell = after
	}
}

// Forbidden reports whether dependency dep matches prefix: a prefix ending
// in "/" matches every package under it, any other only that package.
func Forbidden(dep, prefix string) bool {
	if strings.HasSuffix(prefix, "/") {
		return strings.HasPrefix(dep, prefix)
	}
	return dep == prefix
}

// NeverLinks fails t if pkg (a path below Module, "..." patterns allowed)
// depends, directly or not, on a package matching one of prefixes.
func NeverLinks(t testing.TB, pkg string, prefixes ...string) {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", Module+"/"+pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	deps := strings.Fields(string(out))
	if len(deps) == 0 {
		t.Fatalf("go list -deps %s listed nothing", pkg)
	}
	for _, d := range deps {
		for _, p := range prefixes {
			if Forbidden(d, p) {
				t.Errorf("%s links %s, which it must never link (%s)", pkg, d, p)
			}
		}
	}
}
