package webhook

import (
	"context"
	"fmt"
	"os"

	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/verifier/source"
)

// RemoteRegistry is another registry whose images may be admitted
// (portcullis.yaml webhook.registries).
type RemoteRegistry struct {
	// Host is the registry as written in image references
	// ("registry.example.com", "127.0.0.1:5001").
	Host string `json:"host"`
	// Insecure allows plain HTTP (loopback registries are plain HTTP
	// anyway).
	Insecure bool `json:"insecure,omitempty"`
	// DockerConfig is a docker config.json holding the credentials for
	// Host; empty: the server user's docker configuration and credential
	// helpers (pods' imagePullSecrets are not read: that would need the
	// right to read every namespace's secrets).
	DockerConfig string `json:"dockerConfig,omitempty" yamlconf:"path"`
}

// Registries are the other registries images may come from, by host,
// read over the network with go-containerregistry.
type Registries map[string]*source.Remote

// OpenRegistries opens the registries the configuration lists; a host
// that is not a registry name, or an unreadable docker config, is an error.
func OpenRegistries(others []RemoteRegistry) (Registries, error) {
	r := Registries{}
	for _, o := range others {
		if _, err := name.NewRegistry(o.Host); err != nil || o.Host == "" {
			return nil, fmt.Errorf("webhook.registries: host %q: %v", o.Host, err)
		}
		var opts []source.RemoteOption
		if o.Insecure {
			opts = append(opts, source.WithInsecure())
		}
		if o.DockerConfig != "" {
			kc, err := DockerConfigKeychain(o.DockerConfig)
			if err != nil {
				return nil, fmt.Errorf("webhook.registries: %s: %w", o.Host, err)
			}
			opts = append(opts, source.WithRemoteOptions(remote.WithAuthFromKeychain(kc)))
		}
		r[o.Host] = source.NewRemote(o.Host, opts...)
	}
	return r, nil
}

// Source is the source for host (gate.Options.Remote): only a listed
// registry has one.
func (r Registries) Source(host string) (source.Source, error) {
	if s, ok := r[host]; ok {
		return s, nil
	}
	return nil, fmt.Errorf("registry %s is not in webhook.registries", host)
}

// ImageResolver resolves image references of this registry in-process
// (Local, for the hosts in LocalHosts), and those of Remotes over the
// network; images of any other registry are refused (fail closed).
type ImageResolver struct {
	Local      source.Source
	LocalHosts map[string]bool
	Remotes    Registries
}

// Resolve implements Resolver.
func (r *ImageResolver) Resolve(ctx context.Context, image string) (Location, error) {
	ref, err := name.ParseReference(image)
	if err != nil {
		return Location{}, fmt.Errorf("image %q: %w", image, err)
	}
	host := ref.Context().RegistryStr()
	loc := Location{Repository: ref.Context().RepositoryStr()}
	var src source.Source
	switch {
	case r.LocalHosts[host]:
		src = r.Local
	case r.Remotes[host] != nil:
		src, loc.Registry = r.Remotes[host], host
	default:
		return Location{}, fmt.Errorf("image %s is neither in this registry nor in a registry listed in webhook.registries", image)
	}
	if d, ok := ref.(name.Digest); ok {
		loc.Digest = digest.Digest(d.DigestStr())
		return loc, nil
	}
	if loc.Digest, err = src.Resolve(ctx, loc.Repository, ref.Identifier()); err != nil {
		return Location{}, fmt.Errorf("resolve %s: %w", image, err)
	}
	return loc, nil
}

// DockerConfigKeychain reads registry credentials from one docker
// config.json; a registry it has no entry for is anonymous.
func DockerConfigKeychain(path string) (authn.Keychain, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cf, err := config.LoadFromReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return keychainFunc(func(target authn.Resource) (authn.Authenticator, error) {
		ac, err := cf.GetAuthConfig(target.RegistryStr())
		if err != nil {
			return nil, err
		}
		if ac == (types.AuthConfig{}) {
			return authn.Anonymous, nil
		}
		return authn.FromConfig(authn.AuthConfig{Username: ac.Username, Password: ac.Password, Auth: ac.Auth,
			IdentityToken: ac.IdentityToken, RegistryToken: ac.RegistryToken}), nil
	}), nil
}

type keychainFunc func(authn.Resource) (authn.Authenticator, error)

func (f keychainFunc) Resolve(r authn.Resource) (authn.Authenticator, error) { return f(r) }
