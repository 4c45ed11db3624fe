package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/verifier/source"
	"github.com/portcullis-dev/portcullis/webhook"
)

// localHosts are the registry hosts that name a server listening on addr:
// addr as written, and localhost, 127.0.0.1 and [::1] with its port (and
// the listen host, so ":5000" and "0.0.0.0:5000" are covered too).
func localHosts(addr string) map[string]bool {
	hosts := map[string]bool{addr: true}
	if host, port, err := net.SplitHostPort(addr); err == nil {
		for _, h := range []string{"localhost", "127.0.0.1", "::1", host} {
			hosts[net.JoinHostPort(h, port)] = true
		}
	}
	return hosts
}

// bundleImages reads oci:// policy bundles (policy.ImageSource). A
// reference to this server (local: see localHosts) is read from its own
// store in-process, without the network or access control, and only when
// no pusher can change what it names: pinned by digest, or in a protected
// repository (written only through the gate); a registry of
// webhook.registries with that entry's settings and credentials; any
// other registry with go-containerregistry and the docker config's
// credentials (and credential helpers).
type bundleImages struct {
	local map[string]bool
	// store is this registry's content; nil outside serve.
	store source.Source
	// protected reports the repositories written only through the gate
	// (gate.Config.IsProtected); with store.
	protected func(repo string) bool
	remotes   webhook.Registries
	// insecure reaches every other registry over plain HTTP (verify
	// --allow-insecure-registry; loopback registries are plain HTTP anyway).
	insecure bool
}

// Image implements policy.ImageSource.
func (b *bundleImages) Image(ctx context.Context, ref string) (v1.Image, error) {
	var nameOpts []name.Option
	if b.insecure {
		nameOpts = append(nameOpts, name.Insecure)
	}
	r, err := name.ParseReference(ref, nameOpts...)
	if err != nil {
		return nil, fmt.Errorf("reference %q: %w", ref, err)
	}
	host, repo := r.Context().RegistryStr(), r.Context().RepositoryStr()
	var src source.Source
	switch {
	case b.store != nil && b.local[host]:
		if _, pinned := r.(name.Digest); !pinned && (b.protected == nil || !b.protected(repo)) {
			return nil, fmt.Errorf("%s is read from this server's own store, and %s is not a protected namespace: whoever may push there would decide policy; pin the reference by digest (%s@sha256:...) or keep the bundle in a protected namespace (docs/policies.md)", ref, repo, r.Context().Name())
		}
		src = b.store
	case b.remotes[host] != nil:
		src = b.remotes[host]
	default:
		var opts []source.RemoteOption
		if b.insecure {
			opts = append(opts, source.WithInsecure())
		}
		src = source.NewRemote(host, opts...)
	}
	var d digest.Digest
	if dr, ok := r.(name.Digest); ok {
		d = digest.Digest(dr.DigestStr())
	} else if d, err = src.Resolve(ctx, repo, r.Identifier()); err != nil {
		return nil, err
	}
	m, err := src.Manifest(ctx, repo, d)
	if err != nil {
		return nil, err
	}
	var parsed v1.Manifest
	if err := json.Unmarshal(m.Content, &parsed); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", d, err)
	}
	if mt := types.MediaType(m.MediaType); mt.IsIndex() || (len(parsed.Layers) == 0 && parsed.Config.Digest == (v1.Hash{})) {
		return nil, fmt.Errorf("manifest %s (%s) is not an image manifest: push the bundle as one artifact (docs/policies.md)", d, m.MediaType)
	}
	return partial.CompressedToImage(&sourceImage{ctx: ctx, src: src, repo: repo, m: m, parsed: &parsed})
}

// sourceImage is an image manifest of a source.Source, as
// go-containerregistry's partial package wants it. It keeps the context
// of the one load it serves.
type sourceImage struct {
	ctx    context.Context
	src    source.Source
	repo   string
	m      source.Manifest
	parsed *v1.Manifest
}

func (s *sourceImage) RawManifest() ([]byte, error) { return s.m.Content, nil }

func (s *sourceImage) MediaType() (types.MediaType, error) {
	if s.m.MediaType != "" {
		return types.MediaType(s.m.MediaType), nil
	}
	return s.parsed.MediaType, nil
}

func (s *sourceImage) RawConfigFile() ([]byte, error) {
	return s.src.Blob(s.ctx, s.repo, digest.Digest(s.parsed.Config.Digest.String()))
}

func (s *sourceImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	for _, l := range s.parsed.Layers {
		if l.Digest == h {
			return &sourceLayer{img: s, desc: l}, nil
		}
	}
	return nil, fmt.Errorf("layer %s is not in manifest %s", h, s.m.Digest)
}

// sourceLayer is a layer read whole (at most source.MaxBlobSize, verified
// against its digest) from the source.
type sourceLayer struct {
	img  *sourceImage
	desc v1.Descriptor
}

func (l *sourceLayer) Digest() (v1.Hash, error)            { return l.desc.Digest, nil }
func (l *sourceLayer) Size() (int64, error)                { return l.desc.Size, nil }
func (l *sourceLayer) MediaType() (types.MediaType, error) { return l.desc.MediaType, nil }

func (l *sourceLayer) Compressed() (io.ReadCloser, error) {
	b, err := l.img.src.Blob(l.img.ctx, l.img.repo, digest.Digest(l.desc.Digest.String()))
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// cliBundleImages reads oci:// bundles for a command that runs without the
// server (verify, policy eval and test): over the network, with the
// settings and credentials of configPath's webhook.registries (when
// given) and otherwise the docker config's.
func cliBundleImages(configPath string, insecure bool) (*bundleImages, error) {
	b := &bundleImages{insecure: insecure}
	if configPath == "" {
		return b, nil
	}
	cfg, err := loadConfig(configPath)
	if err != nil {
		return nil, err
	}
	if b.remotes, err = webhook.OpenRegistries(cfg.Webhook.Registries); err != nil {
		return nil, err
	}
	return b, nil
}
