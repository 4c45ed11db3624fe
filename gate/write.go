package gate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/portcullis-dev/portcullis/internal/panics"
	"github.com/portcullis-dev/portcullis/policy/contract"
	"github.com/portcullis-dev/portcullis/verifier/source"
)

// Protected reports whether repo is written only through the gate.
func (g *Gate) Protected(repo string) bool { return g.cfg.protected(repo) != nil }

// MutableTags reports whether the tags of protected repo may move.
func (g *Gate) MutableTags(repo string) bool {
	ns := g.cfg.protected(repo)
	return ns != nil && ns.MutableTags
}

// AuthorizeManifest decides on a manifest PUT into a protected repository
// (invariant I1 of docs/gate.md: nothing is stored there but what the gate
// allowed, and evidence about it):
//   - under a cosign tag (sha256-<hex>.sig|att|sbom), or by digest with a
//     subject: stored as pushed only if it passes the evidence filter
//     ([CheckEvidence]) for an image the gate let into the repository;
//   - anything else is an image: promoted (with its evidence) from the
//     staging repository holding it when policy allows, else denied.
func (g *Gate) AuthorizeManifest(ctx context.Context, w contract.ManifestWrite) (p *contract.Plan, err error) {
	req := contract.Request{Action: contract.ActionPush, Repository: w.Repository, Digest: w.Digest, Tag: w.Tag,
		Target: registryTarget(w.Repository, w.Tag), Actor: w.Actor}
	defer g.recordRefused(ctx, req, &err)
	defer g.denyOnPanic(ctx, req, &p, &err)
	defer panics.Recover(ctx, g.log, "gate.AuthorizeManifest", &err)
	ns := g.cfg.protected(w.Repository)
	if ns == nil {
		return &contract.Plan{Direct: true}, nil
	}
	if subject, suffix, ok := source.ParseCosignTag(w.Tag); ok {
		return g.authorizeEvidence(ctx, w, subject, suffix)
	}
	if w.Tag == "" && w.Subject != "" {
		return g.authorizeEvidence(ctx, w, w.Subject, "")
	}
	if err := g.checkTag(ctx, ns, w.Repository, w.Tag, w.Digest); err != nil {
		return nil, err
	}
	from, err := g.sourceRepository(ctx, ns, w.Repository, w.Digest)
	if err != nil {
		return nil, err
	}
	if from == "" {
		d := g.Evaluate(ctx, contract.Request{Action: contract.ActionPush, Repository: w.Repository, Digest: w.Digest, Tag: w.Tag,
			Target: registryTarget(w.Repository, w.Tag), Actor: w.Actor})
		if !d.Allow {
			return nil, g.denied(d, fmt.Sprintf("%s was never pushed to a namespace that may be promoted to %s (%s): push it there, sign it, then promote it",
				w.Digest, ns.Prefix, strings.Join(ns.From, ", ")))
		}
		return &contract.Plan{Direct: true, ImmutableTag: !ns.MutableTags, Decision: d, Subject: w.Digest}, nil
	}
	// A platform manifest of an index is promoted with its index: it is
	// decided on the index's evidence (clients push children first).
	if w.Tag == "" {
		parents, err := g.o.Store.ManifestParents(ctx, from, w.Digest)
		if err != nil {
			return nil, err
		}
		var last *contract.Decision
		for _, p := range parents {
			last = g.Evaluate(ctx, contract.Request{Action: contract.ActionPromote, Repository: from, Digest: p,
				Target: registryTarget(w.Repository, ""), Actor: w.Actor})
			if last.Allow {
				return &contract.Plan{From: from, To: w.Repository, Manifests: []digest.Digest{w.Digest}, Subject: w.Digest, Decision: last}, nil
			}
		}
		if last != nil {
			return nil, g.denied(last, "")
		}
	}
	return g.promote(ctx, ns, from, w.Digest, w.Repository, w.Tag, w.Actor, false)
}

