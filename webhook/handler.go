// Package webhook is the Kubernetes admission webhook: it answers
// admission.k8s.io/v1 AdmissionReviews for workloads, pinning image tags to
// digests (POST /mutate) and asking the gate about every image (POST
// /validate), with the same policies as promotion.
package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"

	"github.com/opencontainers/go-digest"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/portcullis-dev/portcullis/internal/panics"
	"github.com/portcullis-dev/portcullis/policy/contract"
)

// Decider takes one decision per image; *gate.Gate is one.
type Decider interface {
	Evaluate(ctx context.Context, req contract.Request) *contract.Decision
}

// Resolver maps an image reference, as written in a pod spec, to where
// the gate reads it from and its digest. For a reference that carries a
// digest it must return that digest and should not contact a registry
// (the warm admission path makes no registry requests).
type Resolver interface {
	Resolve(ctx context.Context, image string) (Location, error)
}

// Location is where an image is read from.
type Location struct {
	// Registry is the host of another registry, or "" for the registry
	// the gate guards.
	Registry   string
	Repository string
	Digest     digest.Digest
}

// maxBody bounds an AdmissionReview (the API server's objects are at most
// 3 MiB; a review holds the object and the old object).
const maxBody = 8 << 20

// Handler serves POST /validate and POST /mutate. It is safe for
// concurrent use.
type Handler struct {
	cfg      Config
	decider  Decider
	resolver Resolver
	cache    *decisionCache
	log      *slog.Logger
	mux      *http.ServeMux
}

// New returns a handler deciding with d and resolving tags with r.
func New(cfg Config, d Decider, r Resolver) (*Handler, error) {
	if d == nil || r == nil {
		return nil, errors.New("webhook: a decider and a resolver are required")
	}
	if cfg.Authenticator == nil {
		return nil, errors.New("webhook: an authenticator is required (see AuthConfig)")
	}
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	h := &Handler{
		cfg: cfg, decider: d, resolver: r, log: cfg.Logger,
		cache: newDecisionCache(cfg.CacheSize, cfg.CacheAllowTTL, cfg.CacheDenyTTL, cfg.Now),
		mux:   http.NewServeMux(),
	}
	h.mux.Handle("POST /validate", h.review(h.validate))
	h.mux.Handle("POST /mutate", h.review(h.mutate))
	return h, nil
}

// ServeHTTP authenticates the caller first: one that is not the API
// server gets 401 and nothing else, whatever it asked for (I5).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	caller, err := h.cfg.Authenticator.Authenticate(r)
	if err != nil {
		h.log.WarnContext(r.Context(), "webhook: unauthenticated request refused", "remote", r.RemoteAddr, "path", r.URL.Path, "err", err)
		w.Header().Set("WWW-Authenticate", `Bearer realm="portcullis-webhook"`)
		http.Error(w, http.StatusText(http.StatusUnauthorized), http.StatusUnauthorized)
		return
	}
	h.mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, caller)))
}

type callerKey struct{}

// callerOf is who sent the request of ctx.
func callerOf(ctx context.Context) Caller {
	c, _ := ctx.Value(callerKey{}).(Caller)
	return c
}

// CacheStats counts decision cache hits and misses since New.
func (h *Handler) CacheStats() CacheStats { return h.cache.stats() }

// reviewError is a review the webhook cannot answer: it is rendered as
// an HTTP error and, when the request's UID is known, a denial.
type reviewError struct {
	status int
	uid    types.UID
	msg    string
}

func (e *reviewError) Error() string { return e.msg }

type reviewFunc func(ctx context.Context, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse

// review decodes the AdmissionReview, runs f and renders the result; the
// one place that writes responses.
func (h *Handler) review(f reviewFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := decodeReview(w, r)
		if err != nil {
			var re *reviewError
			if !errors.As(err, &re) {
				re = &reviewError{status: http.StatusBadRequest, msg: err.Error()}
			}
			h.log.WarnContext(r.Context(), "webhook: bad admission review", "path", r.URL.Path, "status", re.status, "err", re.msg)
			if re.uid == "" {
				http.Error(w, re.msg, re.status)
				return
			}
			write(w, re.status, &admissionv1.AdmissionResponse{UID: re.uid, Allowed: false, Result: &metav1.Status{
				Status: metav1.StatusFailure, Code: int32(re.status), Reason: metav1.StatusReasonBadRequest, Message: re.msg,
			}})
			return
		}
		if !callerOf(r.Context()).Trusted {
			// Nobody vouches for the user an unauthenticated caller
			// names: policy, the record and break glass see none.
			req.UserInfo = authenticationv1.UserInfo{}
		}
		var resp *admissionv1.AdmissionResponse
		if err := panics.Do(r.Context(), h.log, "webhook.review", func() error { resp = f(r.Context(), req); return nil }); err != nil {
			resp = h.reviewFailed(r.Context(), req, err)
		}
		resp.UID = req.UID
		write(w, http.StatusOK, resp)
	})
}

