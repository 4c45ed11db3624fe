package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/registry/blobstore"
	"github.com/portcullis-dev/portcullis/registry/metadata"
	"github.com/portcullis-dev/portcullis/verifier/source"
)

func uploadLocation(name, id string) string { return "/v2/" + name + "/blobs/uploads/" + id }

// rangeHeader is the Range an upload status reports: the inclusive range
// of bytes received ("0-0" before the first byte, as clients expect).
func rangeHeader(size int64) string {
	if size <= 0 {
		return "0-0"
	}
	return fmt.Sprintf("0-%d", size-1)
}

func (r *Registry) startUpload(w http.ResponseWriter, req *http.Request, rt route) *regError {
	ctx := req.Context()
	q := req.URL.Query()
	if m := q.Get("mount"); m != "" {
		if e, done := r.mount(w, req, rt, m, q.Get("from")); done || e != nil {
			return e
		}
		// The blob could not be mounted: fall back to a new upload (202).
	}
	if ds := q.Get("digest"); ds != "" {
		d, err := ParseDigest(ds)
		if err != nil {
			return newError(http.StatusBadRequest, codeDigestInvalid, "%v", err)
		}
		link, e := r.guardBlobCommit(ctx, rt.name, d, req.ContentLength)
		if e != nil {
			return e
		}
		if req.ContentLength >= 0 {
			if e := r.admit(ctx, rt.name, d, req.ContentLength); e != nil {
				return e
			}
		}
		id, start := uuid.NewString(), time.Now()
		size, err := r.blobs.Commit(ctx, id, d, 0, req.ContentLength, req.Body)
		if err != nil {
			// A one-request upload has no session to resume: drop its bytes.
			if cerr := r.blobs.Cancel(ctx, id); cerr != nil {
				r.log.WarnContext(ctx, "discarding failed upload", "upload", id, "error", cerr)
			}
			return uploadError(err, id, size)
		}
		if e := r.blobCreated(ctx, w, rt.name, d, size, link); e != nil {
			return e
		}
		r.uploadFinished(ctx, rt.name, d, size, start)
		return nil
	}
	u := metadata.Upload{ID: uuid.NewString(), Repository: rt.name, StartedAt: time.Now()}
	if err := r.meta.CreateUpload(ctx, u); err != nil {
		return internalError(err)
	}
	r.uploadAccepted(w, rt.name, u.ID, 0)
	return nil
}

// mount links a blob from another repository. done reports whether a
// response was written; when the blob cannot be mounted the caller starts
// an ordinary upload instead, as the specification asks.
func (r *Registry) mount(w http.ResponseWriter, req *http.Request, rt route, mount, from string) (*regError, bool) {
	d, err := ParseDigest(mount)
	if err != nil {
		return newError(http.StatusBadRequest, codeDigestInvalid, "%v", err), false
	}
	if from == "" || ValidateRepository(from) != nil {
		return nil, false
	}
	ctx := req.Context()
	// A caller who may not read from learns nothing about it: the answer
	// is the same as for a blob that is not there.
	if !allowed(ctx, from, ActionPull) {
		return nil, false
	}
	size, err := r.servableBlob(ctx, from, d)
	if errors.Is(err, metadata.ErrNotFound) {
		return nil, false
	}
	if err != nil {
		return internalError(err), false
	}
	if ok, err := r.mountable(ctx, from, d); err != nil || !ok {
		// Evidence uploaded into a protected repository stays there: the
		// client uploads the bytes (and the target decides on them).
		return internalErrorOrNil(err), false
	}
	return r.blobCreated(ctx, w, rt.name, d, size, ordinaryLink), true
}

func internalErrorOrNil(err error) *regError {
	if err == nil {
		return nil
	}
	return internalError(err)
}

// blobCreated links a stored blob into name and answers 201.
func (r *Registry) blobCreated(ctx context.Context, w http.ResponseWriter, name string, d digest.Digest, size int64, link blobLink) *regError {
	if link == evidenceLink && size > source.MaxBlobSize {
		return r.refuseBlob(ctx, name, d, r.evidenceTooLarge(name, d, size))
	}
	if e := r.admit(ctx, name, d, size); e != nil {
		return e
	}
	if err := r.linkBlob(ctx, name, d, size, link); err != nil {
		return internalError(err)
	}
	h := w.Header()
	h.Set("Location", "/v2/"+name+"/blobs/"+d.String())
	h.Set("Docker-Content-Digest", d.String())
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}

