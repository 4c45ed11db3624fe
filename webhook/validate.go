package webhook

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	admissionv1 "k8s.io/api/admission/v1"

	"github.com/portcullis-dev/portcullis/internal/panics"
	"github.com/portcullis-dev/portcullis/policy/contract"
)

// ImageResult is the outcome for one distinct image of a workload.
type ImageResult struct {
	Image      string        `json:"image"`
	Containers []string      `json:"containers"`
	Repository string        `json:"repository,omitempty"`
	Digest     digest.Digest `json:"digest,omitempty"`
	Allowed    bool          `json:"allowed"`
	Reasons    []string      `json:"reasons,omitempty"`
	Warnings   []string      `json:"warnings,omitempty"`
	// TimedOut says the check did not finish before the deadline.
	TimedOut bool `json:"timedOut,omitempty"`
	// Cached says the decision came from the decision cache.
	Cached bool `json:"cached,omitempty"`
}

// distinct groups the images of wl by reference, in order of first use.
func distinct(images []ContainerImage) []ImageResult {
	idx := make(map[string]int, len(images))
	var out []ImageResult
	for _, im := range images {
		i, ok := idx[im.Image]
		if !ok {
			i = len(out)
			idx[im.Image] = i
			out = append(out, ImageResult{Image: im.Image})
		}
		out[i].Containers = append(out[i].Containers, im.Container)
	}
	return out
}

// parallel runs f for every index with a total deadline. done[i] is false
// for calls that had not returned at the deadline; they keep running, with
// a cancelled context, and their results are dropped.
func parallel[T any](ctx context.Context, timeout time.Duration, n int, f func(ctx context.Context, i int) T) (out []T, done []bool) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	type res struct {
		i int
		v T
	}
	ch := make(chan res, n) // buffered: late goroutines never block
	for i := range n {
		go func() { ch <- res{i, f(ctx, i)} }()
	}
	out, done = make([]T, n), make([]bool, n)
	for range n {
		select {
		case r := <-ch:
			out[r.i], done[r.i] = r.v, true
		case <-ctx.Done():
			return out, done
		}
	}
	return out, done
}

// validate asks the gate about every distinct image of the workload.
func (h *Handler) validate(ctx context.Context, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	wl, mode, resp := h.target(ctx, req)
	if resp != nil {
		return resp
	}
	ns := req.Namespace
	actor := contract.Actor{
		ServiceAccount: wl.serviceAccount(ns),
		PodLabels:      wl.PodMeta.Labels,
	}
	if req.UserInfo.Username != "" {
		actor.Identity = &contract.Identity{Name: req.UserInfo.Username, Groups: req.UserInfo.Groups}
	}
	results := distinct(wl.Images)
	// Checks that outlive the deadline still read their input: give them a
	// copy that this goroutine does not write.
	inputs := slices.Clone(results)
	checked, done := parallel(ctx, h.cfg.Timeout, len(results), func(ctx context.Context, i int) ImageResult {
		r := inputs[i]
		// This goroutine is not the HTTP server's: a panic here would end
		// the process. It denies the image instead, with a record (I3).
		if err := panics.Do(ctx, h.log, "webhook.check", func() error { h.check(ctx, &r, wl, ns, actor); return nil }); err != nil {
			r = h.checkFailed(ctx, inputs[i], r, wl, ns, actor, err)
		}
		return r
	})
	var warnings, deniedMsgs []string
	var deniedResults []ImageResult
	for i := range results {
		r := &results[i]
		if done[i] {
			*r = checked[i]
		} else {
			r.TimedOut = true
			if h.cfg.FailureMode == FailOpenUnsafe {
				msg := fmt.Sprintf("image %q was admitted unchecked: the check timed out after %s (failure mode %s)", r.Image, h.cfg.Timeout, FailOpenUnsafe)
				// Unsafe is about the check, never the record: an unchecked
				// admission that cannot be recorded is a denial.
				if r.Reasons = h.recordUnchecked(ctx, h.admitRequest(r, wl, ns, actor), msg); r.Reasons == nil {
					warnings = append(warnings, "portcullis: "+msg)
					r.Allowed = true
					continue
				}
			} else {
				// The check's own record, if it is ever taken, is refused: its
				// context ended at the deadline. This one says why.
				r.Reasons = h.recordFailure(context.WithoutCancel(ctx), h.admitRequest(r, wl, ns, actor), fmt.Errorf("the check timed out after %s", h.cfg.Timeout))
			}
		}
		for _, w := range r.Warnings {
			warnings = append(warnings, fmt.Sprintf("portcullis: image %q: %s", r.Image, w))
		}
		if !r.Allowed {
			deniedResults = append(deniedResults, *r)
			deniedMsgs = append(deniedMsgs, fmt.Sprintf("image %q (%s): %s", r.Image, containerList(r.Containers), strings.Join(r.Reasons, "; ")))
		}
	}
	if len(deniedResults) == 0 {
		return allowed(warnings...)
	}
	what := fmt.Sprintf("%s %s/%s", wl.Kind, ns, wl.Name)
	summary := strings.Join(deniedMsgs, ". ")
	if mode == ModeWarn {
		for _, m := range deniedMsgs {
			warnings = append(warnings, fmt.Sprintf("portcullis (warn mode in namespace %s) would deny %s: %s", ns, what, m))
		}
		return allowed(warnings...)
	}
	if resp := h.breakGlass(ctx, req, wl, deniedResults, warnings); resp != nil {
		return resp
	}
	return denied(http.StatusForbidden, fmt.Sprintf("portcullis denied %s: %s", what, summary), warnings)
}