// FailureRecorder is an optional capability of a [Decider] (*gate.Gate
// has it): it records the denial of a request that failed outside the
// decider, such as a panic in the webhook, so that every denial has its
// audit record (I3).
type FailureRecorder interface {
	RecordFailure(ctx context.Context, req contract.Request, err error) *contract.Decision
}

// CacheRecorder is an optional capability of a [Decider] (*gate.Gate has
// it): it records an admission answered from the decision cache, one
// record per admission, and returns the decision as recorded (a denial if
// the record could not be written).
type CacheRecorder interface {
	RecordCached(ctx context.Context, req contract.Request, earlier *contract.Decision) *contract.Decision
}

// UncheckedRecorder is an optional capability of a [Decider] (*gate.Gate
// has it): it records an image admitted without a decision (failure mode
// allow-unsafe).
type UncheckedRecorder interface {
	RecordUnchecked(ctx context.Context, req contract.Request, why string) *contract.Decision
}

// recordUnchecked records the unchecked admission of req, if the decider
// can. The check that timed out has a cancelled context; the record must
// still be written.
//
// It returns nil when the admission may go ahead, else the reasons of the
// denial it became (the record could not be written).
func (h *Handler) recordUnchecked(ctx context.Context, req contract.Request, why string) []string {
	ur, ok := h.decider.(UncheckedRecorder)
	if !ok {
		return nil
	}
	if d := ur.RecordUnchecked(context.WithoutCancel(ctx), req, why); d != nil && !d.Allow {
		if rs := d.Reasons(); len(rs) > 0 {
			return rs
		}
		return []string{"the unchecked admission could not be recorded"}
	}
	return nil
}

// recordFailure records that deciding req failed with err, if the decider
// can, and returns the reasons to show.
func (h *Handler) recordFailure(ctx context.Context, req contract.Request, err error) []string {
	if fr, ok := h.decider.(FailureRecorder); ok {
		if d := fr.RecordFailure(ctx, req, err); d != nil {
			if rs := d.Reasons(); len(rs) > 0 {
				return rs
			}
		}
	}
	if pe := (*panics.Error)(nil); errors.As(err, &pe) {
		return []string{"the request is denied: " + err.Error()}
	}
	return []string{err.Error()}
}

// reviewFailed answers a review whose handling panicked with err: a
// denial, recorded. It names no user: the review is recorded as the
// workload's namespace, kind and name only.
func (h *Handler) reviewFailed(ctx context.Context, req *admissionv1.AdmissionRequest, err error) *admissionv1.AdmissionResponse {
	target := contract.Target{Kubernetes: &contract.KubernetesTarget{Namespace: req.Namespace,
		Workload: contract.Workload{Kind: req.Kind.Kind, Name: req.Name}}}
	reasons := h.recordFailure(ctx, contract.Request{Action: contract.ActionAdmit, Target: target}, err)
	return denied(http.StatusInternalServerError, fmt.Sprintf("portcullis could not decide on %s %s/%s: %s", req.Kind.Kind, req.Namespace, req.Name, strings.Join(reasons, "; ")), nil)
}

// labelsFailed denies a review whose namespace's labels could not be
// read, with a record.
func (h *Handler) labelsFailed(ctx context.Context, req *admissionv1.AdmissionRequest, err error) *admissionv1.AdmissionResponse {
	err = fmt.Errorf("portcullis could not read the labels of namespace %s: %w", req.Namespace, err)
	h.log.WarnContext(ctx, "webhook: namespace labels", "namespace", req.Namespace, "err", err)
	target := contract.Target{Kubernetes: &contract.KubernetesTarget{Namespace: req.Namespace,
		Workload: contract.Workload{Kind: req.Kind.Kind, Name: req.Name}}}
	reasons := h.recordFailure(ctx, contract.Request{Action: contract.ActionAdmit, Target: target}, err)
	return denied(http.StatusForbidden, fmt.Sprintf("portcullis denied %s %s/%s: %s", req.Kind.Kind, req.Namespace, req.Name, strings.Join(reasons, "; ")), nil)
}

