package main

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/verifier/source"
)

// fakeStore records which repositories were read; it holds nothing.
type fakeStore struct{ read []string }

var errEmpty = errors.New("empty store")

func (f *fakeStore) Resolve(_ context.Context, repo, _ string) (digest.Digest, error) {
	f.read = append(f.read, repo)
	return "", errEmpty
}

func (f *fakeStore) Manifest(_ context.Context, repo string, _ digest.Digest) (source.Manifest, error) {
	f.read = append(f.read, repo)
	return source.Manifest{}, errEmpty
}

func (f *fakeStore) Referrers(context.Context, string, digest.Digest) ([]ocispec.Descriptor, error) {
	return nil, errEmpty
}

func (f *fakeStore) Blob(context.Context, string, digest.Digest) ([]byte, error) {
	return nil, errEmpty
}

// The in-process read (no access control) is taken only for a reference
// no pusher can move: by digest, or by tag in a protected namespace. A tag
// elsewhere is refused before the store is read.
func TestBundleImagesLocalRule(t *testing.T) {
	t.Parallel()
	d := "sha256:" + strings.Repeat("a", 64)
	gc := gate.DefaultConfig()
	tests := []struct {
		name, ref string
		refused   bool
	}{
		{"staging tag", "localhost:5000/staging/policies:v1", true},
		{"unprotected tag", "localhost:5000/policies/prod:v3", true},
		{"unprotected tag by listen address", "127.0.0.1:5000/policies/prod:latest", true},
		{"a prefix that is not the namespace", "localhost:5000/production/policies:v1", true},
		{"pinned by digest", "localhost:5000/staging/policies@" + d, false},
		{"tag in a protected namespace", "localhost:5000/prod/policies:v3", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			store := &fakeStore{}
			b := &bundleImages{local: localHosts("0.0.0.0:5000"), store: store, protected: gc.IsProtected}
			_, err := b.Image(t.Context(), tt.ref)
			switch {
			case err == nil:
				t.Fatal("read from an empty store")
			case tt.refused && (!strings.Contains(err.Error(), "pin the reference by digest") || len(store.read) != 0):
				t.Errorf("%s: %v (store read %v), want refused before reading", tt.ref, err, store.read)
			case !tt.refused && (!errors.Is(err, errEmpty) || len(store.read) == 0):
				t.Errorf("%s: %v, want it read from the store", tt.ref, err)
			}
		})
	}
}
