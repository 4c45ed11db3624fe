package registry

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/registry/metadata"
	"github.com/portcullis-dev/portcullis/registry/store"
)

// resolve turns a reference into a digest in repository name.
func (r *Registry) resolve(req *http.Request, name string, ref Reference) (digest.Digest, *regError) {
	if ref.Digest != "" {
		return ref.Digest, nil
	}
	d, err := r.meta.ResolveTag(req.Context(), name, ref.Tag)
	if errors.Is(err, metadata.ErrNotFound) {
		return "", newError(http.StatusNotFound, codeManifestUnknown, "manifest %s:%s not found", name, ref.Tag)
	}
	if err != nil {
		return "", internalError(err)
	}
	return d, nil
}

func parseRef(s string) (Reference, *regError) {
	ref, err := ParseReference(s)
	if err != nil {
		if strings.Contains(s, ":") {
			return ref, newError(http.StatusBadRequest, codeDigestInvalid, "%v", err)
		}
		return ref, newError(http.StatusBadRequest, codeManifestInvalid, "%v", err)
	}
	return ref, nil
}

func (r *Registry) getManifest(w http.ResponseWriter, req *http.Request, rt route) *regError {
	ref, e := parseRef(rt.arg)
	if e != nil {
		return e
	}
	d, e := r.resolve(req, rt.name, ref)
	if e != nil {
		return e
	}
	m, err := r.meta.GetManifest(req.Context(), rt.name, d)
	if errors.Is(err, metadata.ErrNotFound) {
		return newError(http.StatusNotFound, codeManifestUnknown, "manifest %s@%s not found", rt.name, d)
	}
	if err != nil {
		return internalError(err)
	}
	if !accepts(req.Header.Values("Accept"), m.MediaType) {
		return newError(http.StatusNotFound, codeManifestUnknown, "manifest %s is a %s, which the request's Accept header excludes", ref, m.MediaType)
	}
	h := w.Header()
	h.Set("Content-Type", m.MediaType)
	h.Set("Content-Length", strconv.Itoa(len(m.Content)))
	h.Set("Docker-Content-Digest", d.String())
	h.Set("ETag", `"`+d.String()+`"`)
	w.WriteHeader(http.StatusOK)
	if req.Method != http.MethodHead {
		_, _ = w.Write(m.Content)
	}
	return nil
}

// accepts reports whether Accept headers allow mediaType. No Accept header,
// or a wildcard, allows everything.
func accepts(accept []string, mediaType string) bool {
	if len(accept) == 0 {
		return true
	}
	for _, a := range accept {
		for _, part := range strings.Split(a, ",") {
			mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil {
				continue
			}
			if mt == mediaType || mt == "*/*" || mt == "application/*" || mt == "application/json" {
				return true
			}
		}
	}
	return false
}

func (r *Registry) putManifest(w http.ResponseWriter, req *http.Request, rt route) *regError {
	ref, e := parseRef(rt.arg)
	if e != nil {
		return e
	}
	if req.ContentLength > store.MaxManifestSize {
		return newError(http.StatusRequestEntityTooLarge, codeSizeInvalid, "manifest is %d bytes, over the %d byte limit", req.ContentLength, store.MaxManifestSize)
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, store.MaxManifestSize+1))
	if err != nil {
		return newError(http.StatusBadRequest, codeManifestInvalid, "reading manifest: %v", err)
	}
	if len(body) > store.MaxManifestSize {
		return newError(http.StatusRequestEntityTooLarge, codeSizeInvalid, "manifest is over the %d byte limit", store.MaxManifestSize)
	}
	ct := req.Header.Get("Content-Type")
	if ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err == nil {
			ct = mt
		}
	}
	m, err := store.ParseManifest(ct, body)
	if err != nil {
		return newError(http.StatusBadRequest, codeManifestInvalid, "%v", err)
	}
	m.Repository = rt.name
	m.Digest = digest.SHA256.FromBytes(body)
	if ref.Digest != "" {
		if !ref.Digest.Algorithm().Available() {
			return newError(http.StatusBadRequest, codeDigestInvalid, "digest algorithm %s is not supported", ref.Digest.Algorithm())
		}
		m.Digest = ref.Digest.Algorithm().FromBytes(body)
		if m.Digest != ref.Digest {
			return newError(http.StatusBadRequest, codeDigestInvalid, "manifest digest is %s, not %s", m.Digest, ref.Digest)
		}
	}
	if r.protected(rt.name) {
		if e := r.gatedManifest(req.Context(), m, ref.Tag); e != nil {
			return e
		}
	} else if e := manifestStoreError(rt.name, ref.Tag, r.meta.PutManifest(req.Context(), m, metadata.PutManifestOptions{Tag: ref.Tag})); e != nil {
		return e
	}
	for _, fn := range r.pushed {
		fn(req.Context(), rt.name, m.Digest)
	}
	h := w.Header()
	h.Set("Location", "/v2/"+rt.name+"/manifests/"+m.Digest.String())
	h.Set("Docker-Content-Digest", m.Digest.String())
	if m.Subject != "" {
		h.Set("OCI-Subject", m.Subject.String())
	}
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}

// unknownRef names the content an ErrBlobUnknown is about.
func unknownRef(err error) string {
	var bu *metadata.BlobUnknownError
	if errors.As(err, &bu) {
		return bu.Digest.String()
	}
	return "unknown"
}

func (r *Registry) deleteManifest(w http.ResponseWriter, req *http.Request, rt route) *regError {
	ref, e := parseRef(rt.arg)
	if e != nil {
		return e
	}
	if e := r.guardDelete(req.Context(), rt.name, ref); e != nil {
		return e
	}
	ctx := req.Context()
	var err error
	if ref.Tag != "" {
		err = r.meta.DeleteTag(ctx, rt.name, ref.Tag)
	} else {
		err = r.meta.DeleteManifest(ctx, rt.name, ref.Digest)
	}
	if errors.Is(err, metadata.ErrNotFound) {
		return newError(http.StatusNotFound, codeManifestUnknown, "manifest %s not found in %s", ref, rt.name)
	}
	if errors.Is(err, metadata.ErrTagImmutable) {
		return newError(http.StatusForbidden, codeDenied, "%s: %v", rt.name, err)
	}
	if err != nil {
		return internalError(err)
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}
