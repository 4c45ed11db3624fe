package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/policy/contract"
	"github.com/portcullis-dev/portcullis/registry/metadata"
	"github.com/portcullis-dev/portcullis/verifier/source"
)

// Gate decides what may be written into protected (production)
// repositories. *gate.Gate implements it.
type Gate interface {
	// Protected reports whether repo is written only through the gate.
	Protected(repo string) bool
	// MutableTags reports whether tags of protected repo may move or go.
	MutableTags(repo string) bool
	// AuthorizeManifest decides on a manifest PUT into a protected repo.
	// A *contract.DeniedError is a refusal to show the client.
	AuthorizeManifest(ctx context.Context, w contract.ManifestWrite) (*contract.Plan, error)
	// AuthorizePromotion decides on a server-side promotion.
	AuthorizePromotion(ctx context.Context, from string, d digest.Digest, to, tag string, actor contract.Actor) (*contract.Plan, error)
	// Refused records a write into a protected repository that the
	// registry refused without asking AuthorizeManifest (a blob, a
	// delete), or that failed after the gate allowed it.
	Refused(ctx context.Context, r contract.Refusal)
}

func (r *Registry) protected(repo string) bool { return r.gate != nil && r.gate.Protected(repo) }

// gatedManifest stores a manifest PUT into a protected repository as the
// gate plans it: as pushed (evidence), or linked from staging with its
// evidence (a promotion), or not at all.
func (r *Registry) gatedManifest(ctx context.Context, m *metadata.Manifest, tag string) *regError {
	plan, err := r.gate.AuthorizeManifest(ctx, contract.ManifestWrite{Repository: m.Repository, Tag: tag, Digest: m.Digest,
		MediaType: m.MediaType, Content: m.Content, Subject: m.Subject, Actor: actor(ctx)})
	if err != nil {
		return gateError(err)
	}
	if plan.Direct {
		err := r.meta.PutManifest(ctx, m, metadata.PutManifestOptions{Tag: tag, ImmutableTags: plan.ImmutableTag, Evidence: plan.Evidence != ""})
		return r.refusedAfterPlan(ctx, contract.Refusal{Action: contract.ActionPush, Repository: m.Repository, Digest: m.Digest, Tag: tag, Actor: actor(ctx)},
			manifestStoreError(m.Repository, tag, err))
	}
	return r.carryOut(ctx, plan)
}

// refusedAfterPlan records e, a write the gate allowed that the store
// then refused (an immutable tag moved by a concurrent write) or could not
// store: the allow on record did not take effect.
func (r *Registry) refusedAfterPlan(ctx context.Context, rf contract.Refusal, e *regError) *regError {
	if e == nil {
		return nil
	}
	rf.Reason, rf.Err = e.Message, e.Status >= http.StatusInternalServerError
	if rf.Err && e.Err != nil {
		rf.Reason = "the write was allowed but could not be stored: " + e.Err.Error()
	}
	r.gate.Refused(ctx, rf)
	return e
}

// carryOut commits a promotion plan in one transaction.
func (r *Registry) carryOut(ctx context.Context, plan *contract.Plan) *regError {
	p := metadata.Promotion{From: plan.From, To: plan.To, Manifests: plan.Manifests}
	for _, t := range plan.Tags {
		p.Tags = append(p.Tags, metadata.TagUpdate{Name: t.Name, Digest: t.Digest, Immutable: t.Immutable})
	}
	if e := manifestStoreError(plan.To, "", r.meta.Promote(ctx, p)); e != nil {
		var tag string
		if len(plan.Tags) > 0 {
			tag = plan.Tags[0].Name
		}
		return r.refusedAfterPlan(ctx, contract.Refusal{Action: contract.ActionPromote, Repository: plan.From, Digest: plan.Subject,
			Tag: tag, Target: plan.To, Actor: actor(ctx)}, e)
	}
	for _, fn := range r.promoted {
		fn(ctx, plan)
	}
	return nil
}

// manifestStoreError maps a metadata write error to the OCI error.
func manifestStoreError(repo, tag string, err error) *regError {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, metadata.ErrBlobUnknown):
		return &regError{Status: http.StatusBadRequest, Code: codeManifestBlobUnknown, Message: "manifest references content not in " + repo + ": " + unknownRef(err), Err: err}
	case errors.Is(err, metadata.ErrEvidenceOnly):
		return &regError{Status: http.StatusForbidden, Code: codeDenied, Message: repo + " is protected: the manifest uses a blob uploaded there as evidence, which only a signature, attestation or SBOM about an image promoted there may use (" + err.Error() + "); push the image to a staging namespace and promote it", Err: err}
	case errors.Is(err, metadata.ErrTagImmutable):
		what := "tag " + tag
		if tag == "" {
			what = "a tag"
		}
		return &regError{Status: http.StatusForbidden, Code: codeDenied, Message: what + " is immutable in " + repo + ": " + err.Error(), Err: err}
	}
	return internalError(err)
}

