package gate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/portcullis-dev/portcullis/verifier"
	"github.com/portcullis-dev/portcullis/verifier/source"
)

// fingerprint identifies the evidence stored with repo@d: the manifests
// under cosign's tags and the referrers. Verified evidence is reused only
// while it is unchanged, so a new signature is seen at once. It also
// checks that the image exists.
func fingerprint(ctx context.Context, src source.Source, repo string, d digest.Digest) (string, error) {
	if _, err := src.Manifest(ctx, repo, d); err != nil {
		if errors.Is(err, source.ErrNotFound) {
			return "", fmt.Errorf("image %s@%s does not exist", repo, d)
		}
		return "", err
	}
	h := sha256.New()
	for _, suffix := range source.CosignSuffixes() {
		td, err := src.Resolve(ctx, repo, source.CosignTag(d, suffix))
		if err != nil && !errors.Is(err, source.ErrNotFound) {
			return "", err
		}
		fmt.Fprintf(h, "%s=%s\n", suffix, td)
	}
	refs, err := src.Referrers(ctx, repo, d)
	if err != nil && !errors.Is(err, source.ErrNotFound) {
		return "", err
	}
	for _, r := range refs {
		fmt.Fprintf(h, "ref=%s\n", r.Digest)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// evidenceFingerprint identifies the evidence stored with repo@d, as
// [fingerprint] does, leaving out the verification summaries (the gate's
// own, written after the evidence it summarises was verified): a VSA binds
// the evidence it carries to it. refs are repo@d's referrers.
func evidenceFingerprint(ctx context.Context, src source.Source, repo string, d digest.Digest, refs []ocispec.Descriptor) (string, error) {
	if _, err := src.Manifest(ctx, repo, d); err != nil {
		if errors.Is(err, source.ErrNotFound) {
			return "", fmt.Errorf("image %s@%s does not exist", repo, d)
		}
		return "", err
	}
	h := sha256.New()
	for _, suffix := range source.CosignSuffixes() {
		td, err := src.Resolve(ctx, repo, source.CosignTag(d, suffix))
		if err != nil && !errors.Is(err, source.ErrNotFound) {
			return "", err
		}
		fmt.Fprintf(h, "%s=%s\n", suffix, td)
	}
	ds := make([]string, 0, len(refs))
	for _, r := range refs {
		if !isVSA(r) {
			ds = append(ds, r.Digest.String())
		}
	}
	slices.Sort(ds)
	for _, r := range ds {
		fmt.Fprintf(h, "ref=%s\n", r)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// evidenceCache keeps verified evidence by (trust revision, repository,
// digest), valid for one fingerprint and at most ttl.
type evidenceCache struct {
	mu      sync.Mutex
	max     int
	ttl     time.Duration
	now     func() time.Time
	entries map[string]cacheEntry
}

type cacheEntry struct {
	fp    string
	ev    *verifier.Evidence
	added time.Time
}

func newEvidenceCache(max int, ttl time.Duration, now func() time.Time) *evidenceCache {
	return &evidenceCache{max: max, ttl: ttl, now: now, entries: map[string]cacheEntry{}}
}

func (c *evidenceCache) get(trust, repo string, d digest.Digest, fp string) (*verifier.Evidence, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[trust+" "+repo+"@"+d.String()]
	if !ok || e.fp != fp || c.now().Sub(e.added) > c.ttl {
		return nil, false
	}
	return e.ev, true
}

func (c *evidenceCache) put(trust, repo string, d digest.Digest, fp string, ev *verifier.Evidence) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		// Evict the oldest entry: O(n), and n is bounded.
		var oldest string
		var at time.Time
		for k, e := range c.entries {
			if oldest == "" || e.added.Before(at) {
				oldest, at = k, e.added
			}
		}
		delete(c.entries, oldest)
	}
	c.entries[trust+" "+repo+"@"+d.String()] = cacheEntry{fp: fp, ev: ev, added: c.now()}
}
