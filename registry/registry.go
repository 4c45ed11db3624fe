// Package registry serves the OCI Distribution Specification v1.1 API
// (referrers included) over a blob store and a metadata store.
package registry

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/internal/panics"
	"github.com/portcullis-dev/portcullis/policy/contract"
	"github.com/portcullis-dev/portcullis/registry/blobstore"
	"github.com/portcullis-dev/portcullis/registry/metadata"
	"github.com/portcullis-dev/portcullis/registry/store"
)

// Registry is an http.Handler for the /v2/ API.
type Registry struct {
	store  *store.Store
	meta   metadata.Store
	blobs  *blobstore.Store
	log    *slog.Logger
	pushed []func(ctx context.Context, repo string, d digest.Digest)
	// uploaded are WithUploadFinished's functions.
	uploaded []func(ctx context.Context, repo string, d digest.Digest, size int64, took time.Duration)
	gate     Gate
	promoted []func(ctx context.Context, p *contract.Plan)
	quota    Quota
}

// Option configures a Registry.
type Option func(*Registry)

// WithLogger sets the logger (default: slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(r *Registry) { r.log = l } }

// WithManifestPushed calls fn after each manifest PUT has been stored (the
// manifest is then readable), with the repository and the manifest digest.
// fn runs in the request's goroutine before the response is written: it
// must return quickly (e.g. queue work) and must not keep ctx, which ends
// with the request.
func WithManifestPushed(fn func(ctx context.Context, repo string, d digest.Digest)) Option {
	return func(r *Registry) { r.pushed = append(r.pushed, fn) }
}

// WithUploadFinished calls fn after each blob upload has been stored and
// linked, with its size and how long it took from the session's start
// (from the request's start for a one-request upload). Like
// WithManifestPushed's fn, it runs in the request's goroutine.
func WithUploadFinished(fn func(ctx context.Context, repo string, d digest.Digest, size int64, took time.Duration)) Option {
	return func(r *Registry) { r.uploaded = append(r.uploaded, fn) }
}

// WithGate puts g in front of the protected repositories; without a gate
// nothing is protected.
func WithGate(g Gate) Option { return func(r *Registry) { r.gate = g } }

// WithPromoted calls fn after each promotion has been committed (the
// images, their evidence and tags are then readable in the target), with
// the plan the gate allowed: the post-commit step that attaches the gate's
// verification summary (gate.Gate.Promoted). It runs in the request's
// goroutine before the response is written.
func WithPromoted(fn func(ctx context.Context, p *contract.Plan)) Option {
	return func(r *Registry) { r.promoted = append(r.promoted, fn) }
}

// New returns the HTTP API over the storage core s. It is built last:
// the gate and the hooks it calls are built on s first and passed in.
func New(s *store.Store, opts ...Option) *Registry {
	r := &Registry{store: s, meta: s.Metadata(), blobs: s.Blobs(), log: slog.Default()}
	for _, o := range opts {
		o(r)
	}
	return r
}

// Store is the storage core the API serves.
func (r *Registry) Store() *store.Store { return r.store }

// route is a parsed /v2/ path.
type route struct {
	kind string // base, catalog, tags, manifest, blob, uploads, upload, referrers
	name string
	arg  string // reference, digest or upload id
}

// The path markers, in the order to prefer when two end at the same place.
var markers = []struct{ marker, kind string }{
	{"/blobs/uploads/", "upload"},
	{"/manifests/", "manifest"},
	{"/blobs/", "blob"},
	{"/referrers/", "referrers"},
}

// parseRoute splits /v2/<name>/<kind>/<arg>. Repository names may contain
// slashes, so the marker found furthest right wins.
func parseRoute(p string) (route, bool) {
	rest, ok := strings.CutPrefix(p, "/v2/")
	if !ok {
		if p == "/v2" {
			return route{kind: "base"}, true
		}
		return route{}, false
	}
	switch {
	case rest == "":
		return route{kind: "base"}, true
	case rest == "_catalog":
		return route{kind: "catalog"}, true
	}
	if name, ok := strings.CutSuffix(rest, "/tags/list"); ok {
		return route{kind: "tags", name: name}, true
	}
	if name, ok := strings.CutSuffix(rest, "/blobs/uploads/"); ok {
		return route{kind: "uploads", name: name}, true
	}
	if name, ok := strings.CutSuffix(rest, "/blobs/uploads"); ok {
		return route{kind: "uploads", name: name}, true
	}
	best, at := -1, -1
	for i, m := range markers {
		if j := strings.LastIndex("/"+rest, m.marker); j > at {
			best, at = i, j
		}
	}
	if best < 0 || at == 0 {
		return route{}, false
	}
	m := markers[best]
	name := rest[:at-1]
	arg := rest[at-1+len(m.marker):]
	if arg == "" || strings.Contains(arg, "/") {
		return route{}, false
	}
	return route{kind: m.kind, name: name, arg: arg}, true
}

func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	var e *regError
	if err := panics.Do(req.Context(), r.log, "registry.ServeHTTP", func() error { e = r.serve(w, req); return nil }); err != nil {
		e = panicError(err)
	}
	if e != nil {
		r.writeError(w, req, e)
	}
}

func (r *Registry) serve(w http.ResponseWriter, req *http.Request) *regError {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	rt, ok := parseRoute(req.URL.Path)
	if !ok {
		return newError(http.StatusNotFound, codeNameUnknown, "no route for %s", req.URL.Path)
	}
	if rt.kind != "base" && rt.kind != "catalog" {
		if err := ValidateRepository(rt.name); err != nil {
			return newError(http.StatusBadRequest, codeNameInvalid, "%v", err)
		}
	}
	type handler func(http.ResponseWriter, *http.Request, route) *regError
	var h handler
	switch rt.kind + " " + req.Method {
	case "base GET", "base HEAD":
		h = r.base
	case "catalog GET":
		h = r.catalog
	case "tags GET":
		h = r.listTags
	case "manifest GET", "manifest HEAD":
		h = r.getManifest
	case "manifest PUT":
		h = r.putManifest
	case "manifest DELETE":
		h = r.deleteManifest
	case "blob GET", "blob HEAD":
		h = r.getBlob
	case "blob DELETE":
		h = r.deleteBlob
	case "uploads POST":
		h = r.startUpload
	case "upload GET":
		h = r.uploadStatus
	case "upload PATCH":
		h = r.patchUpload
	case "upload PUT":
		h = r.finishUpload
	case "upload DELETE":
		h = r.cancelUpload
	case "referrers GET":
		h = r.referrers
	default:
		return newError(http.StatusMethodNotAllowed, codeUnsupported, "%s is not supported on %s", req.Method, req.URL.Path)
	}
	return h(w, req, rt)
}

func (r *Registry) base(w http.ResponseWriter, req *http.Request, _ route) *regError {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", "2")
	w.WriteHeader(http.StatusOK)
	if req.Method != http.MethodHead {
		_, _ = w.Write([]byte("{}"))
	}
	return nil
}
