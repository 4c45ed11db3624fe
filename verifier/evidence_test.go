package verifier_test

import (
	"bytes"
	"context"
	"crypto"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/attest"
	"github.com/portcullis-dev/portcullis/verifier"
	"github.com/portcullis-dev/portcullis/verifier/source"
	vt "github.com/portcullis-dev/portcullis/verifier/verifiertest"
)

// collectBoth collects the evidence of repo@d through the in-process and
// the remote source, and fails unless both see the same.
func (f *fixture) collectBoth(t *testing.T, v *verifier.Verifier, repo string, d digest.Digest) *verifier.Evidence {
	t.Helper()
	subj := verifier.Subject{Repository: repo, Digest: d}
	local, err := v.Collect(context.Background(), f.reg.Store().Source(), subj)
	if err != nil {
		t.Fatalf("local Collect: %v", err)
	}
	remote, err := v.Collect(context.Background(), source.NewRemote(f.Host), subj)
	if err != nil {
		t.Fatalf("remote Collect: %v", err)
	}
	if len(local.Signatures) != len(remote.Signatures) || len(local.Attestations) != len(remote.Attestations) {
		t.Fatalf("local and remote sources disagree:\n local  %+v\n remote %+v", local, remote)
	}
	for i := range local.Attestations {
		if local.Attestations[i].Verified != remote.Attestations[i].Verified || local.Attestations[i].Reason != remote.Attestations[i].Reason {
			t.Fatalf("local and remote disagree on attestation %d:\n local  %+v\n remote %+v", i, local.Attestations[i], remote.Attestations[i])
		}
	}
	return local
}

func oneAttestation(t *testing.T, ev *verifier.Evidence) verifier.Attestation {
	t.Helper()
	if len(ev.Attestations) != 1 {
		t.Fatalf("%d attestations, want 1: %+v", len(ev.Attestations), ev.Attestations)
	}
	return ev.Attestations[0]
}

func wantRejected(t *testing.T, verified bool, reason, want string) {
	t.Helper()
	if verified {
		t.Fatalf("verified, want rejected with %q", want)
	}
	if !strings.Contains(reason, want) {
		t.Fatalf("reason %q, want it to contain %q", reason, want)
	}
}

