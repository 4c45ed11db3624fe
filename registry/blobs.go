package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/opencontainers/go-digest"
	"github.com/portcullis-dev/portcullis/registry/blobstore"
	"github.com/portcullis-dev/portcullis/registry/metadata"
)

// servableBlob returns the size of blob d as clients may read it from
// repo. In a protected repository that is a blob some stored manifest
// names (an image the gate allowed, or evidence about one, I1): a blob
// linked by a mount or an upload, but named by no manifest there, is not
// there for clients. Mounts and uploads into a protected repository still
// succeed, because crane, skopeo and oras send the blobs before the
// manifest the gate decides on.
func (r *Registry) servableBlob(ctx context.Context, repo string, d digest.Digest) (int64, error) {
	size, err := r.meta.StatBlob(ctx, repo, d)
	if err != nil || !r.protected(repo) {
		return size, err
	}
	ok, err := r.meta.BlobReferenced(ctx, repo, d)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, fmt.Errorf("blob %s is linked into %s but no manifest there names it: %w", d, repo, metadata.ErrNotFound)
	}
	return size, nil
}

func (r *Registry) getBlob(w http.ResponseWriter, req *http.Request, rt route) *regError {
	d, err := ParseDigest(rt.arg)
	if err != nil {
		return newError(http.StatusBadRequest, codeDigestInvalid, "%v", err)
	}
	ctx := req.Context()
	size, err := r.servableBlob(ctx, rt.name, d)
	if errors.Is(err, metadata.ErrNotFound) {
		return newError(http.StatusNotFound, codeBlobUnknown, "blob %s is not in %s", d, rt.name)
	}
	if err != nil {
		return internalError(err)
	}
	h := w.Header()
	h.Set("Docker-Content-Digest", d.String())
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Accept-Ranges", "bytes")
	h.Set("ETag", `"`+d.String()+`"`)
	h.Set("Cache-Control", "max-age=31536000")
	start, length := int64(0), size
	status := http.StatusOK
	if rh := req.Header.Get("Range"); rh != "" && size > 0 {
		s, n, ok, err := parseByteRange(rh, size)
		if err != nil {
			h.Set("Content-Range", fmt.Sprintf("bytes */%d", size))
			return newError(http.StatusRequestedRangeNotSatisfiable, codeBlobUnknown, "%v", err)
		}
		if ok {
			start, length, status = s, n, http.StatusPartialContent
			h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", s, s+n-1, size))
		}
	}
	if req.Method == http.MethodGet {
		// An object store may serve the bytes itself, from a pre-signed URL.
		if u, err := r.blobs.RedirectURL(req, d); err != nil {
			r.log.WarnContext(ctx, "no redirect URL; serving the blob", "digest", d, "error", err)
		} else if u != "" {
			h.Del("Content-Length")
			h.Set("Location", u)
			w.WriteHeader(http.StatusTemporaryRedirect)
			return nil
		}
	}
	h.Set("Content-Length", strconv.FormatInt(length, 10))
	if req.Method == http.MethodHead {
		w.WriteHeader(status)
		return nil
	}
	rc, err := r.blobs.Open(ctx, d, start)
	if err != nil {
		if errors.Is(err, blobstore.ErrNotFound) {
			r.log.ErrorContext(ctx, "blob linked but missing from storage", "repository", rt.name, "digest", d)
		}
		return internalError(err)
	}
	defer rc.Close()
	w.WriteHeader(status)
	// A LimitedReader over an *os.File lets the server use sendfile.
	if _, err := io.Copy(w, &io.LimitedReader{R: rc, N: length}); err != nil {
		r.log.DebugContext(ctx, "blob response interrupted", "digest", d, "error", err)
	}
	return nil
}

func (r *Registry) deleteBlob(w http.ResponseWriter, req *http.Request, rt route) *regError {
	d, err := ParseDigest(rt.arg)
	if err != nil {
		return newError(http.StatusBadRequest, codeDigestInvalid, "%v", err)
	}
	if e := r.guardDelete(req.Context(), rt.name, Reference{Digest: d}); e != nil {
		return e
	}
	err = r.meta.UnlinkBlob(req.Context(), rt.name, d)
	if errors.Is(err, metadata.ErrNotFound) {
		return newError(http.StatusNotFound, codeBlobUnknown, "blob %s is not in %s", d, rt.name)
	}
	if err != nil {
		return internalError(err)
	}
	w.Header().Set("Docker-Content-Digest", d.String())
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}