// linkBlob links stored blob d into repo as link says (store.LinkBlob).
func (r *Registry) linkBlob(ctx context.Context, repo string, d digest.Digest, size int64, link blobLink) error {
	return r.store.LinkBlob(ctx, repo, d, size, link == evidenceLink)
}

func (r *Registry) uploadAccepted(w http.ResponseWriter, name, id string, size int64) {
	h := w.Header()
	h.Set("Location", uploadLocation(name, id))
	h.Set("Range", rangeHeader(size))
	h.Set("Docker-Upload-UUID", id)
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
}

// session looks up an upload session of repository name.
func (r *Registry) session(ctx context.Context, name, id string) (metadata.Upload, *regError) {
	u, err := r.meta.GetUpload(ctx, id)
	if errors.Is(err, metadata.ErrNotFound) || (err == nil && u.Repository != name) {
		return u, newError(http.StatusNotFound, codeBlobUploadUnknown, "upload %s is not in progress in %s", id, name)
	}
	if err != nil {
		return u, internalError(err)
	}
	return u, nil
}

func (r *Registry) uploadStatus(w http.ResponseWriter, req *http.Request, rt route) *regError {
	ctx := req.Context()
	if _, e := r.session(ctx, rt.name, rt.arg); e != nil {
		return e
	}
	size, err := r.blobs.UploadSize(ctx, rt.arg)
	if err != nil {
		return internalError(err)
	}
	h := w.Header()
	h.Set("Location", uploadLocation(rt.name, rt.arg))
	h.Set("Range", rangeHeader(size))
	h.Set("Docker-Upload-UUID", rt.arg)
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// chunkBounds reads Content-Range and Content-Length: the offset the chunk
// must start at (-1: wherever the upload ends) and its length (-1: unknown).
func chunkBounds(req *http.Request) (offset, length int64, e *regError) {
	offset, length = -1, req.ContentLength
	cr := req.Header.Get("Content-Range")
	if cr == "" {
		return offset, length, nil
	}
	rng, err := ParseContentRange(cr)
	if err != nil {
		return 0, 0, newError(http.StatusRequestedRangeNotSatisfiable, codeBlobUploadInvalid, "%v", err)
	}
	if length >= 0 && length != rng.Len() {
		return 0, 0, newError(http.StatusRequestedRangeNotSatisfiable, codeBlobUploadInvalid,
			"Content-Range %s is %d bytes but Content-Length is %d", cr, rng.Len(), length)
	}
	return rng.Start, rng.Len(), nil
}

func (r *Registry) patchUpload(w http.ResponseWriter, req *http.Request, rt route) *regError {
	ctx := req.Context()
	if _, e := r.session(ctx, rt.name, rt.arg); e != nil {
		return e
	}
	offset, length, e := chunkBounds(req)
	if e != nil {
		return e
	}
	size, err := r.blobs.Append(ctx, rt.arg, offset, length, req.Body)
	if err != nil {
		return uploadError(err, rt.arg, size)
	}
	r.uploadAccepted(w, rt.name, rt.arg, size)
	return nil
}

func (r *Registry) finishUpload(w http.ResponseWriter, req *http.Request, rt route) *regError {
	ctx := req.Context()
	sess, e := r.session(ctx, rt.name, rt.arg)
	if e != nil {
		return e
	}
	ds := req.URL.Query().Get("digest")
	if ds == "" {
		return newError(http.StatusBadRequest, codeDigestInvalid, "closing an upload needs ?digest=")
	}
	d, err := ParseDigest(ds)
	if err != nil {
		return newError(http.StatusBadRequest, codeDigestInvalid, "%v", err)
	}
	offset, length, e := chunkBounds(req)
	if e != nil {
		return e
	}
	// The blob's size, when this last chunk has a length: what a quota
	// and a protected repository ask about (only they pay the lookup).
	total := int64(-1)
	if length >= 0 && (r.quota != nil || r.protected(rt.name)) {
		have, err := r.blobs.UploadSize(ctx, rt.arg)
		if err != nil {
			return internalError(err)
		}
		total = have + length
	}
	link, e := r.guardBlobCommit(ctx, rt.name, d, total)
	if e != nil {
		// Nothing of it may land: the session is over.
		if err := r.blobs.Cancel(ctx, rt.arg); err != nil {
			r.log.WarnContext(ctx, "discarding refused upload", "upload", rt.arg, "error", err)
		}
		_ = r.meta.DeleteUpload(ctx, rt.arg)
		return e
	}
	if length >= 0 && r.quota != nil {
		if e := r.admit(ctx, rt.name, d, total); e != nil {
			r.dropUpload(ctx, rt.arg)
			return e
		}
	}
	size, err := r.blobs.Commit(ctx, rt.arg, d, offset, length, req.Body)
	if errors.Is(err, blobstore.ErrDigestMismatch) {
		// The bytes are gone: the session is over.
		_ = r.meta.DeleteUpload(ctx, rt.arg)
	}
	if err != nil {
		return uploadError(err, rt.arg, size)
	}
	if e := r.blobCreated(ctx, w, rt.name, d, size, link); e != nil {
		if e.Code == codeDenied {
			// Refused by the quota or as evidence too large: the session is over.
			_ = r.meta.DeleteUpload(ctx, rt.arg)
		}
		return e
	}
	if err := r.meta.DeleteUpload(ctx, rt.arg); err != nil && !errors.Is(err, metadata.ErrNotFound) {
		r.log.WarnContext(ctx, "upload finished but its session stays", "upload", rt.arg, "error", err)
	}
	r.uploadFinished(ctx, rt.name, d, size, sess.StartedAt)
	return nil
}

func (r *Registry) uploadFinished(ctx context.Context, repo string, d digest.Digest, size int64, start time.Time) {
	took := time.Since(start)
	for _, fn := range r.uploaded {
		fn(ctx, repo, d, size, took)
	}
}

func (r *Registry) cancelUpload(w http.ResponseWriter, req *http.Request, rt route) *regError {
	ctx := req.Context()
	if _, e := r.session(ctx, rt.name, rt.arg); e != nil {
		return e
	}
	if err := r.blobs.Cancel(ctx, rt.arg); err != nil {
		return internalError(err)
	}
	if err := r.meta.DeleteUpload(ctx, rt.arg); err != nil && !errors.Is(err, metadata.ErrNotFound) {
		return internalError(err)
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// uploadError maps blob store errors to the specification's answers.
func uploadError(err error, id string, size int64) *regError {
	switch {
	case errors.Is(err, blobstore.ErrOffset):
		e := newError(http.StatusRequestedRangeNotSatisfiable, codeBlobUploadInvalid, "chunk does not start where upload %s ends (%d bytes received)", id, size)
		e.Header = http.Header{"Range": {rangeHeader(size)}, "Docker-Upload-Uuid": {id}}
		return e
	case errors.Is(err, blobstore.ErrDigestMismatch):
		return &regError{Status: http.StatusBadRequest, Code: codeDigestInvalid, Message: "uploaded content does not match the digest", Err: err}
	case errors.Is(err, blobstore.ErrSizeMismatch):
		return &regError{Status: http.StatusBadRequest, Code: codeSizeInvalid, Message: "content length does not match the bytes sent", Err: err}
	case errors.Is(err, digest.ErrDigestUnsupported), errors.Is(err, digest.ErrDigestInvalidFormat), errors.Is(err, digest.ErrDigestInvalidLength):
		return newError(http.StatusBadRequest, codeDigestInvalid, "%v", err)
	default:
		return internalError(fmt.Errorf("upload %s: %w", id, err))
	}
}

// dropUpload discards an upload's bytes and its session.
func (r *Registry) dropUpload(ctx context.Context, id string) {
	if err := r.blobs.Cancel(ctx, id); err != nil {
		r.log.WarnContext(ctx, "discarding refused upload", "upload", id, "error", err)
	}
	_ = r.meta.DeleteUpload(ctx, id)
}

// admit asks the quota, if any, whether size bytes of d may be linked
// into repo.
func (r *Registry) admit(ctx context.Context, repo string, d digest.Digest, size int64) *regError {
	if r.quota == nil {
		return nil
	}
	err := r.quota.Admit(ctx, repo, d, size)
	var qe *QuotaError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &qe):
		return &regError{Status: http.StatusForbidden, Code: codeDenied, Message: qe.Message, Err: err}
	}
	return internalError(err)
}
