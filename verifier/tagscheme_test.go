package verifier_test

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/portcullis-dev/portcullis/registry"
	"github.com/portcullis-dev/portcullis/registry/registrytest"
	"github.com/portcullis-dev/portcullis/verifier"
	"github.com/portcullis-dev/portcullis/verifier/source"
	vt "github.com/portcullis-dev/portcullis/verifier/verifiertest"
)

// fixture is a real registry served for the test, and the writer of
// evidence into it.
type fixture struct {
	reg *registry.Registry
	vt.Registry
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	reg, host := registrytest.New(t)
	return &fixture{reg: reg, Registry: vt.Registry{Host: host}}
}

func TestTagSchemeSignatures(t *testing.T) {
	ctx := context.Background()
	trusted, other := vt.NewKey(t), vt.NewKey(t)
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
				p, s := f.SignPayload(t, trusted, repo, d)
				f.PushSignature(t, repo, d, p, s)
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
				p, s := f.SignPayload(t, other, repo, d)
				f.PushSignature(t, repo, d, p, s)
			},
			wantSigs: 1, wantReason: `authority "release": key`,
		},
		{
			name: "payload changed after signing",
			setup: func(t *testing.T, f *fixture, repo string, d digest.Digest) {
				p, s := f.SignPayload(t, trusted, repo, d)
				p = bytes.Replace(p, []byte(`"optional":null`), []byte(`"optional":{"x":"y"}`), 1)
				f.PushSignature(t, repo, d, p, s)
			},
			wantSigs: 1, wantReason: "invalid signature",
		},
		{
			name: "signature copied from another digest",
			setup: func(t *testing.T, f *fixture, repo string, d digest.Digest) {
				otherDigest := f.PushImage(t, repo, "other")
				p, s := f.SignPayload(t, trusted, repo, otherDigest)
				f.PushSignature(t, repo, d, p, s)
			},
			wantSigs: 1, wantReason: "invalid or missing digest in claim",
		},
		{
			name: "malformed base64 signature",
			setup: func(t *testing.T, f *fixture, repo string, d digest.Digest) {
				p, _ := f.SignPayload(t, trusted, repo, d)
				f.PushSignature(t, repo, d, p, "!!not base64!!")
			},
			wantSigs: 1, wantReason: "illegal base64 data",
		},
		{
			name: "signature payload missing from the registry",
			setup: func(t *testing.T, f *fixture, repo string, d digest.Digest) {
				p, s := f.SignPayload(t, trusted, repo, d)
				f.PushSignature(t, repo, d, p, s)
				f.DeleteBlob(t, repo, digest.FromBytes(p))
			},
			wantSigs: 1, wantReason: "is missing from the registry",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			repo := "staging/app"
			d := f.PushImage(t, repo, "v1")
			tt.setup(t, f, repo, d)
			for _, src := range []struct {
				name string
				s    source.Source
			}{{"local", f.reg.Store().Source()}, {"remote", source.NewRemote(f.Host)}} {
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
	key := vt.NewKey(t)
	d := f.PushImage(t, "app", "v1")
	p, sig := f.SignPayload(t, key, "app", d)
	f.PushSignature(t, "app", d, p, sig)
	f.PushKeyBundle(t, key, "app", d, vt.Statement(t, d, "https://slsa.dev/provenance/v1", `{"buildDefinition":{"buildType":"x","externalParameters":{}},"runDetails":{"builder":{"id":"b"}}}`))
	v, err := verifier.New(verifier.Authority{Name: "release", Keys: []crypto.PublicKey{key.Public()}})
	if err != nil {
		t.Fatal(err)
	}
	subj := verifier.Subject{Repository: "app", Digest: d}
	for _, method := range []string{"Resolve", "Manifest", "Referrers", "Blob"} {
		ev, err := v.Collect(ctx, failingSource{Source: f.reg.Store().Source(), fail: method}, subj)
		if !errors.Is(err, errBackend) || ev != nil {
			t.Errorf("%s failing: Collect = %v, %v; want no evidence and the source's error", method, ev, err)
		}
	}
	ctx2, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := v.Collect(ctx2, f.reg.Store().Source(), subj); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: Collect error = %v", err)
	}
	if _, err := v.Collect(ctx, f.reg.Store().Source(), verifier.Subject{Repository: "app", Digest: "sha256:short"}); err == nil {
		t.Fatal("Collect accepted a malformed digest")
	}
}

func TestNewRejectsBadAuthorities(t *testing.T) {
	if _, err := verifier.New(verifier.Authority{Name: "", Keys: []crypto.PublicKey{vt.NewKey(t).Public()}}); err == nil {
		t.Error("an authority without a name was accepted")
	}
	if _, err := verifier.New(verifier.Authority{Name: "x"}); err == nil {
		t.Error("an authority without keys was accepted")
	}
}