// admitRequest is the gate request for image r of wl, as far as it is
// known without resolving it (for records of checks that did not finish).
// In a namespace in warn mode its Enforcement says so: whatever is decided
// is admitted, and the record must say it ran.
func (h *Handler) admitRequest(r *ImageResult, wl *workload, ns string, actor contract.Actor) contract.Request {
	return contract.Request{Action: contract.ActionAdmit, Reference: r.Image, Actor: actor, Enforcement: enforcement(wl.Mode),
		Target: contract.Target{Kubernetes: &contract.KubernetesTarget{Namespace: ns, NamespaceLabels: wl.NamespaceLabels,
			Workload: contract.Workload{Kind: wl.Kind, Name: wl.Name}, Container: r.Containers[0]}}}
}

// enforcement is the contract.Request.Enforcement of an admission in a
// namespace in mode m.
func enforcement(m Mode) string {
	if m == ModeWarn {
		return contract.EnforcementWarn
	}
	return ""
}

// checkFailed is the result for an image whose check panicked with err
// (partial is what the check had filled in): a denial, recorded by the
// decider when it can record ([FailureRecorder]).
func (h *Handler) checkFailed(ctx context.Context, in, partial ImageResult, wl *workload, ns string, actor contract.Actor, err error) ImageResult {
	r := in
	r.Repository, r.Digest = partial.Repository, partial.Digest
	r.Allowed = false
	req := h.admitRequest(&r, wl, ns, actor)
	req.Repository, req.Digest = r.Repository, r.Digest
	r.Reasons = h.recordFailure(ctx, req, err)
	return r
}

// check resolves and decides one image, from the cache when it can.
//
// Every outcome is a record (docs/audit.md): the gate records what it
// decides, [CacheRecorder] an answer from the cache, and [FailureRecorder]
// an image refused before the gate was asked (a reference that does not
// parse or resolve).
func (h *Handler) check(ctx context.Context, r *ImageResult, wl *workload, ns string, actor contract.Actor) {
	refused := func(repo string, d digest.Digest, err error) {
		req := h.admitRequest(r, wl, ns, actor)
		req.Repository, req.Digest = repo, d
		r.Reasons = h.recordFailure(ctx, req, err)
	}
	ref, err := parseReference(r.Image)
	if err != nil {
		refused("", "", err)
		return
	}
	loc, err := h.resolver.Resolve(ctx, r.Image)
	repo, d := loc.Repository, loc.Digest
	if err != nil {
		refused(repo, ref.Digest, fmt.Errorf("could not resolve the image to a digest: %w", err))
		return
	}
	if ref.Digest != "" {
		d = ref.Digest // what the kubelet pulls
	}
	if err := d.Validate(); err != nil {
		refused(repo, "", fmt.Errorf("the resolver gave an invalid digest %q: %w", d, err))
		return
	}
	r.Repository, r.Digest = repo, d
	req := new(h.admitRequest(r, wl, ns, actor))
	req.Registry, req.Repository, req.Digest, req.Tag = loc.Registry, repo, d, ref.Tag
	target := req.Target
	policyRev, trustRev := "", ""
	if rr, ok := h.decider.(RevisionReporter); ok {
		policyRev = rr.RevisionFor(target)
	}
	if tr, ok := h.decider.(TrustReporter); ok {
		trustRev = tr.TrustRevision()
	}
	dec, ok := h.cache.get(req, policyRev, trustRev)
	r.Cached = ok
	switch {
	case ok:
		if cr, can := h.decider.(CacheRecorder); can {
			dec = cr.RecordCached(ctx, *req, dec)
		}
	default:
		dec = h.decider.Evaluate(ctx, *req)
		if dec == nil {
			refused(repo, d, errors.New("the gate gave no decision"))
			return
		}
		h.cache.put(req, dec)
	}
	r.Allowed = dec.Allow && dec.Error == ""
	for _, w := range dec.Warn {
		r.Warnings = append(r.Warnings, w.Msg)
	}
	if !r.Allowed {
		r.Reasons = dec.Reasons()
		if len(r.Reasons) == 0 {
			r.Reasons = []string{"denied by policy without a reason"}
		}
		if dec.Revision != "" {
			r.Reasons = append(r.Reasons, "policy revision "+shortRev(dec.Revision))
		}
	}
}

