package gate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/verifier/source"
)

// ManifestWrite is a manifest PUT into a protected repository.
type ManifestWrite struct {
	Repository string
	// Tag is the tag the PUT names, "" for a PUT by digest.
	Tag    string
	Digest digest.Digest
	// Subject is the manifest's subject (OCI 1.1 referrers), if any.
	Subject digest.Digest
	Actor   policy.Request
}

// Plan is what the registry does for an allowed write.
type Plan struct {
	// Direct: store the manifest as pushed (evidence about an image
	// already in the repository).
	Direct bool
	// Otherwise: link Manifests (children first) and set Tags, from From
	// into To, in one transaction.
	From, To  string
	Manifests []digest.Digest
	Tags      []TagUpdate
	// Subject is the promoted image; Decision the gate's decision on it.
	Subject  digest.Digest
	Decision *Decision
}

// TagUpdate points a tag at a digest.
type TagUpdate struct {
	Name      string
	Digest    digest.Digest
	Immutable bool
}

// DeniedError is a write the gate refuses. Its message is written for the
// person reading the client's output.
type DeniedError struct {
	Message  string
	Decision *Decision // nil when no policy was asked
}

func (e *DeniedError) Error() string { return e.Message }

// cosignTagRE matches the tags cosign keeps evidence under.
var cosignTagRE = regexp.MustCompile(`^(sha256)-([0-9a-f]{64})(\.(sig|att|sbom))?$`)

// Protected reports whether repo is written only through the gate.
func (g *Gate) Protected(repo string) bool { return g.cfg.protected(repo) != nil }

// MutableTags reports whether the tags of protected repo may move.
func (g *Gate) MutableTags(repo string) bool {
	ns := g.cfg.protected(repo)
	return ns != nil && ns.MutableTags
}

// AuthorizeManifest decides on a manifest PUT into a protected repository:
// evidence about an image already there is stored as is; an image is
// promoted (with its evidence) from the staging repository holding it when
// policy allows; anything else is denied.
func (g *Gate) AuthorizeManifest(ctx context.Context, w ManifestWrite) (*Plan, error) {
	ns := g.cfg.protected(w.Repository)
	if ns == nil {
		return &Plan{Direct: true}, nil
	}
	src := g.o.Store.Source()
	subject := w.Subject
	if m := cosignTagRE.FindStringSubmatch(w.Tag); subject == "" && m != nil {
		subject = digest.NewDigestFromEncoded(digest.SHA256, m[2])
	}
	if subject != "" {
		if _, err := src.Manifest(ctx, w.Repository, subject); err != nil {
			if errors.Is(err, source.ErrNotFound) {
				return nil, &DeniedError{Message: fmt.Sprintf("%s is protected: evidence for %s can only be added once that image was promoted here", w.Repository, subject)}
			}
			return nil, err
		}
		return &Plan{Direct: true}, nil
	}
	if err := g.checkTag(ctx, ns, w.Repository, w.Tag, w.Digest); err != nil {
		return nil, err
	}
	from, err := g.sourceRepository(ctx, ns, w.Repository, w.Digest)
	if err != nil {
		return nil, err
	}
	if from == "" {
		d := g.Evaluate(ctx, Request{Action: policy.ActionPush, Repository: w.Repository, Digest: w.Digest, Tag: w.Tag,
			Target: registryTarget(w.Repository, w.Tag), Actor: w.Actor})
		if !d.Allow {
			return nil, g.denied(d, fmt.Sprintf("%s was never pushed to a namespace that may be promoted to %s (%s): push it there, sign it, then promote it",
				w.Digest, ns.Prefix, strings.Join(ns.From, ", ")))
		}
		return &Plan{Direct: true, Decision: d, Subject: w.Digest}, nil
	}
	// A platform manifest of an index is promoted with its index: it is
	// decided on the index's evidence (clients push children first).
	if w.Tag == "" {
		parents, err := g.o.Store.ManifestParents(ctx, from, w.Digest)
		if err != nil {
			return nil, err
		}
		var last *Decision
		for _, p := range parents {
			last = g.Evaluate(ctx, Request{Action: policy.ActionPromote, Repository: from, Digest: p,
				Target: registryTarget(w.Repository, ""), Actor: w.Actor})
			if last.Allow {
				return &Plan{From: from, To: w.Repository, Manifests: []digest.Digest{w.Digest}, Subject: w.Digest, Decision: last}, nil
			}
		}
		if last != nil {
			return nil, g.denied(last, "")
		}
	}
	return g.promote(ctx, ns, from, w.Digest, w.Repository, w.Tag, w.Actor, false)
}

// AuthorizePromotion decides on promoting from@d to to:tag server-side
// (`portcullis promote`): the plan links the image, its children, its
// evidence and the tag.
func (g *Gate) AuthorizePromotion(ctx context.Context, from string, d digest.Digest, to, tag string, actor policy.Request) (*Plan, error) {
	ns := g.cfg.protected(to)
	if ns == nil {
		return nil, &DeniedError{Message: fmt.Sprintf("%s is not a protected namespace: push to it directly", to)}
	}
	if !matchesAny(from, ns.From) {
		return nil, &DeniedError{Message: fmt.Sprintf("%s may be promoted only from %s, not from %s", ns.Prefix, strings.Join(ns.From, ", "), from)}
	}
	if err := g.checkTag(ctx, ns, to, tag, d); err != nil {
		return nil, err
	}
	return g.promote(ctx, ns, from, d, to, tag, actor, true)
}

