package metadatatest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/registry/metadata"
)

func testUploads(t *testing.T, open func(t *testing.T) metadata.Store) {
	s := open(t)
	ctx := t.Context()
	a := metadata.Upload{ID: "8b1a9953-c461-4a1c-9f5e-3e3b8c8e0001", Repository: "a/b", StartedAt: time.Unix(1700000000, 123000000)}
	b := metadata.Upload{ID: "8b1a9953-c461-4a1c-9f5e-3e3b8c8e0002", Repository: "c", StartedAt: time.Unix(1700000001, 0)}

	_, err := s.GetUpload(ctx, a.ID)
	wantNotFound(t, "GetUpload before CreateUpload", err)
	for _, u := range []metadata.Upload{a, b} {
		if err := s.CreateUpload(ctx, u); err != nil {
			t.Fatalf("CreateUpload(%s): %v", u.ID, err)
		}
	}
	for _, u := range []metadata.Upload{a, b} {
		got, err := s.GetUpload(ctx, u.ID)
		if err != nil {
			t.Fatalf("GetUpload(%s): %v", u.ID, err)
		}
		if got.ID != u.ID || got.Repository != u.Repository || !got.StartedAt.Equal(u.StartedAt) {
			t.Errorf("GetUpload(%s) = %+v, want %+v", u.ID, got, u)
		}
	}
	if err := s.DeleteUpload(ctx, a.ID); err != nil {
		t.Fatalf("DeleteUpload: %v", err)
	}
	_, err = s.GetUpload(ctx, a.ID)
	wantNotFound(t, "GetUpload after DeleteUpload", err)
	wantNotFound(t, "second DeleteUpload", s.DeleteUpload(ctx, a.ID))
	if _, err := s.GetUpload(ctx, b.ID); err != nil {
		t.Fatalf("GetUpload of the other upload after DeleteUpload: %v", err)
	}
}

// putAll runs PutManifest for every manifest at once and returns the errors.
func putAll(ctx context.Context, s metadata.Store, ms []*metadata.Manifest, tag string) []error {
	errs := make([]error, len(ms))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, m := range ms {
		wg.Go(func() {
			<-start
			errs[i] = s.PutManifest(ctx, m, metadata.PutManifestOptions{Tag: tag})
		})
	}
	close(start)
	wg.Wait()
	return errs
}

func testConcurrentPutOneTag(t *testing.T, open func(t *testing.T) metadata.Store) {
	s := open(t)
	ctx := t.Context()
	cfg := linkBlob(t, s, "repo", "config")
	ms := make([]*metadata.Manifest, 32)
	for i := range ms {
		ms[i] = image("repo", fmt.Sprint(i), cfg)
	}
	for i, err := range putAll(ctx, s, ms, "latest") {
		if err != nil {
			t.Errorf("PutManifest #%d: %v", i, err)
		}
	}
	got, err := s.ResolveTag(ctx, "repo", "latest")
	if err != nil {
		t.Fatalf("ResolveTag: %v", err)
	}
	if !slices.ContainsFunc(ms, func(m *metadata.Manifest) bool { return m.Digest == got }) {
		t.Fatalf("latest points at %s, none of the pushed manifests", got)
	}
	for _, m := range ms {
		if _, err := s.GetManifest(ctx, "repo", m.Digest); err != nil {
			t.Errorf("GetManifest(%s): %v", m.Digest, err)
		}
	}
	wantTags(t, s, "repo", "latest")
}

func testConcurrentPutSameManifest(t *testing.T, open func(t *testing.T) metadata.Store) {
	s := open(t)
	ctx := t.Context()
	m := image("repo", "m", linkBlob(t, s, "repo", "config"))
	m.Subject = digest.FromString("subject")
	ms := make([]*metadata.Manifest, 16)
	for i := range ms {
		c := *m
		ms[i] = &c
	}
	for i, err := range putAll(ctx, s, ms, "v1") {
		if err != nil {
			t.Errorf("PutManifest #%d: %v", i, err)
		}
	}
	wantResolve(t, s, "repo", "v1", m.Digest)
	refs, err := s.Referrers(ctx, "repo", m.Subject)
	if err != nil || len(refs) != 1 {
		t.Fatalf("Referrers = %v, %v; want one descriptor", refs, err)
	}
}
