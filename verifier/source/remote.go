package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Remote reads a registry over HTTP with go-containerregistry.
type Remote struct {
	registry string
	nameOpts []name.Option
	opts     []remote.Option
}

// RemoteOption configures Remote.
type RemoteOption func(*Remote)

// WithInsecure allows plain HTTP (loopback registries use it anyway).
func WithInsecure() RemoteOption {
	return func(r *Remote) { r.nameOpts = append(r.nameOpts, name.Insecure) }
}

// WithRemoteOptions passes options (transport, keychain) to go-containerregistry.
func WithRemoteOptions(o ...remote.Option) RemoteOption {
	return func(r *Remote) { r.opts = append(r.opts, o...) }
}

// NewRemote reads from registry (host[:port]) with the default keychain
// (docker config, credential helpers).
func NewRemote(registry string, opts ...RemoteOption) *Remote {
	r := &Remote{registry: registry, opts: []remote.Option{remote.WithAuthFromKeychain(authn.DefaultKeychain)}}
	for _, o := range opts {
		o(r)
	}
	return r
}

var _ Source = (*Remote)(nil)

func (r *Remote) repo(repo string) (name.Repository, error) {
	return name.NewRepository(r.registry+"/"+repo, r.nameOpts...)
}

func (r *Remote) ref(repo string, d digest.Digest) (name.Digest, error) {
	return name.NewDigest(r.registry+"/"+repo+"@"+d.String(), r.nameOpts...)
}

func (r *Remote) with(ctx context.Context) []remote.Option {
	return append([]remote.Option{remote.WithContext(ctx)}, r.opts...)
}

// notFound maps registry 404s to ErrNotFound.
func notFound(err error, what string) error {
	var te *transport.Error
	if errors.As(err, &te) && te.StatusCode == http.StatusNotFound {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// Resolve implements Source.
func (r *Remote) Resolve(ctx context.Context, repo, tag string) (digest.Digest, error) {
	rp, err := r.repo(repo)
	if err != nil {
		return "", err
	}
	desc, err := remote.Head(rp.Tag(tag), r.with(ctx)...)
	if err != nil {
		return "", notFound(err, "resolve "+rp.Tag(tag).String())
	}
	return digest.Digest(desc.Digest.String()), nil
}

// Manifest implements Source.
func (r *Remote) Manifest(ctx context.Context, repo string, d digest.Digest) (Manifest, error) {
	ref, err := r.ref(repo, d)
	if err != nil {
		return Manifest{}, err
	}
	desc, err := remote.Get(ref, r.with(ctx)...)
	if err != nil {
		return Manifest{}, notFound(err, "manifest "+ref.String())
	}
	if got := digest.FromBytes(desc.Manifest); d.Algorithm() == digest.SHA256 && got != d {
		return Manifest{}, fmt.Errorf("manifest %s: content hashes to %s", ref, got)
	}
	return Manifest{Digest: d, MediaType: string(desc.MediaType), Content: desc.Manifest}, nil
}

// Referrers implements Source.
func (r *Remote) Referrers(ctx context.Context, repo string, d digest.Digest) ([]ocispec.Descriptor, error) {
	ref, err := r.ref(repo, d)
	if err != nil {
		return nil, err
	}
	idx, err := remote.Referrers(ref, r.with(ctx)...)
	if err != nil {
		return nil, notFound(err, "referrers of "+ref.String())
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("referrers of %s: %w", ref, err)
	}
	out := make([]ocispec.Descriptor, 0, len(im.Manifests))
	for _, m := range im.Manifests {
		out = append(out, toOCI(m))
	}
	return out, nil
}

func toOCI(m v1.Descriptor) ocispec.Descriptor {
	return ocispec.Descriptor{
		MediaType:    string(m.MediaType),
		Digest:       digest.Digest(m.Digest.String()),
		Size:         m.Size,
		Annotations:  m.Annotations,
		ArtifactType: m.ArtifactType,
	}
}

// Blob implements Source.
func (r *Remote) Blob(ctx context.Context, repo string, d digest.Digest) ([]byte, error) {
	ref, err := r.ref(repo, d)
	if err != nil {
		return nil, err
	}
	l, err := remote.Layer(ref, r.with(ctx)...)
	if err != nil {
		return nil, notFound(err, "blob "+ref.String())
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, notFound(err, "blob "+ref.String())
	}
	defer rc.Close()
	return ReadVerified(rc, d)
}

// ReadVerified reads at most MaxBlobSize bytes and checks they hash to d.
func ReadVerified(rd io.Reader, d digest.Digest) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(rd, MaxBlobSize+1))
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", d, err)
	}
	if len(b) > MaxBlobSize {
		return nil, fmt.Errorf("blob %s is over %d bytes: %w", d, MaxBlobSize, ErrInvalid)
	}
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("blob %s: %w: %w", d, ErrInvalid, err)
	}
	if got := d.Algorithm().FromBytes(b); got != d {
		return nil, fmt.Errorf("blob %s: content hashes to %s: %w", d, got, ErrInvalid)
	}
	return b, nil
}
