package trivy

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// ImportOptions are how Import reaches a registry when src is an image
// reference.
type ImportOptions struct {
	// AllowInsecureRegistry reaches the registry over plain HTTP.
	// Loopback registries always are (go-containerregistry's rule).
	AllowInsecureRegistry bool
	// Remote are further options for the registry client (credentials, a
	// transport). Import adds the context itself.
	Remote []remote.Option
}

// Import stores the database src names in dst: an existing directory
// (ImportDir), an existing file (ImportArchive), else an OCI reference to
// Trivy's DB artifact (ImportOCI). A src that looks like a path (absolute,
// ./ or ../, or an archive name) and does not exist is an error, never a
// download.
func Import(ctx context.Context, dst, src string, opts ImportOptions) (Status, error) {
	fi, err := os.Stat(src)
	if err != nil && looksLikePath(src) {
		return Status{}, fmt.Errorf("db import: %w", err)
	}
	if err == nil {
		if fi.IsDir() {
			return ImportDir(ctx, dst, src)
		}
		f, err := os.Open(src)
		if err != nil {
			return Status{}, fmt.Errorf("db import: %w", err)
		}
		defer f.Close()
		return ImportArchive(ctx, dst, f, src)
	}
	var nopts []name.Option
	if opts.AllowInsecureRegistry {
		nopts = append(nopts, name.Insecure)
	}
	ref, err := name.ParseReference(src, nopts...)
	if err != nil {
		return Status{}, fmt.Errorf("db import: %s is neither a file nor an image reference: %w", src, err)
	}
	return ImportOCI(ctx, dst, ref, opts.Remote...)
}

// ImportOCI fetches Trivy's DB artifact at ref (a manifest with config
// MediaTypeDBConfig and a MediaTypeDBLayer layer) and stores its layer in
// dst as ImportArchive does. The layer is verified against its digest as
// it is read; the source recorded is ref's repository at the manifest's
// digest.
func ImportOCI(ctx context.Context, dst string, ref name.Reference, opts ...remote.Option) (Status, error) {
	opts = append(append([]remote.Option(nil), opts...), remote.WithContext(ctx))
	desc, err := remote.Get(ref, opts...)
	if err != nil {
		return Status{}, fmt.Errorf("db import %s: %w", ref, err)
	}
	m, err := v1.ParseManifest(bytes.NewReader(desc.Manifest))
	if err != nil {
		return Status{}, fmt.Errorf("db import %s: not an OCI manifest: %w", ref, err)
	}
	if m.Config.MediaType != MediaTypeDBConfig {
		return Status{}, fmt.Errorf("db import %s: config media type %q, want %q: not a Trivy DB artifact", ref, m.Config.MediaType, MediaTypeDBConfig)
	}
	var layer *v1.Descriptor
	for i := range m.Layers {
		if m.Layers[i].MediaType == MediaTypeDBLayer {
			layer = &m.Layers[i]
			break
		}
	}
	if layer == nil {
		return Status{}, fmt.Errorf("db import %s: no layer of type %s", ref, MediaTypeDBLayer)
	}
	l, err := remote.Layer(ref.Context().Digest(layer.Digest.String()), opts...)
	if err != nil {
		return Status{}, fmt.Errorf("db import %s: %w", ref, err)
	}
	rc, err := l.Compressed() // verified against the digest as it is read
	if err != nil {
		return Status{}, fmt.Errorf("db import %s: %w", ref, err)
	}
	defer rc.Close()
	return ImportArchive(ctx, dst, rc, ref.Context().Name()+"@"+desc.Digest.String())
}

// looksLikePath reports whether src names a file rather than an image
// reference: an absolute or ./ path, or an archive name.
func looksLikePath(src string) bool {
	return strings.HasPrefix(src, "/") || strings.HasPrefix(src, "./") || strings.HasPrefix(src, "../") ||
		strings.HasSuffix(src, ".tar.gz") || strings.HasSuffix(src, ".tgz") || strings.HasSuffix(src, ".tar")
}
