package metadatatest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/registry/metadata"
)

func testTags(t *testing.T, open func(t *testing.T) metadata.Store) {
	s := open(t)
	ctx := t.Context()
	m := image("repo", "m", linkBlob(t, s, "repo", "config"))
	put(t, s, m, "v1")
	put(t, s, m, "v2")

	_, err := s.ResolveTag(ctx, "repo", "v3")
	wantNotFound(t, "ResolveTag of an unknown tag", err)
	_, err = s.ResolveTag(ctx, "other", "v1")
	wantNotFound(t, "ResolveTag in another repository", err)
	wantNotFound(t, "DeleteTag in another repository", s.DeleteTag(ctx, "other", "v1"))

	if err := s.DeleteTag(ctx, "repo", "v1"); err != nil {
		t.Fatalf("DeleteTag: %v", err)
	}
	_, err = s.ResolveTag(ctx, "repo", "v1")
	wantNotFound(t, "ResolveTag after DeleteTag", err)
	wantNotFound(t, "second DeleteTag", s.DeleteTag(ctx, "repo", "v1"))
	wantResolve(t, s, "repo", "v2", m.Digest)
	// Deleting a tag keeps the manifest.
	if _, err := s.GetManifest(ctx, "repo", m.Digest); err != nil {
		t.Fatalf("GetManifest after DeleteTag: %v", err)
	}
}

func testListTags(t *testing.T, open func(t *testing.T) metadata.Store) {
	s := open(t)
	m := image("repo", "m", linkBlob(t, s, "repo", "config"))
	for _, tag := range []string{"v2", "a", "v10", "b"} {
		put(t, s, m, tag)
	}
	other := image("other", "m", linkBlob(t, s, "other", "config"))
	put(t, s, other, "aa") // sorts between the tags of repo

	tests := []struct {
		name string
		last string
		n    int
		want []string
	}{
		{"all", "", -1, []string{"a", "b", "v10", "v2"}},
		{"first page", "", 2, []string{"a", "b"}},
		{"second page", "b", 2, []string{"v10", "v2"}},
		{"past the end", "v2", 2, nil},
		{"last is not a tag", "c", -1, []string{"v10", "v2"}},
		{"n above the count", "", 10, []string{"a", "b", "v10", "v2"}},
		{"n zero", "", 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.ListTags(t.Context(), "repo", tt.last, tt.n)
			if err != nil {
				t.Fatalf("ListTags: %v", err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("ListTags(last=%q, n=%d) = %q, want %q", tt.last, tt.n, got, tt.want)
			}
		})
	}
}

func testListTagsNotFound(t *testing.T, open func(t *testing.T) metadata.Store) {
	s := open(t)
	put(t, s, image("repo", "m", linkBlob(t, s, "repo", "config")), "v1")
	for _, repo := range []string{"unknown", "rep", "repo/sub"} {
		_, err := s.ListTags(t.Context(), repo, "", -1)
		wantNotFound(t, "ListTags("+repo+")", err)
	}
}

