package policy

import (
	"context"
	"fmt"
	"os"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Media types of a policy bundle stored as an OCI artifact: OPA's own
// ("opa push" / ORAS), and the generic tar+gzip layer.
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

// LoadImage reads a bundle from an OCI artifact: an image with exactly one
// layer holding the bundle as a gzipped tarball (media type
// MediaTypeBundleLayer or application/vnd.oci.image.layer.v1.tar+gzip).
// source names it in messages.
func LoadImage(img v1.Image, source string) (*Bundle, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("policy: bundle %s: layers: %w", source, err)
	}
	var bundleLayer v1.Layer
	for _, l := range layers {
		mt, err := l.MediaType()
		if err != nil {
			return nil, fmt.Errorf("policy: bundle %s: layer media type: %w", source, err)
		}
		if mt != MediaTypeBundleLayer && mt != mediaTypeGenericTarGzip {
			continue
		}
		if bundleLayer != nil {
			return nil, fmt.Errorf("policy: bundle %s: more than one bundle layer", source)
		}
		bundleLayer = l
	}
	if bundleLayer == nil {
		return nil, fmt.Errorf("policy: bundle %s: no layer of media type %s or %s", source, MediaTypeBundleLayer, mediaTypeGenericTarGzip)
	}
	rc, err := bundleLayer.Compressed()
	if err != nil {
		return nil, fmt.Errorf("policy: bundle %s: %w", source, err)
	}
	defer rc.Close()
	return LoadTarball(rc, source)
}

// OCIScheme prefixes a bundle location that is an OCI reference.
const OCIScheme = "oci://"

// Load reads a bundle from location: "oci://REF" (through images, which may
// be nil otherwise), a .tar.gz or .tgz file, or a directory.
func Load(ctx context.Context, location string, images ImageSource) (*Bundle, error) {
	if ref, ok := strings.CutPrefix(location, OCIScheme); ok {
		if images == nil {
			return nil, fmt.Errorf("policy: bundle %s: no OCI image source configured", location)
		}
		img, err := images.Image(ctx, ref)
		if err != nil {
			return nil, fmt.Errorf("policy: bundle %s: %w", location, err)
		}
		return LoadImage(img, location)
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
