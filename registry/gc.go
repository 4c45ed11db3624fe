package registry

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/time/rate"

	"github.com/portcullis-dev/portcullis/internal/yamltypes"
	"github.com/portcullis-dev/portcullis/policy/contract"
	"github.com/portcullis-dev/portcullis/registry/blobstore"
	"github.com/portcullis-dev/portcullis/registry/metadata"
)

// GCOptions configure a garbage collection.
type GCOptions struct {
	// GracePeriod: nothing created, linked or tagged more recently is
	// collected, so pushes in flight (blobs uploaded, manifest not yet
	// put) are safe. Zero protects nothing (callers choose the default:
	// portcullis uses 24h unless gc.gracePeriod says otherwise).
	GracePeriod time.Duration
	// UploadMaxAge: upload sessions started longer ago are abandoned and
	// removed with their bytes. Default 24h.
	UploadMaxAge time.Duration
	// DryRun plans and reports without deleting anything.
	DryRun bool
	// Rate caps deletions per second (0: no cap), so a large collection
	// does not starve the registry's own database traffic.
	Rate float64
	// Retention rules untag old tags before marking (see RetentionRule).
	Retention []RetentionRule
	// Admitted reports whether d was admitted since the time given (the
	// audit log answers it); needed by rules with KeepAdmittedWithin.
	Admitted func(ctx context.Context, d digest.Digest, since time.Time) (bool, error)
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// RetentionRule says which tags of the repositories in Namespace (the
// repository itself or any below it) to keep; the others are deleted by
// the collector. A tag is kept if any clause keeps it.
type RetentionRule struct {
	Namespace string `json:"namespace"`
	// KeepLast keeps the N most recently written tags of each repository.
	KeepLast int `json:"keepLast"`
	// KeepPattern keeps tags whose whole name matches this regular expression.
	KeepPattern string `json:"keepPattern,omitempty"`
	// KeepAdmittedWithin keeps tags whose image was admitted to a
	// Kubernetes cluster within this long.
	KeepAdmittedWithin yamltypes.Duration `json:"keepAdmittedWithin,omitempty"`
}

// GCReport says what a collection deleted (or, dry, would delete).
type GCReport struct {
	DryRun    bool          `json:"dryRun"`
	Tags      []string      `json:"tags"`      // repo:tag
	Manifests []string      `json:"manifests"` // repo@digest
	Links     []string      `json:"links"`     // repo@digest
	Blobs     []string      `json:"blobs"`     // digest
	Uploads   []string      `json:"uploads"`   // id
	Bytes     int64         `json:"bytes"`     // blob bytes reclaimed
	Skipped   int           `json:"skipped"`   // planned deletions a concurrent write prevented
	Duration  time.Duration `json:"duration"`
}

// ErrGCUnsupported: the metadata store cannot collect garbage.
var ErrGCUnsupported = errors.New("the metadata store does not support garbage collection")

type repoDigest struct {
	repo string
	d    digest.Digest
}

// gcPlan is what a collection deletes, computed from one snapshot.
type gcPlan struct {
	tags      []metadata.GCTag
	manifests []repoDigest
	links     []repoDigest
	blobs     []metadata.GCBlob
	uploads   []metadata.Upload
}

// CollectGarbage deletes what nothing references, online: it marks from a
// consistent snapshot of the metadata (tags and anything younger than the
// grace period are roots; an index keeps its children, a manifest its
// referrers and blobs), then deletes the rest one item at a time, each
// re-checked in its own transaction, so that pushes and pulls go on and a
// push that races the collector wins. A dry run reports the same plan.
func (r *Registry) CollectGarbage(ctx context.Context, opts GCOptions) (*GCReport, error) {
	col, ok := r.meta.(metadata.Collector)
	if !ok {
		return nil, ErrGCUnsupported
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.GracePeriod < 0 {
		return nil, fmt.Errorf("gc: grace period %s is negative", opts.GracePeriod)
	}
	for _, rule := range opts.Retention {
		if err := rule.Validate(); err != nil {
			return nil, err
		}
	}
	if opts.UploadMaxAge <= 0 {
		opts.UploadMaxAge = 24 * time.Hour
	}
	start := opts.Now()
	snap, err := col.GCSnapshot(ctx)
	if err != nil {
		return nil, err
	}
	plan, err := planGC(ctx, snap, opts, start)
	if err != nil {
		return nil, err
	}
	rep := &GCReport{DryRun: opts.DryRun}
	if opts.DryRun {
		rep.fill(plan)
		rep.Duration = opts.Now().Sub(start)
		return rep, nil
	}
	limit := rate.NewLimiter(rate.Inf, 1)
	if opts.Rate > 0 {
		limit = rate.NewLimiter(rate.Limit(opts.Rate), 1)
	}
	cutoff := start.Add(-opts.GracePeriod)
	do := func(f func() (bool, error)) (bool, error) {
		if err := limit.Wait(ctx); err != nil {
			return false, err
		}
		ok, err := f()
		if err == nil && !ok {
			rep.Skipped++
		}
		return ok, err
	}
	for _, t := range plan.tags {
		ok, err := do(func() (bool, error) { return col.DeleteTagIfAt(ctx, t.Repository, t.Name, t.Digest) })
		if err != nil {
			return rep, err
		}
		if ok {
			rep.Tags = append(rep.Tags, t.Repository+":"+t.Name)
		}
	}
	// Parents before children and subjects before referrers: a manifest
	// refused because one of those still exists is tried again next round.
	todo := plan.manifests
	for len(todo) > 0 {
		var again []repoDigest
		for _, m := range todo {
			if err := limit.Wait(ctx); err != nil {
				return rep, err
			}
			ok, err := col.DeleteManifestIfUnreferenced(ctx, m.repo, m.d, cutoff)
			if err != nil {
				return rep, err
			}
			if ok {
				rep.Manifests = append(rep.Manifests, m.repo+"@"+m.d.String())
			} else {
				again = append(again, m)
			}
		}
		if len(again) == len(todo) {
			rep.Skipped += len(again)
			break
		}
		todo = again
	}
	for _, l := range plan.links {
		ok, err := do(func() (bool, error) { return col.UnlinkBlobIfUnreferenced(ctx, l.repo, l.d, cutoff) })
		if err != nil {
			return rep, err
		}
		if ok {
			rep.Links = append(rep.Links, l.repo+"@"+l.d.String())
		}
	}
	for _, b := range plan.blobs {
		ok, err := do(func() (bool, error) {
			return col.DeleteBlobIfUnlinked(ctx, b.Digest, cutoff, func(ctx context.Context) error {
				if err := r.blobs.Delete(ctx, b.Digest); err != nil && !errors.Is(err, blobstore.ErrNotFound) {
					return err
				}
				return nil
			})
		})
		if err != nil {
			return rep, err
		}
		if ok {
			rep.Blobs = append(rep.Blobs, b.Digest.String())
			rep.Bytes += b.Size
		}
	}
	uploadCutoff := start.Add(-opts.UploadMaxAge)
	for _, u := range plan.uploads {
		ok, err := do(func() (bool, error) { return col.DeleteUploadIfBefore(ctx, u.ID, uploadCutoff) })
		if err != nil {
			return rep, err
		}
		if ok {
			if err := r.blobs.Cancel(ctx, u.ID); err != nil {
				return rep, err
			}
			rep.Uploads = append(rep.Uploads, u.ID)
		}
	}
	rep.Duration = opts.Now().Sub(start)
	return rep, nil
}

func (rep *GCReport) fill(p *gcPlan) {
	for _, t := range p.tags {
		rep.Tags = append(rep.Tags, t.Repository+":"+t.Name)
	}
	for _, m := range p.manifests {
		rep.Manifests = append(rep.Manifests, m.repo+"@"+m.d.String())
	}
	for _, l := range p.links {
		rep.Links = append(rep.Links, l.repo+"@"+l.d.String())
	}
	for _, b := range p.blobs {
		rep.Blobs = append(rep.Blobs, b.Digest.String())
		rep.Bytes += b.Size
	}
	for _, u := range p.uploads {
		rep.Uploads = append(rep.Uploads, u.ID)
	}
}

// retainedTags returns the tags the retention rules delete.
func retainedTags(ctx context.Context, tags []metadata.GCTag, opts GCOptions, now time.Time) ([]metadata.GCTag, error) {
	var drop []metadata.GCTag
	byRepo := map[string][]metadata.GCTag{}
	for _, t := range tags {
		byRepo[t.Repository] = append(byRepo[t.Repository], t)
	}
	for _, rule := range opts.Retention {
		pattern, err := rule.pattern()
		if err != nil {
			return nil, err
		}
		for repo, ts := range byRepo {
			if !contract.InNamespace(repo, rule.Namespace) {
				continue
			}
			slices.SortFunc(ts, func(a, b metadata.GCTag) int {
				return cmp.Or(b.UpdatedAt.Compare(a.UpdatedAt), strings.Compare(a.Name, b.Name))
			})
			for i, t := range ts {
				if i < rule.KeepLast || (pattern != nil && pattern.MatchString(t.Name)) {
					continue
				}
				if rule.KeepAdmittedWithin > 0 {
					if opts.Admitted == nil {
						return nil, fmt.Errorf("retention rule for %s keeps admitted images, but no decision history is available", rule.Namespace)
					}
					ok, err := opts.Admitted(ctx, t.Digest, now.Add(-rule.KeepAdmittedWithin.D()))
					if err != nil {
						return nil, fmt.Errorf("retention: was %s admitted: %w", t.Digest, err)
					}
					if ok {
						continue
					}
				}
				drop = append(drop, t)
			}
			delete(byRepo, repo) // the first rule that names a repository decides it
		}
	}
	return drop, nil
}

// planGC marks and sweeps snap, in memory.
func planGC(ctx context.Context, snap *metadata.GCSnapshot, opts GCOptions, now time.Time) (*gcPlan, error) {
	cutoff := now.Add(-opts.GracePeriod)
	plan := &gcPlan{}
	drop, err := retainedTags(ctx, snap.Tags, opts, now)
	if err != nil {
		return nil, err
	}
	plan.tags = drop
	dropped := map[metadata.GCTag]bool{}
	for _, t := range drop {
		dropped[t] = true
	}

	exists := map[repoDigest]metadata.GCManifest{}
	for _, m := range snap.Manifests {
		exists[repoDigest{m.Repository, m.Digest}] = m
	}
	children := map[repoDigest][]digest.Digest{}
	blobsOf := map[repoDigest][]digest.Digest{}
	for _, f := range snap.Refs {
		k := repoDigest{f.Repository, f.Manifest}
		if f.Kind == 1 {
			children[k] = append(children[k], f.Ref)
		} else {
			blobsOf[k] = append(blobsOf[k], f.Ref)
		}
	}
	referrers := map[repoDigest][]digest.Digest{}
	for _, m := range snap.Manifests {
		if m.Subject != "" {
			k := repoDigest{m.Repository, m.Subject}
			referrers[k] = append(referrers[k], m.Digest)
		}
	}

	// Mark: roots are tagged manifests and those inside the grace period.
	live := map[repoDigest]bool{}
	var work []repoDigest
	mark := func(k repoDigest) {
		if _, ok := exists[k]; ok && !live[k] {
			live[k] = true
			work = append(work, k)
		}
	}
	for _, t := range snap.Tags {
		if !dropped[t] {
			mark(repoDigest{t.Repository, t.Digest})
		}
	}
	for _, m := range snap.Manifests {
		if !m.CreatedAt.Before(cutoff) {
			mark(repoDigest{m.Repository, m.Digest})
		}
	}
	for len(work) > 0 {
		k := work[len(work)-1]
		work = work[:len(work)-1]
		for _, c := range children[k] {
			mark(repoDigest{k.repo, c})
		}
		for _, ref := range referrers[k] {
			mark(repoDigest{k.repo, ref})
		}
	}
	for _, m := range snap.Manifests {
		k := repoDigest{m.Repository, m.Digest}
		if !live[k] {
			plan.manifests = append(plan.manifests, k)
		}
	}
	sortRD(plan.manifests)

	liveLink := map[repoDigest]bool{}
	for k := range live {
		for _, b := range blobsOf[k] {
			liveLink[repoDigest{k.repo, b}] = true
		}
	}
	linked := map[digest.Digest]bool{}
	for _, l := range snap.Links {
		k := repoDigest{l.Repository, l.Digest}
		if liveLink[k] || !l.CreatedAt.Before(cutoff) {
			linked[l.Digest] = true
			continue
		}
		plan.links = append(plan.links, k)
	}
	sortRD(plan.links)
	for _, b := range snap.Blobs {
		if !linked[b.Digest] && b.CreatedAt.Before(cutoff) {
			plan.blobs = append(plan.blobs, b)
		}
	}
	slices.SortFunc(plan.blobs, func(a, b metadata.GCBlob) int { return strings.Compare(a.Digest.String(), b.Digest.String()) })
	uploadCutoff := now.Add(-opts.UploadMaxAge)
	for _, u := range snap.Uploads {
		if u.StartedAt.Before(uploadCutoff) {
			plan.uploads = append(plan.uploads, u)
		}
	}
	return plan, nil
}

func sortRD(s []repoDigest) {
	slices.SortFunc(s, func(a, b repoDigest) int {
		return cmp.Or(strings.Compare(a.repo, b.repo), strings.Compare(a.d.String(), b.d.String()))
	})
}

// Validate reports a rule that cannot take effect: no namespace, a
// negative count or age, or a keepPattern that is not a regular
// expression. portcullis checks its rules at start, so a typo never
// turns retention off quietly.
func (rule RetentionRule) Validate() error {
	if rule.Namespace == "" {
		return errors.New("retention rule: namespace is required")
	}
	if rule.KeepLast < 0 || rule.KeepAdmittedWithin < 0 {
		return fmt.Errorf("retention rule for %s: keepLast and keepAdmittedWithin must not be negative", rule.Namespace)
	}
	_, err := rule.pattern()
	return err
}

// pattern compiles KeepPattern to match whole tag names (nil: none).
func (rule RetentionRule) pattern() (*regexp.Regexp, error) {
	if rule.KeepPattern == "" {
		return nil, nil
	}
	p, err := regexp.Compile("^(?:" + rule.KeepPattern + ")$")
	if err != nil {
		return nil, fmt.Errorf("retention rule for %s: keepPattern %q: %w", rule.Namespace, rule.KeepPattern, err)
	}
	return p, nil
}
