package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/internal/panics"
	"github.com/portcullis-dev/portcullis/policy/contract"
)

// PromotionsPath is where POST promotes an image server-side.
const PromotionsPath = "/portcullis/v1/promotions"

// PromotionRequest is the body of POST /portcullis/v1/promotions.
type PromotionRequest struct {
	// Source is "repo@sha256:..." or "repo:tag" in this registry.
	Source string `json:"source"`
	// Target is "repo:tag" (or "repo" for no tag) in a protected namespace.
	Target string `json:"target"`
}

// PromotionResponse is its answer (also on 403, with Allowed false).
type PromotionResponse struct {
	Allowed bool          `json:"allowed"`
	Source  string        `json:"source"`
	Target  string        `json:"target"`
	Digest  digest.Digest `json:"digest,omitempty"`
	// Refused says who refused when Allowed is false: "policy" (the
	// policy decided deny, or failed closed), "access" (the caller may
	// not promote here) or "gate" (a rule of the gate, not of policy: the
	// target is not protected, the source namespace is not in its
	// "from", an immutable tag would move).
	Refused string `json:"refused,omitempty"`
	// Reasons say why it was denied; Warnings are the policy's warnings.
	Reasons   []string `json:"reasons,omitempty"`
	Warnings  []string `json:"warnings,omitempty"`
	PolicySet string   `json:"policySet,omitempty"`
	Revision  string   `json:"revision,omitempty"`
	// Linked counts the manifests linked (image, children, evidence).
	Linked int `json:"linked,omitempty"`
	// LeftBehind are the manifests about the image in the source that are
	// not evidence (docs/gate.md, I2), so were not promoted, and why.
	LeftBehind []contract.LeftBehind `json:"leftBehind,omitempty"`
}

// Who refused a promotion (PromotionResponse.Refused).
const (
	RefusedPolicy = "policy"
	RefusedAccess = "access"
	RefusedGate   = "gate"
)

// PromotionsHandler serves POST /portcullis/v1/promotions: the gate
// decides, then the image, its children, its evidence and the tag are
// linked into the target in one transaction. No blob bytes are copied.
func (r *Registry) PromotionsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost {
			writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "use POST"})
			return
		}
		var (
			status int
			resp   *PromotionResponse
			err    error
		)
		if perr := panics.Do(req.Context(), r.log, "registry.promote", func() error { status, resp, err = r.promote(req); return nil }); perr != nil {
			r.writeError(w, req, panicError(perr))
			return
		}
		if err != nil {
			writeJSON(w, status, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, status, resp)
	})
}

func (r *Registry) promote(req *http.Request) (int, *PromotionResponse, error) {
	if r.gate == nil {
		return http.StatusNotFound, nil, errors.New("no gate is configured")
	}
	var pr PromotionRequest
	dec := json.NewDecoder(io.LimitReader(req.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&pr); err != nil {
		return http.StatusBadRequest, nil, fmt.Errorf("promotion request: %w", err)
	}
	from, fromRef, err := splitImage(pr.Source)
	if err != nil || (fromRef.Tag == "" && fromRef.Digest == "") {
		return http.StatusBadRequest, nil, fmt.Errorf("source %q: want repo@digest or repo:tag", pr.Source)
	}
	to, toRef, err := splitImage(pr.Target)
	if err != nil || toRef.Digest != "" {
		return http.StatusBadRequest, nil, fmt.Errorf("target %q: want repo:tag or repo", pr.Target)
	}
	ctx := req.Context()
	// Permissions first: a refusal must not depend on what exists.
	if !allowed(ctx, from, ActionPull) || !allowed(ctx, to, ActionPromote) {
		return http.StatusForbidden, &PromotionResponse{Source: pr.Source, Target: pr.Target, Refused: RefusedAccess,
			Reasons: []string{fmt.Sprintf("%s may not promote from %s to %s: that needs pull on %s and promote on %s", callerName(ctx), from, to, from, to)}}, nil
	}
	d := fromRef.Digest
	if d == "" {
		if d, err = r.meta.ResolveTag(ctx, from, fromRef.Tag); err != nil {
			return http.StatusNotFound, nil, fmt.Errorf("source %s: %w", pr.Source, err)
		}
	}
	resp := &PromotionResponse{Source: from + "@" + d.String(), Target: pr.Target, Digest: d}
	plan, err := r.gate.AuthorizePromotion(ctx, from, d, to, toRef.Tag, actor(ctx))
	var de *contract.DeniedError
	switch {
	case errors.As(err, &de):
		resp.Reasons, resp.Refused = []string{de.Message}, RefusedGate
		if de.Decision != nil {
			resp.Reasons, resp.PolicySet, resp.Revision = de.Decision.Reasons(), de.Decision.PolicySet, de.Decision.Revision
			resp.Refused = RefusedPolicy
		}
		return http.StatusForbidden, resp, nil
	case err != nil:
		return http.StatusInternalServerError, nil, fmt.Errorf("the gate could not decide, so nothing is promoted: %w", err)
	}
	if e := r.carryOut(ctx, plan); e != nil {
		if e.Status == http.StatusForbidden {
			resp.Reasons, resp.Refused = []string{e.Message}, RefusedGate
			return http.StatusForbidden, resp, nil
		}
		return e.Status, nil, errors.New(e.Message)
	}
	resp.Allowed, resp.Linked, resp.LeftBehind = true, len(plan.Manifests), plan.LeftBehind
	if plan.Decision != nil {
		resp.PolicySet, resp.Revision = plan.Decision.PolicySet, plan.Decision.Revision
		for _, m := range plan.Decision.Warn {
			resp.Warnings = append(resp.Warnings, m.Msg)
		}
	}
	return http.StatusOK, resp, nil
}

// splitImage splits "repo:tag", "repo@digest" or "repo".
func splitImage(s string) (string, Reference, error) {
	repo, ref := s, Reference{}
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		d, err := ParseDigest(s[i+1:])
		if err != nil {
			return "", ref, err
		}
		repo, ref.Digest = s[:i], d
	} else if i := strings.LastIndexByte(s, ':'); i >= 0 && strings.LastIndexByte(s, '/') < i {
		if err := ValidateTag(s[i+1:]); err != nil {
			return "", ref, err
		}
		repo, ref.Tag = s[:i], s[i+1:]
	}
	return repo, ref, ValidateRepository(repo)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
