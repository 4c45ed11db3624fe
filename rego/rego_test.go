package rego_test

import (
	"context"
	"io/fs"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"

	"github.com/portcullis-dev/portcullis/rego"
)

// TestPolicyLibrary runs every _test.rego of the embedded library with OPA's
// tester, as `opa test rego/` does.
func TestPolicyLibrary(t *testing.T) {
	modules := map[string]*ast.Module{}
	err := fs.WalkDir(rego.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(rego.FS, path)
		if err != nil {
			return err
		}
		m, err := ast.ParseModuleWithOpts(path, string(b), ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			return err
		}
		modules[path] = m
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	store := inmem.New()
	ch, err := tester.NewRunner().
		SetStore(store).
		SetModules(modules).
		SetCompiler(ast.NewCompiler()).
		EnableTracing(true).
		Run(ctx, modules)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for r := range ch {
		n++
		if !r.Pass() {
			t.Errorf("%s.%s (%s): fail: %v", r.Package, r.Name, r.Location, r.Error)
			for _, l := range topdownLines(r) {
				t.Log(l)
			}
		}
	}
	if n < 30 {
		t.Fatalf("ran %d tests, want the whole library's (at least 30)", n)
	}
}