// authorizeEvidence lets evidence about subject into a protected
// repository: subject must be an image the gate let in (not itself
// evidence), and the manifest must pass the evidence filter. Its blobs must
// already be in the repository (new content never enters a protected
// namespace but through promotion).
func (g *Gate) authorizeEvidence(ctx context.Context, w contract.ManifestWrite, subject digest.Digest, suffix string) (*contract.Plan, error) {
	src := g.o.Store.Source()
	sm, err := src.Manifest(ctx, w.Repository, subject)
	if errors.Is(err, source.ErrNotFound) {
		return nil, &contract.DeniedError{Message: fmt.Sprintf("%s is protected: evidence for %s can only be added once that image was promoted here", w.Repository, subject)}
	}
	if err != nil {
		return nil, err
	}
	if looksLikeEvidence(sm) {
		return nil, &contract.DeniedError{Message: fmt.Sprintf("%s is protected: %s is itself evidence, not an image the gate allowed", w.Repository, subject)}
	}
	kind, err := CheckEvidence(ctx, src, w.Repository, source.Manifest{Digest: w.Digest, MediaType: w.MediaType, Content: w.Content}, subject, suffix)
	var ne *NotEvidenceError
	if errors.As(err, &ne) {
		where := "by digest"
		if w.Tag != "" {
			where = "under tag " + w.Tag
		}
		return nil, &contract.DeniedError{Message: fmt.Sprintf("%s is protected: only evidence about an image promoted here may be pushed %s, and %v; promote images from staging instead", w.Repository, where, err)}
	}
	if err != nil {
		return nil, err
	}
	g.log.InfoContext(ctx, "gate: evidence added to a protected repository", "repository", w.Repository,
		"subject", subject.String(), "manifest", w.Digest.String(), "kind", string(kind), "tag", w.Tag)
	// The evidence filter's allow is a decision like any other: recorded.
	start := g.o.Now()
	d := &contract.Decision{Time: start.UTC(), TrustRevision: g.o.Verifier.Revision(),
		Request: contract.Request{Action: contract.ActionPush, Repository: w.Repository, Digest: w.Digest, Tag: w.Tag,
			Target: registryTarget(w.Repository, w.Tag), Actor: w.Actor},
		Verdict: contract.Verdict{Allow: true, Deny: []contract.Message{}, Warn: []contract.Message{}},
		Note:    fmt.Sprintf("evidence (%s) about %s, admitted by the evidence filter", kind, subject)}
	g.record(ctx, d, start)
	if !d.Allow {
		return nil, g.denied(d, "")
	}
	return &contract.Plan{Direct: true, Evidence: kind, Subject: subject}, nil
}

// AuthorizePromotion decides on promoting from@d to to:tag server-side
// (`portcullis promote`): the plan links the image, its children, its
// evidence and the tag.
func (g *Gate) AuthorizePromotion(ctx context.Context, from string, d digest.Digest, to, tag string, actor contract.Actor) (p *contract.Plan, err error) {
	req := contract.Request{Action: contract.ActionPromote, Repository: from, Digest: d, Tag: tag,
		Target: registryTarget(to, tag), Actor: actor}
	defer g.recordRefused(ctx, req, &err)
	defer g.denyOnPanic(ctx, req, &p, &err)
	defer panics.Recover(ctx, g.log, "gate.AuthorizePromotion", &err)
	ns := g.cfg.protected(to)
	if ns == nil {
		return nil, &contract.DeniedError{Message: fmt.Sprintf("%s is not a protected namespace: push to it directly", to)}
	}
	if !matchesAny(from, ns.From) {
		return nil, &contract.DeniedError{Message: fmt.Sprintf("%s may be promoted only from %s, not from %s", ns.Prefix, strings.Join(ns.From, ", "), from)}
	}
	if err := g.checkTag(ctx, ns, to, tag, d); err != nil {
		return nil, err
	}
	return g.promote(ctx, ns, from, d, to, tag, actor, true)
}

func (g *Gate) promote(ctx context.Context, ns *Protected, from string, d digest.Digest, to, tag string, actor contract.Actor, withChildren bool) (*contract.Plan, error) {
	// What goes with the image is worked out first, so that the decision
	// (and its record) names what is left behind.
	carried, tags, left, err := g.evidenceClosure(ctx, from, d)
	if err != nil {
		return nil, err
	}
	dec := g.Evaluate(ctx, contract.Request{Action: contract.ActionPromote, Repository: from, Digest: d, Tag: tag,
		Target: registryTarget(to, tag), Actor: actor, LeftBehind: left})
	if !dec.Allow {
		return nil, g.denied(dec, "")
	}
	p := &contract.Plan{From: from, To: to, Subject: d, Decision: dec, LeftBehind: left}
	if withChildren {
		children, err := childManifests(ctx, g.o.Store.Source(), from, d)
		if err != nil {
			return nil, err
		}
		p.Manifests = append(p.Manifests, children...)
	}
	p.Manifests = append(p.Manifests, d)
	if tag != "" {
		p.Tags = append(p.Tags, contract.TagUpdate{Name: tag, Digest: d, Immutable: !ns.MutableTags})
	}
	p.Manifests = append(p.Manifests, carried...)
	p.Tags = append(p.Tags, tags...)
	return p, nil
}