func testListRepositories(t *testing.T, open func(t *testing.T) metadata.Store) {
	s := open(t)
	linkBlob(t, s, "beta", "config")
	put(t, s, image("alpha/one", "m", linkBlob(t, s, "alpha/one", "config")), "v1")
	linkBlob(t, s, "alpha", "config")
	linkBlob(t, s, "gamma/x/y", "config")

	tests := []struct {
		name string
		last string
		n    int
		want []string
	}{
		{"all", "", -1, []string{"alpha", "alpha/one", "beta", "gamma/x/y"}},
		{"first page", "", 2, []string{"alpha", "alpha/one"}},
		{"second page", "alpha/one", 2, []string{"beta", "gamma/x/y"}},
		{"past the end", "gamma/x/y", 2, nil},
		{"last is not a repository", "b", -1, []string{"beta", "gamma/x/y"}},
		{"n zero", "", 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.ListRepositories(t.Context(), tt.last, tt.n)
			if err != nil {
				t.Fatalf("ListRepositories: %v", err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("ListRepositories(last=%q, n=%d) = %q, want %q", tt.last, tt.n, got, tt.want)
			}
		})
	}
	// The optional capability lists only the repositories holding a
	// manifest (the catalog's).
	mr, ok := s.(metadata.ManifestRepositories)
	if !ok {
		return
	}
	put(t, s, image("gamma/x/y", "m2", linkBlob(t, s, "gamma/x/y", "config")), "v1")
	for _, tt := range []struct {
		last string
		n    int
		want []string
	}{
		{"", -1, []string{"alpha/one", "gamma/x/y"}},
		{"", 1, []string{"alpha/one"}},
		{"alpha/one", 5, []string{"gamma/x/y"}},
	} {
		got, err := mr.ListManifestRepositories(t.Context(), tt.last, tt.n)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("ListManifestRepositories(last=%q, n=%d) = %q, %v; want %q", tt.last, tt.n, got, err, tt.want)
		}
	}
}

// descendingReferrers returns n referrers of subject in repo whose digests
// sort in descending order, so that a store ordering by digest rather than
// by age fails.
func descendingReferrers(repo string, subject digest.Digest, n int) []*metadata.Manifest {
	var out []*metadata.Manifest
	for i := 0; len(out) < n; i++ {
		m := image(repo, fmt.Sprintf("referrer-%d", i))
		if len(out) > 0 && m.Digest >= out[len(out)-1].Digest {
			continue
		}
		m.Subject = subject
		m.ArtifactType = fmt.Sprintf("application/vnd.example.%d", len(out))
		m.Annotations = map[string]string{"n": fmt.Sprint(len(out))}
		out = append(out, m)
	}
	return out
}

func testReferrers(t *testing.T, open func(t *testing.T) metadata.Store) {
	s := open(t)
	ctx := t.Context()
	// The subject need not exist (OCI 1.1 allows pushing referrers first).
	subject := digest.FromString("subject")
	refs := descendingReferrers("repo", subject, 3)
	for _, m := range refs {
		put(t, s, m, "")
		// Separate the creation times even on stores with coarse clocks.
		time.Sleep(2 * time.Millisecond)
	}
	elsewhere := image("other", "elsewhere")
	elsewhere.Subject = subject
	put(t, s, elsewhere, "")
	unrelated := image("repo", "unrelated")
	unrelated.Subject = digest.FromString("another subject")
	put(t, s, unrelated, "")
	put(t, s, image("repo", "no subject"), "")
	// Re-pushing the oldest referrer does not make it newer.
	put(t, s, refs[0], "")

	check := func(t *testing.T, repo string, want ...*metadata.Manifest) {
		t.Helper()
		got, err := s.Referrers(ctx, repo, subject)
		if err != nil {
			t.Fatalf("Referrers(%s): %v", repo, err)
		}
		if len(got) != len(want) {
			t.Fatalf("Referrers(%s) = %v, want %d descriptors", repo, got, len(want))
		}
		for i, m := range want {
			if !sameDescriptor(got[i], m.Descriptor()) {
				t.Errorf("Referrers(%s)[%d] = %+v, want %+v", repo, i, got[i], m.Descriptor())
			}
		}
	}
	t.Run("oldest first", func(t *testing.T) { check(t, "repo", refs...) })
	t.Run("per repository", func(t *testing.T) { check(t, "other", elsewhere) })
	t.Run("no referrers", func(t *testing.T) {
		got, err := s.Referrers(ctx, "repo", digest.FromString("nothing refers to this"))
		if err != nil || len(got) != 0 {
			t.Fatalf("Referrers = %v, %v; want none, nil", got, err)
		}
	})
	t.Run("deleted referrer", func(t *testing.T) {
		if err := s.DeleteManifest(ctx, "repo", refs[1].Digest); err != nil {
			t.Fatalf("DeleteManifest: %v", err)
		}
		check(t, "repo", refs[0], refs[2])
	})
}