func write(w http.ResponseWriter, status int, resp *admissionv1.AdmissionResponse) {
	out := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: admissionv1.SchemeGroupVersion.String(), Kind: "AdmissionReview"},
		Response: resp,
	}
	b, err := json.Marshal(&out)
	if err != nil {
		http.Error(w, "encoding the response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// decodeReview reads an admission.k8s.io/v1 AdmissionReview with a
// request.
func decodeReview(w http.ResponseWriter, r *http.Request) (*admissionv1.AdmissionRequest, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return nil, &reviewError{status: http.StatusUnsupportedMediaType, msg: fmt.Sprintf("content type %q: want application/json", ct)}
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, &reviewError{status: http.StatusRequestEntityTooLarge, msg: fmt.Sprintf("admission review larger than %d bytes", maxBody)}
		}
		return nil, fmt.Errorf("reading the admission review: %w", err)
	}
	var rev admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &rev); err != nil {
		return nil, &reviewError{status: http.StatusBadRequest, uid: peekUID(body), msg: fmt.Sprintf("malformed admission review: %v", err)}
	}
	var uid types.UID
	if rev.Request != nil {
		uid = rev.Request.UID
	}
	if rev.APIVersion != admissionv1.SchemeGroupVersion.String() || rev.Kind != "AdmissionReview" {
		return nil, &reviewError{status: http.StatusBadRequest, uid: uid, msg: fmt.Sprintf(
			"unsupported admission review %q, kind %q: want apiVersion %s, kind AdmissionReview (set admissionReviewVersions: [v1])",
			rev.APIVersion, rev.Kind, admissionv1.SchemeGroupVersion)}
	}
	if rev.Request == nil {
		return nil, &reviewError{status: http.StatusBadRequest, msg: "admission review without a request"}
	}
	if uid == "" {
		return nil, &reviewError{status: http.StatusBadRequest, msg: "admission request without a uid"}
	}
	return rev.Request, nil
}

// peekUID reads request.uid from a body that did not decode as a review,
// so that the error can still be answered as a review.
func peekUID(body []byte) types.UID {
	var v struct {
		Request struct {
			UID string `json:"uid"`
		} `json:"request"`
	}
	if json.Unmarshal(body, &v) != nil {
		return ""
	}
	return types.UID(v.Request.UID)
}

// allowed is an untouched admission.
func allowed(warnings ...string) *admissionv1.AdmissionResponse {
	return &admissionv1.AdmissionResponse{Allowed: true, Warnings: warnings}
}

// denied refuses with msg.
func denied(code int32, msg string, warnings []string) *admissionv1.AdmissionResponse {
	reason := metav1.StatusReasonForbidden
	if code == http.StatusBadRequest {
		reason = metav1.StatusReasonBadRequest
	}
	return &admissionv1.AdmissionResponse{Allowed: false, Warnings: warnings, Result: &metav1.Status{
		Status: metav1.StatusFailure, Code: code, Reason: reason, Message: msg,
	}}
}

// target reads the workload of req, or says why the review is answered
// without one (nil workload, non-nil response).
func (h *Handler) target(ctx context.Context, req *admissionv1.AdmissionRequest) (*workload, Mode, *admissionv1.AdmissionResponse) {
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return nil, "", allowed()
	}
	if !supported(req.Kind.Group, req.Kind.Kind) || (req.SubResource != "" && req.SubResource != "ephemeralcontainers") {
		return nil, "", allowed()
	}
	if h.cfg.mode(req.Namespace, nil) == ModeOff && !h.cfg.labelsMayChangeMode(req.Namespace) {
		return nil, ModeOff, allowed()
	}
	var nsLabels map[string]string
	if h.cfg.NamespaceLabels != nil {
		l, err := h.cfg.NamespaceLabels(ctx, req.Namespace)
		if err != nil {
			// Fail closed: unknown labels are not "no labels", which could
			// skip a stricter namespaceSelector policy set or the
			// namespace's enforce label (I7).
			return nil, "", h.labelsFailed(ctx, req, err)
		}
		nsLabels = l
	}
	mode := h.cfg.mode(req.Namespace, nsLabels)
	if mode == ModeOff {
		return nil, mode, allowed()
	}
	wl, err := extract(req.Kind.Group, req.Kind.Kind, req.Object.Raw)
	if err != nil {
		return nil, mode, denied(http.StatusBadRequest, "portcullis: "+err.Error(), nil)
	}
	wl.NamespaceLabels, wl.Mode = nsLabels, mode
	if req.Operation == admissionv1.Update && len(req.OldObject.Raw) > 0 {
		// Only images the update introduces are checked: an update that
		// changes no image (scale, labels, finalizers) is not blocked by a
		// policy that changed since the workload was admitted.
		if old, err := extract(req.Kind.Group, req.Kind.Kind, req.OldObject.Raw); err == nil {
			seen := make(map[string]bool, len(old.Images))
			for _, im := range old.Images {
				seen[im.Image] = true
			}
			kept := wl.Images[:0:0]
			for _, im := range wl.Images {
				if !seen[im.Image] {
					kept = append(kept, im)
				}
			}
			wl.Images = kept
		}
	}
	if len(wl.Images) == 0 {
		return nil, mode, allowed()
	}
	return wl, mode, nil
}