// evidenceClosure is the evidence a promotion of from@d carries (I2): its
// referrers and the manifests under its cosign tags that pass the evidence
// filter. Everything else about d is left behind, with the reason.
func (g *Gate) evidenceClosure(ctx context.Context, from string, d digest.Digest) (carried []digest.Digest, tags []contract.TagUpdate, left []contract.LeftBehind, err error) {
	src := g.o.Store.Source()
	check := func(md digest.Digest, suffix string) (bool, error) {
		if len(carried) >= MaxCarriedEvidence {
			left = append(left, contract.LeftBehind{Digest: md, Tag: cosignTagOrEmpty(d, suffix), Reason: fmt.Sprintf("a promotion carries at most %d evidence manifests", MaxCarriedEvidence)})
			return false, nil
		}
		m, err := src.Manifest(ctx, from, md)
		if errors.Is(err, source.ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		_, err = CheckEvidence(ctx, src, from, m, d, suffix)
		var ne *NotEvidenceError
		if errors.As(err, &ne) {
			left = append(left, contract.LeftBehind{Digest: md, Tag: cosignTagOrEmpty(d, suffix), Reason: ne.Reason})
			return false, nil
		}
		if err != nil {
			return false, err
		}
		carried = append(carried, md)
		return true, nil
	}
	refs, err := src.Referrers(ctx, from, d)
	if err != nil && !errors.Is(err, source.ErrNotFound) {
		return nil, nil, nil, err
	}
	for _, r := range refs {
		if _, err := check(r.Digest, ""); err != nil {
			return nil, nil, nil, err
		}
	}
	for _, suffix := range source.CosignSuffixes() {
		t := source.CosignTag(d, suffix)
		td, err := src.Resolve(ctx, from, t)
		if errors.Is(err, source.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, nil, nil, err
		}
		ok, err := check(td, suffix)
		if err != nil {
			return nil, nil, nil, err
		}
		if ok {
			tags = append(tags, contract.TagUpdate{Name: t, Digest: td})
		}
	}
	return carried, tags, left, nil
}

func cosignTagOrEmpty(d digest.Digest, suffix string) string {
	if suffix == "" {
		return ""
	}
	return source.CosignTag(d, suffix)
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
		return &contract.DeniedError{Message: fmt.Sprintf("tag %s:%s is immutable: it points at %s; promote %s under a new tag", repo, tag, cur, d)}
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
			if !contract.InNamespace(r, from) {
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
		if contract.InNamespace(repo, p) {
			return true
		}
	}
	return false
}

func registryTarget(repo, tag string) contract.Target {
	ns, _, _ := strings.Cut(repo, "/")
	return contract.Target{Registry: &contract.RegistryTarget{Namespace: ns, Repository: repo, Tag: tag}}
}

// denyOnPanic, deferred before panics.Recover by a method that plans a
// write, turns a recovered panic into a recorded denial of req (I3): no
// plan, and the refusal a client shows.
func (g *Gate) denyOnPanic(ctx context.Context, req contract.Request, p **contract.Plan, err *error) {
	if pe := (*panics.Error)(nil); errors.As(*err, &pe) {
		*p, *err = nil, g.denied(g.RecordFailure(ctx, req, *err), "")
	}
}

// denied turns a decision into the error a client shows.
func (g *Gate) denied(d *contract.Decision, hint string) *contract.DeniedError {
	reasons := d.Reasons()
	if len(reasons) == 0 {
		reasons = []string{"denied"}
	}
	msg := fmt.Sprintf("denied by policy (set %s, revision %s): %s", d.PolicySet, shortRevision(d.Revision), strings.Join(reasons, "; "))
	if d.PolicySet == "" { // no policy was asked: an invalid request, or a panic
		msg = "denied: " + strings.Join(reasons, "; ")
	}
	if hint != "" {
		msg += " (" + hint + ")"
	}
	return &contract.DeniedError{Message: msg, Decision: d}
}

func shortRevision(r string) string {
	if _, hex, ok := strings.Cut(r, ":"); ok && len(hex) > 12 {
		return r[:len(r)-len(hex)+12]
	}
	return r
}
