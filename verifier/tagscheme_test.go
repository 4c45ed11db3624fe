package verifier_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/payload"

	"github.com/portcullis-dev/portcullis/registry"
	"github.com/portcullis-dev/portcullis/registry/registrytest"
	"github.com/portcullis-dev/portcullis/verifier"
	"github.com/portcullis-dev/portcullis/verifier/source"
)

type fixture struct {
	reg  *registry.Registry
	host string
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	reg, host := registrytest.New(t)
	return &fixture{reg: reg, host: host}
}

// pushImage pushes a random image to repo:tag and returns its digest.
func (f *fixture) pushImage(t testing.TB, repo, tag string) digest.Digest {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.NewTag(f.host + "/" + repo + ":" + tag)
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return digest.Digest(d.String())
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// signPayload returns cosign's simple-signing payload for (repo, signed)
// and its signature by key.
func (f *fixture) signPayload(t testing.TB, key crypto.Signer, repo string, signed digest.Digest) ([]byte, string) {
	t.Helper()
	ref, err := name.NewDigest(f.host + "/" + repo + "@" + signed.String())
	if err != nil {
		t.Fatal(err)
	}
	p, err := (&payload.Cosign{Image: ref}).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	signer, err := signature.LoadSigner(key, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := signer.SignMessage(bytes.NewReader(p))
	if err != nil {
		t.Fatal(err)
	}
	return p, base64.StdEncoding.EncodeToString(sig)
}

// pushSignature stores a signature of subject the way cosign does: one
// layer under the tag sha256-<hex>.sig.
func (f *fixture) pushSignature(t testing.TB, repo string, subject digest.Digest, p []byte, b64sig string) {
	t.Helper()
	f.pushSignatureLayer(t, repo, subject, p, map[string]string{"dev.cosignproject.cosign/signature": b64sig})
}

// pushSignatureLayer is pushSignature with every layer annotation given.
func (f *fixture) pushSignatureLayer(t testing.TB, repo string, subject digest.Digest, p []byte, annotations map[string]string) {
	t.Helper()
	layer := static.NewLayer(p, "application/vnd.dev.cosign.simplesigning.v1+json")
	img, err := mutate.Append(mutate.MediaType(empty.Image, types.OCIManifestSchema1), mutate.Addendum{
		Layer:       layer,
		Annotations: annotations,
	})
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.NewTag(f.host + "/" + repo + ":" + subject.Algorithm().String() + "-" + subject.Encoded() + ".sig")
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
}

func TestTagSchemeSignatures(t *testing.T) {
	ctx := context.Background()
	trusted, other := newKey(t), newKey(t)
	v, err := verifier.New(verifier.Authority{Name: "release", Keys: []crypto.PublicKey{trusted.Public()}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		setup      func(t *testing.T, f *fixture, repo string, d digest.Digest)
		wantSigs   int
		wantOK     bool
		wantReason string
	}{
		{
			name: "signed by the trusted key",
			setup: func(t *testing.T, f *fixture, repo string, d digest.Digest) {
				p, s := f.signPayload(t, trusted, repo, d)
				f.pushSignature(t, repo, d, p, s)
			},
			wantSigs: 1, wantOK: true,
		},
		{
			name:     "unsigned",
			setup:    func(*testing.T, *fixture, string, digest.Digest) {},
			wantSigs: 0,
		},
		{
			name: "wrong key",
			setup: func(t *testing.T, f *fixture, repo string, d digest.Digest) {
				p, s := f.signPayload(t, other, repo, d)
				f.pushSignature(t, repo, d, p, s)
			},
			wantSigs: 1, wantReason: `authority "release": key`,
		},
		{
			name: "payload changed after signing",
			setup: func(t *testing.T, f *fixture, repo string, d digest.Digest) {
				p, s := f.signPayload(t, trusted, repo, d)
				p = bytes.Replace(p, []byte(`"optional":null`), []byte(`"optional":{"x":"y"}`), 1)
				f.pushSignature(t, repo, d, p, s)
			},
			wantSigs: 1, wantReason: "invalid signature",
		},
		{
			name: "signature copied from another digest",
			setup: func(t *testing.T, f *fixture, repo string, d digest.Digest) {
				otherDigest := f.pushImage(t, repo, "other")
				p, s := f.signPayload(t, trusted, repo, otherDigest)
				f.pushSignature(t, repo, d, p, s)
			},
			wantSigs: 1, wantReason: "invalid or missing digest in claim",
		},
		{
			name: "malformed base64 signature",
			setup: func(t *testing.T, f *fixture, repo string, d digest.Digest) {
				p, _ := f.signPayload(t, trusted, repo, d)
				f.pushSignature(t, repo, d, p, "!!not base64!!")
			},
			wantSigs: 1, wantReason: "illegal base64 data",
		},
		{
			name: "signature payload missing from the registry",
			setup: func(t *testing.T, f *fixture, repo string, d digest.Digest) {
				p, s := f.signPayload(t, trusted, repo, d)
				f.pushSignature(t, repo, d, p, s)
				f.deleteBlob(t, repo, digest.FromBytes(p))
			},
			wantSigs: 1, wantReason: "is missing from the registry",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			repo := "staging/app"
			d := f.pushImage(t, repo, "v1")
			tt.setup(t, f, repo, d)
			for _, src := range []struct {
				name string
				s    source.Source
			}{{"local", f.reg.Source()}, {"remote", source.NewRemote(f.host)}} {
				ev, err := v.Collect(ctx, src.s, verifier.Subject{Repository: repo, Digest: d})
				if err != nil {
					t.Fatalf("%s: Collect: %v", src.name, err)
				}
				if len(ev.Signatures) != tt.wantSigs {
					t.Fatalf("%s: %d signatures, want %d: %+v", src.name, len(ev.Signatures), tt.wantSigs, ev.Signatures)
				}
				if tt.wantSigs == 0 {
					continue
				}
				s := ev.Signatures[0]
				if s.Verified != tt.wantOK {
					t.Fatalf("%s: Verified = %v, want %v (reason %q)", src.name, s.Verified, tt.wantOK, s.Reason)
				}
				if tt.wantOK && (len(s.Authorities) != 1 || s.Authorities[0] != "release") {
					t.Fatalf("%s: Authorities = %q", src.name, s.Authorities)
				}
				t.Logf("%s: reason %q", src.name, s.Reason)
				if !strings.Contains(s.Reason, tt.wantReason) {
					t.Fatalf("%s: Reason = %q, want it to contain %q", src.name, s.Reason, tt.wantReason)
				}
			}
		})
	}
}

var errBackend = errors.New("backend unavailable")

// failingSource wraps a real source and fails one of its methods: the
// verifier must report "could not check" as an error, never as an empty
// or partial result.
type failingSource struct {
	source.Source
	fail string
}

func (s failingSource) Resolve(ctx context.Context, repo, tag string) (digest.Digest, error) {
	if s.fail == "Resolve" {
		return "", errBackend
	}
	return s.Source.Resolve(ctx, repo, tag)
}

func (s failingSource) Manifest(ctx context.Context, repo string, d digest.Digest) (source.Manifest, error) {
	if s.fail == "Manifest" {
		return source.Manifest{}, errBackend
	}
	return s.Source.Manifest(ctx, repo, d)
}

func (s failingSource) Referrers(ctx context.Context, repo string, d digest.Digest) ([]ocispec.Descriptor, error) {
	if s.fail == "Referrers" {
		return nil, errBackend
	}
	return s.Source.Referrers(ctx, repo, d)
}

func (s failingSource) Blob(ctx context.Context, repo string, d digest.Digest) ([]byte, error) {
	if s.fail == "Blob" {
		return nil, errBackend
	}
	return s.Source.Blob(ctx, repo, d)
}

func TestCollectCouldNotCheck(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	key := newKey(t)
	d := f.pushImage(t, "app", "v1")
	p, sig := f.signPayload(t, key, "app", d)
	f.pushSignature(t, "app", d, p, sig)
	f.pushKeyBundle(t, key, "app", d, statementFor(t, d, "https://slsa.dev/provenance/v1", `{"buildDefinition":{"buildType":"x","externalParameters":{}},"runDetails":{"builder":{"id":"b"}}}`))
	v, err := verifier.New(verifier.Authority{Name: "release", Keys: []crypto.PublicKey{key.Public()}})
	if err != nil {
		t.Fatal(err)
	}
	subj := verifier.Subject{Repository: "app", Digest: d}
	for _, method := range []string{"Resolve", "Manifest", "Referrers", "Blob"} {
		ev, err := v.Collect(ctx, failingSource{Source: f.reg.Source(), fail: method}, subj)
		if !errors.Is(err, errBackend) || ev != nil {
			t.Errorf("%s failing: Collect = %v, %v; want no evidence and the source's error", method, ev, err)
		}
	}
	ctx2, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := v.Collect(ctx2, f.reg.Source(), subj); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: Collect error = %v", err)
	}
	if _, err := v.Collect(ctx, f.reg.Source(), verifier.Subject{Repository: "app", Digest: "sha256:short"}); err == nil {
		t.Fatal("Collect accepted a malformed digest")
	}
}

func TestNewRejectsBadAuthorities(t *testing.T) {
	if _, err := verifier.New(verifier.Authority{Name: "", Keys: []crypto.PublicKey{newKey(t).Public()}}); err == nil {
		t.Error("an authority without a name was accepted")
	}
	if _, err := verifier.New(verifier.Authority{Name: "x"}); err == nil {
		t.Error("an authority without keys was accepted")
	}
}
