// Package verifier gathers the supply-chain evidence stored with an image
// digest and verifies it cryptographically, so that policy decides on
// facts, never on the mere presence of a file.
//
// "Could not check" (I/O, timeouts) is an error; "checked and failed" is a
// result with a reason. Callers must keep the two apart: the gate treats
// an error as a denial.
package verifier

import (
	"context"
	"crypto"
	"errors"
	"fmt"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/portcullis-dev/portcullis/verifier/source"
)

// Authority is a named set of keys whose signatures policy can require.
type Authority struct {
	Name string
	// Keys are public keys (ECDSA, Ed25519, RSA).
	Keys []crypto.PublicKey
}

// Verifier checks the evidence of digests against configured authorities.
type Verifier struct {
	authorities []authority
}

type authority struct {
	name      string
	verifiers []signature.Verifier
}

// New returns a Verifier trusting the given authorities.
func New(authorities ...Authority) (*Verifier, error) {
	v := &Verifier{}
	for _, a := range authorities {
		if a.Name == "" {
			return nil, errors.New("verifier: an authority needs a name")
		}
		if len(a.Keys) == 0 {
			return nil, fmt.Errorf("verifier: authority %s has no keys", a.Name)
		}
		au := authority{name: a.Name}
		for i, k := range a.Keys {
			sv, err := signature.LoadVerifier(k, crypto.SHA256)
			if err != nil {
				return nil, fmt.Errorf("verifier: authority %s key %d: %w", a.Name, i, err)
			}
			au.verifiers = append(au.verifiers, sv)
		}
		v.authorities = append(v.authorities, au)
	}
	return v, nil
}

// Collect gathers and verifies the evidence for subj from src.
func (v *Verifier) Collect(ctx context.Context, src source.Source, subj Subject) (*Evidence, error) {
	if err := subj.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("collect evidence for %s@%s: %w", subj.Repository, subj.Digest, err)
	}
	ev := &Evidence{Subject: subj, Signatures: []Signature{}, Attestations: []Attestation{}}
	sigs, err := v.tagSignatures(ctx, src, subj)
	if err != nil {
		return nil, fmt.Errorf("collect evidence for %s@%s: %w", subj.Repository, subj.Digest, err)
	}
	ev.Signatures = append(ev.Signatures, sigs...)
	return ev, nil
}
