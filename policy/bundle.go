package policy

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	opabundle "github.com/open-policy-agent/opa/v1/bundle"

	"github.com/portcullis-dev/portcullis/rego"
)

// Bundle is a set of Rego modules and the data they read, ready to compile.
// Test modules (_test.rego) are left out: they are for `portcullis policy
// test`, not for decisions.
type Bundle struct {
	// Source says where the bundle came from, for messages and logs.
	Source string
	// Modules are the policy files, sorted by path.
	Modules []Module
	// Data is the bundle's data document (data.json and data.yaml files).
	Data map[string]any
}

// Module is one Rego file.
type Module struct {
	Path string
	Raw  []byte
}

// Revision is the bundle's digest, "sha256:<hex>": a hash of its module
// paths and contents, sorted by path, and of its data in canonical JSON.
// Two bundles with the same revision decide alike.
func (b *Bundle) Revision() (string, error) {
	h := sha256.New()
	for _, m := range b.Modules {
		fmt.Fprintf(h, "module %d %s\n%d\n", len(m.Path), m.Path, len(m.Raw))
		h.Write(m.Raw)
	}
	d := b.Data
	if d == nil {
		d = map[string]any{}
	}
	data, err := json.Marshal(d) // map keys are sorted
	if err != nil {
		return "", fmt.Errorf("policy: bundle %s: data: %w", b.Source, err)
	}
	fmt.Fprintf(h, "data %d\n", len(data))
	h.Write(data)
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

func isTest(p string) bool { return strings.HasSuffix(p, "_test.rego") }

// fromOPA converts a bundle read by OPA's bundle reader.
func fromOPA(b opabundle.Bundle, source string) *Bundle {
	out := &Bundle{Source: source, Data: b.Data}
	for _, m := range b.Modules {
		p := strings.TrimPrefix(m.Path, "/")
		if !isTest(p) {
			out.Modules = append(out.Modules, Module{Path: p, Raw: m.Raw})
		}
	}
	slices.SortFunc(out.Modules, func(a, b Module) int { return strings.Compare(a.Path, b.Path) })
	return out
}

func reader(l opabundle.DirectoryLoader) *opabundle.Reader {
	// OPA's own bundle signatures are not checked: a bundle is trusted by
	// where it comes from (a directory the operator controls, or an OCI
	// artifact of this registry, which the gate verifies like any image).
	return opabundle.NewCustomReader(l).WithRegoVersion(ast.RegoV1).WithSkipBundleVerification(true)
}

// LoadDir reads a bundle from a directory in OPA's bundle layout: .rego
// files anywhere, data.json or data.yaml files whose directory is their
// path in data, and an optional .manifest.
func LoadDir(dir string) (*Bundle, error) {
	if fi, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("policy: bundle: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("policy: bundle %s: not a directory", dir)
	}
	b, err := reader(opabundle.NewDirectoryLoader(dir)).Read()
	if err != nil {
		return nil, fmt.Errorf("policy: bundle %s: %w", dir, err)
	}
	return fromOPA(b, dir), nil
}

// LoadTarball reads a bundle from a gzipped tarball in OPA's bundle format
// (as `opa build` writes). source names it in messages.
func LoadTarball(r io.Reader, source string) (*Bundle, error) {
	raw, err := io.ReadAll(io.LimitReader(r, MaxBundleBytes+1))
	if err != nil {
		return nil, fmt.Errorf("policy: bundle %s: %w", source, err)
	}
	if len(raw) > MaxBundleBytes {
		return nil, fmt.Errorf("policy: bundle %s: more than %d bytes compressed", source, MaxBundleBytes)
	}
	if err := checkUncompressed(raw); err != nil {
		return nil, fmt.Errorf("policy: bundle %s: %w", source, err)
	}
	b, err := reader(opabundle.NewTarballLoaderWithBaseURL(bytes.NewReader(raw), "")).WithSizeLimitBytes(MaxBundleBytes).Read()
	if err != nil {
		return nil, fmt.Errorf("policy: bundle %s: %w", source, err)
	}
	return fromOPA(b, source), nil
}

// MaxBundleBytes bounds a bundle tarball, compressed and uncompressed
// (tar headers included): a bundle is policy and data, held in memory
// whole, and a small gzip stream can inflate a thousandfold.
const MaxBundleBytes = 64 << 20

// checkUncompressed reads the gzip stream raw through, without keeping
// it, and refuses one that inflates beyond MaxBundleBytes.
func checkUncompressed(raw []byte) error {
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	n, err := io.Copy(io.Discard, io.LimitReader(zr, MaxBundleBytes+1))
	if err != nil {
		return err
	}
	if n > MaxBundleBytes {
		return fmt.Errorf("more than %d bytes uncompressed", MaxBundleBytes)
	}
	return nil
}

// LoadFS reads the .rego files of fsys (no data) as a bundle.
func LoadFS(fsys fs.FS, source string) (*Bundle, error) {
	out := &Bundle{Source: source}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path.Ext(p) != ".rego" || isTest(p) {
			return err
		}
		raw, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		out.Modules = append(out.Modules, Module{Path: p, Raw: raw})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("policy: bundle %s: %w", source, err)
	}
	return out, nil
}

// LibrarySource is the Source of the built-in library's bundle, and the
// prefix of its module paths in a merged bundle.
const LibrarySource = "portcullis-library"

// Library returns the built-in Rego library (package rego) as a bundle,
// with its module paths under "portcullis-library/".
func Library() (*Bundle, error) {
	b, err := LoadFS(rego.FS, LibrarySource)
	if err != nil {
		return nil, err
	}
	for i := range b.Modules {
		b.Modules[i].Path = LibrarySource + "/" + b.Modules[i].Path
	}
	return b, nil
}

// WithLibrary returns b with the library's modules added. A library module
// whose package b also declares is left out, so that a bundle can replace a
// library policy (or carry its own copy of the library). b's data is kept.
func WithLibrary(lib, b *Bundle) (*Bundle, error) {
	own := map[string]bool{}
	for _, m := range b.Modules {
		pkg, err := packageOf(m)
		if err != nil {
			return nil, fmt.Errorf("policy: bundle %s: %w", b.Source, err)
		}
		own[pkg] = true
	}
	out := &Bundle{Source: b.Source, Data: b.Data, Modules: slices.Clone(b.Modules)}
	for _, m := range lib.Modules {
		pkg, err := packageOf(m)
		if err != nil {
			return nil, fmt.Errorf("policy: bundle %s: %w", lib.Source, err)
		}
		if !own[pkg] {
			out.Modules = append(out.Modules, m)
		}
	}
	slices.SortFunc(out.Modules, func(a, b Module) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

// packageOf returns the package path of a module, e.g. "data.portcullis".
func packageOf(m Module) (string, error) {
	mod, err := parseModule(m)
	if err != nil {
		return "", err
	}
	return mod.Package.Path.String(), nil
}

func parseModule(m Module) (*ast.Module, error) {
	return ast.ParseModuleWithOpts(m.Path, string(m.Raw), ast.ParserOptions{RegoVersion: ast.RegoV1})
}