func TestAttestations(t *testing.T) {
	trusted, other := vt.NewKey(t), vt.NewKey(t)
	v, err := verifier.New(verifier.Authority{Name: "release", Keys: []crypto.PublicKey{trusted.Public()}})
	if err != nil {
		t.Fatal(err)
	}
	keyID, _ := verifier.KeyID(trusted.Public())
	const repo = "staging/app"
	cdx := `{"bomFormat":"CycloneDX","specVersion":"1.6","components":[{"name":"openssl","version":"3.0.11","purl":"pkg:deb/debian/openssl@3.0.11","licenses":[{"license":{"id":"Apache-2.0"}}]}]}`

	tests := []struct {
		name  string
		setup func(t *testing.T, f *fixture, d digest.Digest)
		check func(t *testing.T, ev *verifier.Evidence)
	}{{
		name: "bundle: signature by the trusted key",
		setup: func(t *testing.T, f *fixture, d digest.Digest) {
			f.PushKeyBundle(t, trusted, repo, d, vt.Statement(t, d, vt.CosignSign, `{}`))
		},
		check: func(t *testing.T, ev *verifier.Evidence) {
			if len(ev.Signatures) != 1 || len(ev.Attestations) != 0 {
				t.Fatalf("want one signature and no attestation: %+v", ev)
			}
			s := ev.Signatures[0]
			if !s.Verified || s.Source != verifier.SourceBundle || s.Signer == nil || s.Signer.KeyID != keyID {
				t.Fatalf("signature %+v, want verified bundle signed by key %s", s, keyID)
			}
		},
	}, {
		name: "bundle: SLSA provenance by the trusted key",
		setup: func(t *testing.T, f *fixture, d digest.Digest) {
			f.PushKeyBundle(t, trusted, repo, d, vt.Statement(t, d, vt.SLSAv1, vt.ProvenanceV1))
		},
		check: func(t *testing.T, ev *verifier.Evidence) {
			at := oneAttestation(t, ev)
			p, ok := at.Predicate.(*attest.Provenance)
			if !at.Verified || !ok || p.BuilderID != "https://ci.example.com/builder" || at.Authorities[0] != "release" {
				t.Fatalf("attestation %+v, want verified provenance from the builder", at)
			}
		},
	}, {
		name: "bundle: CycloneDX SBOM by the trusted key",
		setup: func(t *testing.T, f *fixture, d digest.Digest) {
			f.PushKeyBundle(t, trusted, repo, d, vt.Statement(t, d, "https://cyclonedx.org/bom", cdx))
		},
		check: func(t *testing.T, ev *verifier.Evidence) {
			at := oneAttestation(t, ev)
			s, ok := at.Predicate.(*attest.SBOM)
			if !at.Verified || !ok || len(s.Components) != 1 || s.Components[0].Name != "openssl" {
				t.Fatalf("attestation %+v, want a verified SBOM with openssl", at)
			}
		},
	}, {
		name: "bundle: wrong key",
		setup: func(t *testing.T, f *fixture, d digest.Digest) {
			f.PushKeyBundle(t, other, repo, d, vt.Statement(t, d, vt.SLSAv1, vt.ProvenanceV1))
		},
		check: func(t *testing.T, ev *verifier.Evidence) {
			at := oneAttestation(t, ev)
			wantRejected(t, at.Verified, at.Reason, `authority "release": key`)
			if at.Predicate != nil {
				t.Fatal("an unverified attestation carries a predicate")
			}
		},
	}, {
		name: "bundle: payload changed after signing",
		setup: func(t *testing.T, f *fixture, d digest.Digest) {
			st := vt.Statement(t, d, vt.SLSAv1, vt.ProvenanceV1)
			sig := vt.SignDSSE(t, trusted, vt.PayloadTypeInToto, st)
			st = bytes.Replace(st, []byte("ci.example.com"), []byte("evil.example.com"), 1)
			f.PushBundle(t, repo, d, vt.SLSAv1, vt.Bundle(t, vt.KeyMaterial(t, trusted), vt.PayloadTypeInToto, st, sig))
		},
		check: func(t *testing.T, ev *verifier.Evidence) {
			at := oneAttestation(t, ev)
			wantRejected(t, at.Verified, at.Reason, "could not verify envelope")
		},
	}, {
		name: "bundle: statement about another digest",
		setup: func(t *testing.T, f *fixture, d digest.Digest) {
			f.PushKeyBundle(t, trusted, repo, d, vt.Statement(t, digest.FromString("another image"), vt.SLSAv1, vt.ProvenanceV1))
		},
		check: func(t *testing.T, ev *verifier.Evidence) {
			at := oneAttestation(t, ev)
			wantRejected(t, at.Verified, at.Reason, "does not match any digest in statement")
		},
	}, {
		name: "bundle: DSSE payload type is not in-toto",
		setup: func(t *testing.T, f *fixture, d digest.Digest) {
			st := vt.Statement(t, d, vt.SLSAv1, vt.ProvenanceV1)
			sig := vt.SignDSSE(t, trusted, "application/json", st)
			f.PushBundle(t, repo, d, vt.SLSAv1, vt.Bundle(t, vt.KeyMaterial(t, trusted), "application/json", st, sig))
		},
		check: func(t *testing.T, ev *verifier.Evidence) {
			at := oneAttestation(t, ev)
			wantRejected(t, at.Verified, at.Reason, "application/json")
		},
	}, {
		name: "bundle: malformed bundle",
		setup: func(t *testing.T, f *fixture, d digest.Digest) {
			f.PushBundle(t, repo, d, vt.SLSAv1, []byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","dsseEnvelope":`))
		},
		check: func(t *testing.T, ev *verifier.Evidence) {
			at := oneAttestation(t, ev)
			wantRejected(t, at.Verified, at.Reason, "malformed bundle")
		},
	}, {
		name: "bundle: signed but malformed SBOM",
		setup: func(t *testing.T, f *fixture, d digest.Digest) {
			f.PushKeyBundle(t, trusted, repo, d, vt.Statement(t, d, "https://cyclonedx.org/bom", `{"bomFormat":"CycloneDX","components":"not a list"}`))
		},
		check: func(t *testing.T, ev *verifier.Evidence) {
			at := oneAttestation(t, ev)
			wantRejected(t, at.Verified, at.Reason, "signature verified, but the https://cyclonedx.org/bom predicate is malformed")
		},
	}, {
		name: "bundle: blob missing from the registry",
		setup: func(t *testing.T, f *fixture, d digest.Digest) {
			st := vt.Statement(t, d, vt.SLSAv1, vt.ProvenanceV1)
			b := vt.Bundle(t, vt.KeyMaterial(t, trusted), vt.PayloadTypeInToto, st, vt.SignDSSE(t, trusted, vt.PayloadTypeInToto, st))
			f.PushBundle(t, repo, d, vt.SLSAv1, b)
			f.DeleteBlob(t, repo, digest.FromBytes(b))
		},
		check: func(t *testing.T, ev *verifier.Evidence) {
			at := oneAttestation(t, ev)
			wantRejected(t, at.Verified, at.Reason, "is missing from the registry")
		},
	}, {
		name: "tag scheme: SLSA provenance by the trusted key",
		setup: func(t *testing.T, f *fixture, d digest.Digest) {
			st := vt.Statement(t, d, vt.SLSAv1, vt.ProvenanceV1)
			f.PushAttestations(t, repo, d, vt.SLSAv1, vt.Envelope(t, vt.PayloadTypeInToto, st, vt.SignDSSE(t, trusted, vt.PayloadTypeInToto, st)))
		},
		check: func(t *testing.T, ev *verifier.Evidence) {
			at := oneAttestation(t, ev)
			if _, ok := at.Predicate.(*attest.Provenance); !at.Verified || !ok || at.Source != verifier.SourceTag || at.Signer.KeyID != keyID {
				t.Fatalf("attestation %+v, want verified provenance", at)
			}
		},
	}, {
		name: "tag scheme: attestation about another digest",
		setup: func(t *testing.T, f *fixture, d digest.Digest) {
			st := vt.Statement(t, digest.FromString("another image"), vt.SLSAv1, vt.ProvenanceV1)
			f.PushAttestations(t, repo, d, vt.SLSAv1, vt.Envelope(t, vt.PayloadTypeInToto, st, vt.SignDSSE(t, trusted, vt.PayloadTypeInToto, st)))
		},
		check: func(t *testing.T, ev *verifier.Evidence) {
			at := oneAttestation(t, ev)
			wantRejected(t, at.Verified, at.Reason, "no matching subject digest found")
		},
	}, {
		name: "tag scheme: DSSE payload type mismatch",
		setup: func(t *testing.T, f *fixture, d digest.Digest) {
			st := vt.Statement(t, d, vt.SLSAv1, vt.ProvenanceV1)
			f.PushAttestations(t, repo, d, vt.SLSAv1, vt.Envelope(t, "text/plain", st, vt.SignDSSE(t, trusted, "text/plain", st)))
		},
		check: func(t *testing.T, ev *verifier.Evidence) {
			at := oneAttestation(t, ev)
			wantRejected(t, at.Verified, at.Reason, "invalid payloadType")
		},
	}, {
		name: "tag scheme: wrong key and a malformed envelope",
		setup: func(t *testing.T, f *fixture, d digest.Digest) {
			st := vt.Statement(t, d, vt.SLSAv1, vt.ProvenanceV1)
			f.PushAttestations(t, repo, d, vt.SLSAv1,
				vt.Envelope(t, vt.PayloadTypeInToto, st, vt.SignDSSE(t, other, vt.PayloadTypeInToto, st)),
				[]byte(`{"payloadType":`))
		},
		check: func(t *testing.T, ev *verifier.Evidence) {
			if len(ev.Attestations) != 2 {
				t.Fatalf("%d attestations, want 2", len(ev.Attestations))
			}
			wantRejected(t, ev.Attestations[0].Verified, ev.Attestations[0].Reason, `authority "release"`)
			wantRejected(t, ev.Attestations[1].Verified, ev.Attestations[1].Reason, `authority "release"`)
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			d := f.PushImage(t, repo, "v1")
			tt.setup(t, f, d)
			ev := f.collectBoth(t, v, repo, d)
			for _, a := range ev.Attestations {
				t.Logf("attestation: verified=%v type=%s reason=%q", a.Verified, a.PredicateType, a.Reason)
			}
			tt.check(t, ev)
		})
	}
}