func (g *Gate) promote(ctx context.Context, ns *Protected, from string, d digest.Digest, to, tag string, actor policy.Request, withChildren bool) (*Plan, error) {
	dec := g.Evaluate(ctx, Request{Action: policy.ActionPromote, Repository: from, Digest: d, Tag: tag,
		Target: registryTarget(to, tag), Actor: actor})
	if !dec.Allow {
		return nil, g.denied(dec, "")
	}
	p := &Plan{From: from, To: to, Subject: d, Decision: dec}
	src := g.o.Store.Source()
	if withChildren {
		children, err := childManifests(ctx, src, from, d)
		if err != nil {
			return nil, err
		}
		p.Manifests = append(p.Manifests, children...)
	}
	p.Manifests = append(p.Manifests, d)
	if tag != "" {
		p.Tags = append(p.Tags, TagUpdate{Name: tag, Digest: d, Immutable: !ns.MutableTags})
	}
	// The evidence goes with the image: referrers, and cosign's tags.
	refs, err := src.Referrers(ctx, from, d)
	if err != nil && !errors.Is(err, source.ErrNotFound) {
		return nil, err
	}
	for _, r := range refs {
		p.Manifests = append(p.Manifests, r.Digest)
	}
	for _, suffix := range []string{"sig", "att", "sbom"} {
		t := d.Algorithm().String() + "-" + d.Encoded() + "." + suffix
		td, err := src.Resolve(ctx, from, t)
		if errors.Is(err, source.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		p.Manifests = append(p.Manifests, td)
		p.Tags = append(p.Tags, TagUpdate{Name: t, Digest: td})
	}
	return p, nil
}

// childManifests lists the manifests an index references.
func childManifests(ctx context.Context, src source.Source, repo string, d digest.Digest) ([]digest.Digest, error) {
	m, err := src.Manifest(ctx, repo, d)
	if err != nil {
		return nil, err
	}
	var idx ocispec.Index
	if json.Unmarshal(m.Content, &idx) != nil {
		return nil, nil
	}
	var out []digest.Digest
	for _, c := range idx.Manifests {
		out = append(out, c.Digest)
	}
	return out, nil
}

// checkTag refuses to move an immutable production tag before any policy
// is asked: the answer would not change.
func (g *Gate) checkTag(ctx context.Context, ns *Protected, repo, tag string, d digest.Digest) error {
	if tag == "" || ns.MutableTags {
		return nil
	}
	cur, err := g.o.Store.Source().Resolve(ctx, repo, tag)
	switch {
	case errors.Is(err, source.ErrNotFound):
		return nil
	case err != nil:
		return err
	case cur != d:
		return &DeniedError{Message: fmt.Sprintf("tag %s:%s is immutable: it points at %s; promote %s under a new tag", repo, tag, cur, d)}
	}
	return nil
}

// sourceRepository finds the repository d may be promoted from: one that
// holds it under an allowed prefix, preferring the same name below the
// prefix (staging/app for prod/app).
func (g *Gate) sourceRepository(ctx context.Context, ns *Protected, to string, d digest.Digest) (string, error) {
	repos, err := g.o.Store.ManifestRepositories(ctx, d)
	if err != nil {
		return "", err
	}
	rest := strings.TrimPrefix(strings.TrimPrefix(to, strings.Trim(ns.Prefix, "/")), "/")
	var first string
	for _, r := range repos {
		for _, from := range ns.From {
			if !hasPrefix(r, from) {
				continue
			}
			if strings.TrimPrefix(strings.TrimPrefix(r, strings.Trim(from, "/")), "/") == rest {
				return r, nil
			}
			if first == "" {
				first = r
			}
		}
	}
	return first, nil
}

func matchesAny(repo string, prefixes []string) bool {
	for _, p := range prefixes {
		if hasPrefix(repo, p) {
			return true
		}
	}
	return false
}

func registryTarget(repo, tag string) policy.Target {
	ns, _, _ := strings.Cut(repo, "/")
	return policy.Target{Registry: &policy.RegistryTarget{Namespace: ns, Repository: repo, Tag: tag}}
}

// denied turns a decision into the error a client shows.
func (g *Gate) denied(d *Decision, hint string) *DeniedError {
	reasons := d.Reasons()
	if len(reasons) == 0 {
		reasons = []string{"denied"}
	}
	msg := fmt.Sprintf("denied by policy (set %s, revision %s): %s", d.PolicySet, shortRevision(d.Revision), strings.Join(reasons, "; "))
	if hint != "" {
		msg += " (" + hint + ")"
	}
	return &DeniedError{Message: msg, Decision: d}
}

func shortRevision(r string) string {
	if _, hex, ok := strings.Cut(r, ":"); ok && len(hex) > 12 {
		return r[:len(r)-len(hex)+12]
	}
	return r
}