// breakGlass admits a denied workload that carries the break-glass
// annotation in a namespace where it is enabled and not expired; it
// returns nil when break glass does not apply, and a denial that says why
// when it was asked for and refused.
func (h *Handler) breakGlass(ctx context.Context, req *admissionv1.AdmissionRequest, wl *workload, deniedResults []ImageResult, warnings []string) *admissionv1.AdmissionResponse {
	why, ok := wl.annotation(BreakGlassAnnotation)
	if !ok {
		return nil
	}
	ns := req.Namespace
	what := fmt.Sprintf("%s %s/%s", wl.Kind, ns, wl.Name)
	var msgs []string
	for _, r := range deniedResults {
		msgs = append(msgs, fmt.Sprintf("image %q: %s", r.Image, strings.Join(r.Reasons, "; ")))
	}
	refuse := func(why string) *admissionv1.AdmissionResponse {
		return denied(http.StatusForbidden, fmt.Sprintf("portcullis denied %s: %s. Break glass refused: %s", what, strings.Join(msgs, ". "), why), warnings)
	}
	until, enabled := h.cfg.breakGlassUntil(ns)
	now := h.cfg.Now()
	switch {
	case strings.TrimSpace(why) == "":
		return refuse(fmt.Sprintf("the %s annotation must give a justification", BreakGlassAnnotation))
	case !enabled:
		return refuse(fmt.Sprintf("break glass is not enabled in namespace %s", ns))
	case !now.Before(until):
		return refuse(fmt.Sprintf("break glass in namespace %s expired at %s", ns, until.UTC().Format(time.RFC3339)))
	}
	if req.UserInfo.Username == "" {
		// Only an authenticated API server vouches for the user; a break
		// glass nobody can be held to is no break glass.
		return refuse("the request names no user (the webhook is unauthenticated, or the API server sent none); break glass is recorded with the user who asked")
	}
	bg := BreakGlass{
		UID: string(req.UID), Namespace: ns, Kind: wl.Kind, Name: wl.Name,
		User: req.UserInfo.Username, Groups: req.UserInfo.Groups,
		Justification: why, Until: until, Overridden: deniedResults,
	}
	// A dry run overrides nothing: it is not recorded (the webhook
	// configurations declare sideEffects: None). Anything else is admitted
	// only once its record is written (I6).
	if req.DryRun == nil || !*req.DryRun {
		if err := h.cfg.OnBreakGlass(ctx, bg); err != nil {
			h.log.ErrorContext(ctx, "webhook: break glass refused: recording it failed", "namespace", ns, "kind", wl.Kind, "name", wl.Name, "user", bg.User, "err", err)
			return refuse(fmt.Sprintf("its audit record could not be written (%v); break glass admits only what is recorded", err))
		}
	}
	h.log.WarnContext(ctx, "webhook: break glass", "namespace", ns, "kind", wl.Kind, "name", wl.Name, "user", bg.User, "justification", why, "denied", len(deniedResults))
	warnings = append(warnings, fmt.Sprintf("portcullis: BREAK GLASS by %s (%q, until %s) admitted %s despite: %s",
		bg.User, why, until.UTC().Format(time.RFC3339), what, strings.Join(msgs, ". ")))
	resp := allowed(warnings...)
	resp.AuditAnnotations = map[string]string{"break-glass": why}
	return resp
}

func containerList(cs []string) string {
	if len(cs) == 1 {
		return "container " + cs[0]
	}
	return "containers " + strings.Join(cs, ", ")
}

func shortRev(r string) string {
	if _, hex, ok := strings.Cut(r, ":"); ok && len(hex) > 12 {
		return r[:len(r)-len(hex)] + hex[:12]
	}
	return r
}