// gateError maps a gate refusal to 403 DENIED; anything else fails closed
// as a server error.
func gateError(err error) *regError {
	var de *contract.DeniedError
	if errors.As(err, &de) {
		return &regError{Status: http.StatusForbidden, Code: codeDenied, Message: de.Message, Err: err}
	}
	return &regError{Status: http.StatusInternalServerError, Code: codeDenied, Message: fmt.Sprintf("the gate could not decide, so the write is refused: %v", err), Err: err}
}

// blobLink says how an uploaded blob is linked into its repository.
type blobLink int

const (
	ordinaryLink blobLink = iota
	// evidenceLink: new content in a protected repository, which serves
	// only an evidence manifest (metadata.EvidenceBlobs): a signature or
	// an attestation pushed after promotion.
	evidenceLink
)

// guardBlobCommit decides how a blob upload into repo is linked. In a
// protected repository, bytes the registry already has (in a repository
// the caller may read) are linked as usual, for a promotion by manifest
// PUT; new content is linked for evidence only, and at most
// source.MaxBlobSize (what the evidence filter reads) — or refused when
// the store cannot keep such links. So nothing new reaches production but
// through a gated manifest or as evidence about an image the gate let in.
func (r *Registry) guardBlobCommit(ctx context.Context, repo string, d digest.Digest, size int64) (blobLink, *regError) {
	if !r.protected(repo) {
		return ordinaryLink, nil
	}
	known, err := r.blobVisible(ctx, d)
	if err != nil {
		return 0, internalError(err)
	}
	if known {
		return ordinaryLink, nil
	}
	var e *regError
	if _, ok := r.meta.(metadata.EvidenceBlobs); !ok {
		e = newError(http.StatusForbidden, codeDenied, "%s is protected: blob %s is not in the registry; push the image to a staging namespace and promote it", repo, d)
	} else if size > source.MaxBlobSize {
		e = r.evidenceTooLarge(repo, d, size)
	}
	if e != nil {
		return 0, r.refuseBlob(ctx, repo, d, e)
	}
	return evidenceLink, nil
}

// refuseBlob records the refusal e of blob d in protected repo, and
// returns it.
func (r *Registry) refuseBlob(ctx context.Context, repo string, d digest.Digest, e *regError) *regError {
	r.gate.Refused(ctx, contract.Refusal{Action: contract.ActionPush, Repository: repo, Digest: d, Reason: e.Message, Actor: actor(ctx)})
	return e
}

// evidenceTooLarge refuses new content in a protected repository that is
// larger than evidence may be.
func (r *Registry) evidenceTooLarge(repo string, d digest.Digest, size int64) *regError {
	return newError(http.StatusForbidden, codeDenied, "%s is protected: blob %s is new content of %d bytes; new content there can only be evidence (a signature or attestation of at most %d bytes): push the image to a staging namespace and promote it", repo, d, size, source.MaxBlobSize)
}

// mountable reports whether blob d of repo may be linked elsewhere by a
// mount: a blob linked for evidence only never leaves its repository.
func (r *Registry) mountable(ctx context.Context, repo string, d digest.Digest) (bool, error) {
	eb, ok := r.meta.(metadata.EvidenceBlobs)
	if !ok {
		return true, nil
	}
	only, err := eb.EvidenceOnly(ctx, repo, d)
	return !only, err
}

// blobRepositories is an optional capability of a metadata store: the
// repositories linking a blob.
type blobRepositories interface {
	BlobRepositories(ctx context.Context, d digest.Digest) ([]string, error)
}

// blobVisible reports whether blob d is linked into a repository the
// request's caller may read, so that the answer reveals nothing about
// repositories it may not.
func (r *Registry) blobVisible(ctx context.Context, d digest.Digest) (bool, error) {
	if CallerFrom(ctx) == nil {
		return r.meta.BlobKnown(ctx, d)
	}
	br, ok := r.meta.(blobRepositories)
	if !ok {
		return false, nil
	}
	repos, err := br.BlobRepositories(ctx, d)
	if err != nil {
		return false, err
	}
	for _, repo := range repos {
		if allowed(ctx, repo, ActionPull) {
			return true, nil
		}
	}
	return false, nil
}

// guardDelete refuses deletions (of ref, a tag or a digest) in protected
// repositories with immutable tags: deleting then re-pushing a tag would
// move it. The refusal is recorded.
func (r *Registry) guardDelete(ctx context.Context, repo string, ref Reference) *regError {
	if r.protected(repo) && !r.gate.MutableTags(repo) {
		e := newError(http.StatusForbidden, codeDenied, "%s is protected and its tags are immutable: nothing in it can be deleted", repo)
		r.gate.Refused(ctx, contract.Refusal{Action: contract.ActionDelete, Repository: repo, Digest: ref.Digest, Tag: ref.Tag,
			Reason: e.Message, Actor: actor(ctx)})
		return e
	}
	return nil
}
