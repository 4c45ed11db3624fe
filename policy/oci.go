package policy

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Media types of a policy bundle stored as an OCI artifact. OPA's own OCI
// downloader (services of type "oci"; bundles pushed with `opa build` then
// `oras push`, docs/policies.md) takes the layer of media type
// application/vnd.oci.image.layer.v1.tar+gzip that holds the `opa build`
// tarball, whatever the config (OPA's docs push {} as
// application/vnd.oci.image.config.v1+json). The openpolicyagent media
// types are those of the `policy` CLI (opcr.io), also accepted.
const (
	MediaTypeBundleLayer    = "application/vnd.openpolicyagent.bundle.layer.v1+tar+gzip"
	MediaTypeBundleConfig   = "application/vnd.openpolicyagent.config.v1+json"
	mediaTypeGenericTarGzip = types.OCILayer
)

// ImageSource reads OCI images by reference, e.g. from this registry. It
// keeps bundle loading apart from registry I/O.
type ImageSource interface {
	Image(ctx context.Context, ref string) (v1.Image, error)
}

// bundleLayer returns the one layer of img that holds a bundle.
func bundleLayer(img v1.Image, source string) (v1.Layer, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("policy: bundle %s: layers: %w", source, err)
	}
	var found v1.Layer
	for _, l := range layers {
		mt, err := l.MediaType()
		if err != nil {
			return nil, fmt.Errorf("policy: bundle %s: layer media type: %w", source, err)
		}
		if mt != MediaTypeBundleLayer && mt != mediaTypeGenericTarGzip {
			continue
		}
		if found != nil {
			return nil, fmt.Errorf("policy: bundle %s: more than one bundle layer", source)
		}
		found = l
	}
	if found == nil {
		return nil, fmt.Errorf("policy: bundle %s: no layer of media type %s or %s (push the `opa build` tarball as bundle.tar.gz:%s)", source, mediaTypeGenericTarGzip, MediaTypeBundleLayer, mediaTypeGenericTarGzip)
	}
	return found, nil
}

// LoadImage reads a bundle from an OCI artifact: an image with exactly one
// layer holding the bundle as a gzipped tarball (media type
// application/vnd.oci.image.layer.v1.tar+gzip, as OPA reads it, or
// MediaTypeBundleLayer). source names it in messages.
func LoadImage(img v1.Image, source string) (*Bundle, error) {
	l, err := bundleLayer(img, source)
	if err != nil {
		return nil, err
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, fmt.Errorf("policy: bundle %s: %w", source, err)
	}
	defer rc.Close()
	return LoadTarball(rc, source)
}

// OCIScheme prefixes a bundle location that is an OCI reference.
const OCIScheme = "oci://"

// Load reads a bundle from location: "oci://REF" (through images, which may
// be nil otherwise), a .tar.gz or .tgz file, or a directory. The Source of
// a bundle read from an OCI artifact names the manifest digest read
// ("oci://REF@sha256:..."), so that logs and GET /portcullis/v1/policies
// say which push of a moving tag serves.
func Load(ctx context.Context, location string, images ImageSource) (*Bundle, error) {
	if _, ok := strings.CutPrefix(location, OCIScheme); ok {
		img, source, err := fetchImage(ctx, location, images)
		if err != nil {
			return nil, err
		}
		return LoadImage(img, source)
	}
	if strings.HasSuffix(location, ".tar.gz") || strings.HasSuffix(location, ".tgz") {
		f, err := os.Open(location)
		if err != nil {
			return nil, fmt.Errorf("policy: bundle: %w", err)
		}
		defer f.Close()
		return LoadTarball(f, location)
	}
	return LoadDir(location)
}

// fetchImage reads the artifact of an oci:// location and returns it with
// its name pinned to the digest read.
func fetchImage(ctx context.Context, location string, images ImageSource) (v1.Image, string, error) {
	ref := strings.TrimPrefix(location, OCIScheme)
	if images == nil {
		return nil, "", fmt.Errorf("policy: bundle %s: no OCI image source configured", location)
	}
	img, err := images.Image(ctx, ref)
	if err != nil {
		return nil, "", fmt.Errorf("policy: bundle %s: %w", location, err)
	}
	d, err := img.Digest()
	if err != nil {
		return nil, "", fmt.Errorf("policy: bundle %s: %w", location, err)
	}
	source := location
	if !strings.Contains(ref, "@") {
		source += "@" + d.String()
	}
	return img, source, nil
}

// maxExtract and maxExtractFiles bound what extractOCI writes: a bundle
// is policy and data, not an image filesystem.
const (
	maxExtract      = MaxBundleBytes
	maxExtractFiles = 10000
)

// extractOCI writes the files of the bundle at an oci:// location into
// dir (in OPA's bundle layout, test files included), for `policy test`.
func extractOCI(ctx context.Context, location string, images ImageSource, dir string) error {
	img, source, err := fetchImage(ctx, location, images)
	if err != nil {
		return err
	}
	l, err := bundleLayer(img, source)
	if err != nil {
		return err
	}
	rc, err := l.Compressed()
	if err != nil {
		return fmt.Errorf("policy: bundle %s: %w", source, err)
	}
	defer rc.Close()
	if err := extractTarball(rc, dir); err != nil {
		return fmt.Errorf("policy: bundle %s: %w", source, err)
	}
	return nil
}

// extractTarball writes the regular files of a gzipped tarball under dir,
// refusing names that leave it.
func extractTarball(r io.Reader, dir string) error {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return err
	}
	tr := tar.NewReader(zr)
	var total int64
	files := 0
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		name := path.Clean("/" + h.Name)[1:]
		if name == "" || !filepath.IsLocal(name) {
			return fmt.Errorf("file %q is outside the bundle", h.Name)
		}
		if files++; files > maxExtractFiles {
			return fmt.Errorf("more than %d files", maxExtractFiles)
		}
		if total += h.Size; total > maxExtract {
			return fmt.Errorf("more than %d bytes", maxExtract)
		}
		dst := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, io.LimitReader(tr, h.Size))
		if err := errors.Join(err, f.Close()); err != nil {
			return err
		}
	}
}
