package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/portcullis-dev/portcullis/internal/panics"
	"github.com/portcullis-dev/portcullis/policy/contract"
)

// patchOp is one RFC 6902 operation.
type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value string `json:"value"`
}

// mutate pins every image that has no digest: repo:tag -> repo:tag@sha256:...
func (h *Handler) mutate(ctx context.Context, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	wl, mode, resp := h.target(ctx, req)
	if resp != nil {
		return resp
	}
	// Images to pin, by reference; the same reference is resolved once.
	var refs []string
	idx := map[string]int{}
	var problems []string
	for _, im := range wl.Images {
		ref, err := parseReference(im.Image)
		if err != nil {
			problems = append(problems, fmt.Sprintf("container %s: %v", im.Container, err))
			continue
		}
		if ref.Digest != "" {
			continue
		}
		if _, ok := idx[im.Image]; !ok {
			idx[im.Image] = len(refs)
			refs = append(refs, im.Image)
		}
	}
	type resolved struct {
		pinned string
		err    error
	}
	out, done := parallel(ctx, h.cfg.Timeout, len(refs), func(ctx context.Context, i int) (r resolved) {
		// Not the HTTP server's goroutine: a panic is this image's error,
		// which refuses the review, never a crash (I3).
		if err := panics.Do(ctx, h.log, "webhook.resolve", func() error {
			loc, err := h.resolver.Resolve(ctx, refs[i])
			if err == nil {
				err = loc.Digest.Validate()
			}
			r = resolved{refs[i] + "@" + loc.Digest.String(), err}
			return nil
		}); err != nil {
			target := contract.Target{Kubernetes: &contract.KubernetesTarget{Namespace: req.Namespace, Workload: contract.Workload{Kind: wl.Kind, Name: wl.Name}}}
			r = resolved{err: errors.New(strings.Join(h.recordFailure(ctx, contract.Request{Action: contract.ActionAdmit, Reference: refs[i], Target: target, Enforcement: enforcement(mode)}, err), "; "))}
		}
		return r
	})
	var warnings []string
	for i, ref := range refs {
		switch {
		case !done[i] && h.cfg.FailureMode == FailOpenUnsafe:
			warnings = append(warnings, fmt.Sprintf("portcullis: image %q was not pinned: resolving it timed out after %s (failure mode %s)", ref, h.cfg.Timeout, FailOpenUnsafe))
		case !done[i]:
			problems = append(problems, fmt.Sprintf("image %q: resolving it to a digest timed out after %s", ref, h.cfg.Timeout))
		case out[i].err != nil:
			problems = append(problems, fmt.Sprintf("image %q: could not resolve it to a digest: %v", ref, out[i].err))
		}
	}
	var patch []patchOp
	for _, im := range wl.Images {
		if i, ok := idx[im.Image]; ok && done[i] && out[i].err == nil {
			patch = append(patch, patchOp{Op: "replace", Path: im.Path, Value: out[i].pinned})
		}
	}
	what := fmt.Sprintf("%s %s/%s", wl.Kind, req.Namespace, wl.Name)
	if len(problems) > 0 {
		_, breakGlass := wl.annotation(BreakGlassAnnotation)
		switch {
		case breakGlass:
			// The validating webhook decides whether break glass applies;
			// refusing here would take that decision away from it.
			for _, p := range problems {
				warnings = append(warnings, fmt.Sprintf("portcullis: %s asks for break glass; not pinned: %s", what, p))
			}
		case mode != ModeWarn:
			return denied(http.StatusForbidden, fmt.Sprintf("portcullis could not pin the images of %s: %s", what, strings.Join(problems, ". ")), warnings)
		default:
			for _, p := range problems {
				warnings = append(warnings, fmt.Sprintf("portcullis (warn mode in namespace %s) would deny %s: %s", req.Namespace, what, p))
			}
		}
	}
	resp = allowed(warnings...)
	if len(patch) > 0 {
		b, err := json.Marshal(patch)
		if err != nil {
			return denied(http.StatusInternalServerError, "portcullis: encoding the patch: "+err.Error(), warnings)
		}
		pt := admissionv1.PatchTypeJSONPatch
		resp.Patch, resp.PatchType = b, &pt
	}
	return resp
}
