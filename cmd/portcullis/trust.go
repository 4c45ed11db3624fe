package main

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"os"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/portcullis-dev/portcullis/verifier"
)

// TrustConfig says whose signatures count: named authorities, kept apart
// from policy (which says what evidence is required).
type TrustConfig struct {
	Authorities []AuthorityConfig `json:"authorities"`
}

// AuthorityConfig is one named authority: public keys, keyless
// identities, or both.
type AuthorityConfig struct {
	Name string `json:"name"`
	// Keys are paths of PEM public keys (ECDSA, Ed25519, RSA), as
	// `cosign generate-key-pair` writes cosign.pub.
	Keys []string `json:"keys,omitempty" yamlconf:"path"`
	// Keyless trusts certificates for the given identities.
	Keyless *KeylessConfig `json:"keyless,omitempty"`
}

// KeylessConfig configures keyless (certificate) verification. Exactly one
// of TrustedRoot and TUF gives the trusted root.
type KeylessConfig struct {
	Identities []verifier.Identity `json:"identities"`
	// TrustedRoot is the path of a Sigstore trusted_root.json.
	TrustedRoot string `json:"trustedRoot,omitempty" yamlconf:"path"`
	// TUF fetches trusted_root.json from a mirrored TUF repository.
	TUF *verifier.TUF `json:"tuf,omitempty"`
	// RequireSCT demands certificate transparency proofs in certificates.
	RequireSCT bool `json:"requireSCT,omitempty"`
}

// newVerifier builds the verifier for the configured authorities, loading
// keys and trusted roots (fetching TUF mirrors) once.
func (t *TrustConfig) newVerifier(ctx context.Context) (*verifier.Verifier, error) {
	var auths []verifier.Authority
	for _, ac := range t.Authorities {
		a := verifier.Authority{Name: ac.Name}
		for _, path := range ac.Keys {
			k, err := loadPublicKey(path)
			if err != nil {
				return nil, fmt.Errorf("trust: authority %q: %w", ac.Name, err)
			}
			a.Keys = append(a.Keys, k)
		}
		if kc := ac.Keyless; kc != nil {
			tr, err := kc.trustedRoot(ctx)
			if err != nil {
				return nil, fmt.Errorf("trust: authority %q: %w", ac.Name, err)
			}
			a.Keyless = &verifier.Keyless{Identities: kc.Identities, TrustedRoot: tr, RequireSCT: kc.RequireSCT}
		}
		auths = append(auths, a)
	}
	v, err := verifier.New(auths...)
	if err != nil {
		return nil, fmt.Errorf("trust: %w", err)
	}
	return v, nil
}

func (k *KeylessConfig) trustedRoot(ctx context.Context) (root.TrustedMaterial, error) {
	switch {
	case k.TrustedRoot != "" && k.TUF != nil:
		return nil, errors.New("keyless: give trustedRoot or tuf, not both")
	case k.TrustedRoot != "":
		return verifier.LoadTrustedRoot(k.TrustedRoot)
	case k.TUF != nil:
		return verifier.FetchTrustedRoot(ctx, *k.TUF)
	}
	return nil, errors.New("keyless: a trusted root is needed (trustedRoot or tuf)")
}

func loadPublicKey(path string) (crypto.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	k, err := cryptoutils.UnmarshalPEMToPublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("public key %s: %w", path, err)
	}
	return k, nil
}
