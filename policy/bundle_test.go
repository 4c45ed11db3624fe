package policy

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const denyAll = "package portcullis\n\ndeny contains \"everything is denied\" if true\n"

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for p, s := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func tarball(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for p, s := range files {
		if err := tw.WriteHeader(&tar.Header{Name: "/" + p, Mode: 0o644, Size: int64(len(s)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var sampleFiles = map[string]string{
	"prod/policy.rego":      "package portcullis.policies.custom\n\ndeny contains msg if {\n\tinput.target.registry.namespace in data.frozen\n\tmsg := \"namespace is frozen\"\n}\n",
	"prod/policy_test.rego": "package portcullis.policies.custom_test\n\ntest_x if true\n",
	"data.json":             `{"frozen": ["prod"]}`,
}

type fakeImages map[string]v1.Image

func (f fakeImages) Image(_ context.Context, ref string) (v1.Image, error) {
	if img, ok := f[ref]; ok {
		return img, nil
	}
	return nil, errors.New("MANIFEST_UNKNOWN")
}

// TestPolicyBundleSources loads the same bundle from a directory, a tarball
// and an OCI artifact: same modules, data and revision.
func TestPolicyBundleSources(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	writeFiles(t, filepath.Join(dir, "bundle"), sampleFiles)
	tgz := tarball(t, sampleFiles)
	if err := os.WriteFile(filepath.Join(dir, "bundle.tar.gz"), tgz, 0o644); err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, static.NewLayer(tgz, MediaTypeBundleLayer))
	if err != nil {
		t.Fatal(err)
	}
	images := fakeImages{"registry.example.com/policies/prod:v1": img}

	var revisions []string
	for _, loc := range []string{filepath.Join(dir, "bundle"), filepath.Join(dir, "bundle.tar.gz"), "oci://registry.example.com/policies/prod:v1"} {
		b, err := Load(ctx, loc, images)
		if err != nil {
			t.Fatalf("%s: %v", loc, err)
		}
		if len(b.Modules) != 1 || b.Modules[0].Path != "prod/policy.rego" {
			t.Errorf("%s: modules %v, want prod/policy.rego alone (tests left out)", loc, b.Modules)
		}
		r, err := b.Revision()
		if err != nil {
			t.Fatal(err)
		}
		revisions = append(revisions, r)

		lib, _ := Library()
		merged, err := WithLibrary(lib, b)
		if err != nil {
			t.Fatal(err)
		}
		e, err := NewEngine(ctx, merged)
		if err != nil {
			t.Fatalf("%s: %v", loc, err)
		}
		d, err := e.Eval(ctx, testInput())
		if err != nil || d.Allow || len(d.Deny) != 1 || d.Deny[0].Msg != "namespace is frozen" {
			t.Errorf("%s: decision %+v, err %v", loc, d, err)
		}
	}
	if revisions[0] != revisions[1] || revisions[1] != revisions[2] {
		t.Errorf("revisions differ by source: %v", revisions)
	}
}

func TestPolicyBundleLoadErrors(t *testing.T) {
	ctx := context.Background()
	noBundle, _ := mutate.AppendLayers(empty.Image, static.NewLayer([]byte("x"), types.DockerLayer))
	images := fakeImages{"r/none:1": noBundle}
	tests := []struct {
		loc, want string
	}{
		{"oci://r/missing:1", "MANIFEST_UNKNOWN"},
		{"oci://r/none:1", "no layer of media type"},
		{filepath.Join(t.TempDir(), "nothing"), "no such file"},
	}
	for _, tt := range tests {
		if _, err := Load(ctx, tt.loc, images); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Load(%s) = %v, want an error saying %q", tt.loc, err, tt.want)
		}
	}
	if _, err := Load(ctx, "oci://r/none:1", nil); err == nil {
		t.Error("oci:// without an image source loaded")
	}
}

func TestPolicyBundleReplacesLibraryPackage(t *testing.T) {
	lib, err := Library()
	if err != nil {
		t.Fatal(err)
	}
	own := bundleOf(map[string]string{"sig.rego": "package portcullis.policies.signatures\n\ndeny contains \"own signature rule\" if true\n"})
	merged, err := WithLibrary(lib, own)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range merged.Modules {
		if m.Path == LibrarySource+"/signatures.rego" {
			t.Error("library signatures.rego kept although the bundle declares its package")
		}
	}
	e, err := NewEngine(context.Background(), merged)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := e.Eval(context.Background(), testInput())
	if len(d.Deny) != 1 || d.Deny[0].Msg != "own signature rule" {
		t.Errorf("deny = %+v", d.Deny)
	}
}
