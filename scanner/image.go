package scanner

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
)

// ErrNotImage means a manifest is not a single-platform image (an index,
// a signature, an attestation or another artifact): there is nothing to
// scan. The queue skips such manifests.
var ErrNotImage = errors.New("not an image")

// Content is what [NewImage] reads from a registry's stores.
type Content interface {
	// Manifest returns a manifest of repo by digest, and its media type.
	Manifest(ctx context.Context, repo string, d digest.Digest) (mediaType string, body []byte, err error)
	// OpenBlob opens a blob of repo for reading. The bytes are verified
	// against d by the caller.
	OpenBlob(ctx context.Context, repo string, d digest.Digest) (io.ReadCloser, error)
}

// maxConfigSize bounds an image config read into memory.
const maxConfigSize = 8 << 20

// NewImage returns the image repo@d read in-process from c: no HTTP round
// trip, no copy. The image's methods have no context of their own and use
// ctx for every read, so ctx must outlive the image's use. Blob bytes are
// verified against their digests as they are read; a mismatch is an error
// wrapping [ErrImage]. A manifest that is not an image (an index, an
// artifact with a non-image config) is [ErrNotImage]. The image is
// go-containerregistry's, so this is where the project's digests become
// its v1.Hash.
func NewImage(ctx context.Context, c Content, repo string, d digest.Digest) (v1.Image, error) {
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("image %s@%s: %v: %w", repo, d, err, ErrImage)
	}
	mt, body, err := c.Manifest(ctx, repo, d)
	if err != nil {
		return nil, fmt.Errorf("image %s@%s: %w", repo, d, err)
	}
	switch types.MediaType(mt) {
	case types.OCIManifestSchema1, types.DockerManifestSchema2:
	default:
		return nil, fmt.Errorf("image %s@%s is a %s: %w", repo, d, mt, ErrNotImage)
	}
	m, err := v1.ParseManifest(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("image %s@%s: manifest: %v: %w", repo, d, err, ErrImage)
	}
	switch m.Config.MediaType {
	case types.OCIConfigJSON, types.DockerConfigJSON:
	default:
		return nil, fmt.Errorf("image %s@%s has a config of type %q: %w", repo, d, m.Config.MediaType, ErrNotImage)
	}
	if m.Config.Size > maxConfigSize {
		return nil, fmt.Errorf("image %s@%s: config is %d bytes, over %d: %w", repo, d, m.Config.Size, maxConfigSize, ErrImage)
	}
	core := &storeImage{ctx: ctx, c: c, repo: repo, mt: types.MediaType(mt), manifest: body, parsed: m}
	cfg, err := core.readAll(m.Config)
	if err != nil {
		return nil, fmt.Errorf("image %s@%s: config: %w", repo, d, err)
	}
	core.config = cfg
	img, err := partial.CompressedToImage(core)
	if err != nil {
		return nil, fmt.Errorf("image %s@%s: %v: %w", repo, d, err, ErrImage)
	}
	return img, nil
}

// storeImage is a partial.CompressedImageCore over Content.
type storeImage struct {
	ctx      context.Context
	c        Content
	repo     string
	mt       types.MediaType
	manifest []byte
	parsed   *v1.Manifest
	config   []byte
	verified sync.Map // v1.Hash -> true: blobs read whole and matching
}

func (i *storeImage) RawConfigFile() ([]byte, error)      { return i.config, nil }
func (i *storeImage) MediaType() (types.MediaType, error) { return i.mt, nil }
func (i *storeImage) RawManifest() ([]byte, error)        { return i.manifest, nil }

func (i *storeImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	for _, l := range i.parsed.Layers {
		if l.Digest == h {
			return &storeLayer{img: i, desc: l}, nil
		}
	}
	if i.parsed.Config.Digest == h {
		return &storeLayer{img: i, desc: i.parsed.Config}, nil
	}
	return nil, fmt.Errorf("blob %s is not in the manifest: %w", h, ErrImage)
}

// open opens desc's blob after checking the whole blob against its digest
// once: readers such as tar stop before the end of a layer, so checking
// only at EOF would let a corrupted layer through.
func (i *storeImage) open(desc v1.Descriptor) (io.ReadCloser, error) {
	if _, ok := i.verified.Load(desc.Digest); !ok {
		rc, err := i.openVerifying(desc)
		if err != nil {
			return nil, err
		}
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return nil, err
		}
		i.verified.Store(desc.Digest, true)
	}
	// Checked: the store is content-addressed, so the bytes are read
	// without hashing them a second time.
	rc, err := i.c.OpenBlob(i.ctx, i.repo, digest.Digest(desc.Digest.String()))
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", desc.Digest, err)
	}
	return rc, nil
}

// openVerifying opens desc's blob; reading it to the end fails unless it
// matches desc's digest and size.
func (i *storeImage) openVerifying(desc v1.Descriptor) (io.ReadCloser, error) {
	if desc.Digest.Algorithm != "sha256" {
		return nil, fmt.Errorf("blob %s: unsupported digest algorithm: %w", desc.Digest, ErrImage)
	}
	rc, err := i.c.OpenBlob(i.ctx, i.repo, digest.Digest(desc.Digest.String()))
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", desc.Digest, err)
	}
	return &verifyingReader{rc: rc, h: sha256.New(), want: desc.Digest, size: desc.Size}, nil
}

func (i *storeImage) readAll(desc v1.Descriptor) ([]byte, error) {
	rc, err := i.openVerifying(desc)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// storeLayer is a partial.CompressedLayer.
type storeLayer struct {
	img  *storeImage
	desc v1.Descriptor
}

func (l *storeLayer) Digest() (v1.Hash, error)            { return l.desc.Digest, nil }
func (l *storeLayer) Size() (int64, error)                { return l.desc.Size, nil }
func (l *storeLayer) MediaType() (types.MediaType, error) { return l.desc.MediaType, nil }
func (l *storeLayer) Compressed() (io.ReadCloser, error)  { return l.img.open(l.desc) }

// verifyingReader hashes what it reads and fails at EOF (or past size)
// when the bytes are not what the descriptor says.
type verifyingReader struct {
	rc   io.ReadCloser
	h    hash.Hash
	want v1.Hash
	size int64
	n    int64
}

func (r *verifyingReader) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	r.h.Write(p[:n])
	r.n += int64(n)
	if r.size >= 0 && r.n > r.size {
		return n, fmt.Errorf("blob %s: more than the %d bytes the manifest says: %w", r.want, r.size, ErrImage)
	}
	if errors.Is(err, io.EOF) {
		if r.size >= 0 && r.n != r.size {
			return n, fmt.Errorf("blob %s: %d bytes, the manifest says %d: %w", r.want, r.n, r.size, ErrImage)
		}
		if got := hex.EncodeToString(r.h.Sum(nil)); got != r.want.Hex {
			return n, fmt.Errorf("blob %s: content has digest sha256:%s: %w", r.want, got, ErrImage)
		}
	}
	return n, err
}

func (r *verifyingReader) Close() error { return r.rc.Close() }
