package gate_test

import (
	"crypto"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/internal/yamltypes"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/policy/contract"
	"github.com/portcullis-dev/portcullis/verifier"
	vt "github.com/portcullis-dev/portcullis/verifier/verifiertest"
)

// bundleEverywhere decides promotions into prod and admissions with the
// same bundle, as `portcullis serve` does with its default policy.
func bundleEverywhere(t *testing.T, dir string) *policy.Set {
	t.Helper()
	ps, err := policy.NewSet(t.Context(), policy.Config{Default: policy.SetConfig{Bundle: dir},
		Sets: []policy.SetConfig{{Name: "prod", Registry: &policy.RegistryMatch{Prefixes: []string{"prod"}}, Bundle: dir}}},
		policy.SetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

// TestAdmissionFastPath: the VSA stands in for collecting and verifying
// the evidence of a promoted image only while it is this gate's, for this
// digest and repository, verified under the current trust configuration
// over the evidence stored with the image now, and young enough; and the
// admission's own policy decides on it either way (I4).
func TestAdmissionFastPath(t *testing.T) {
	dir := policyDir(t, requireRelease, nil)
	e := newEnv(t, dir, func(_ *gate.Config, o *gate.Options) { o.Policies = bundleEverywhere(t, dir) })
	d := e.signed(t, e.release, vt.ProvenanceV1)
	if err := e.copyTo(t, d, "1.0"); err != nil {
		t.Fatalf("promotion: %v", err)
	}
	promoted := e.rec.last()

	// The release key replaced: the same authority name, another key.
	replaced, err := verifier.New(verifier.Authority{Name: "release", Keys: []crypto.PublicKey{vt.NewKey(t).Public()}})
	if err != nil {
		t.Fatal(err)
	}
	admit := contract.Request{Action: contract.ActionAdmit, Repository: "prod/app", Digest: d,
		Reference: "registry.local/prod/app@" + d.String(),
		Target:    contract.Target{Kubernetes: &contract.KubernetesTarget{Namespace: "shop", Workload: contract.Workload{Kind: "Pod", Name: "web"}}}}
	references := policyDir(t, `{"portcullis":{"config":{"signatures":{"authorities":["release"]},"references":{}}}}`, nil)
	for _, tc := range []struct {
		name     string
		mod      func(*gate.Config, *gate.Options)
		req      func(r *contract.Request)
		before   func(t *testing.T)
		fastPath bool
		allow    bool
		reason   string
	}{
		{name: "summary signed by this gate", fastPath: true, allow: true},
		{name: "summary signed by another key", mod: func(_ *gate.Config, o *gate.Options) { o.VSAKey = vt.NewKey(t) }, allow: true},
		{name: "trust changed since promotion (key replaced)", mod: func(_ *gate.Config, o *gate.Options) { o.Verifier = replaced }, reason: "release"},
		{name: "another admission policy decides on the summary", fastPath: true, allow: true,
			mod: func(_ *gate.Config, o *gate.Options) { o.Policies = bundleEverywhere(t, references) }},
		{name: "admission rules apply on the summary: latest", fastPath: true, reason: `"latest"`,
			mod: func(_ *gate.Config, o *gate.Options) { o.Policies = bundleEverywhere(t, references) },
			req: func(r *contract.Request) { r.Tag, r.Reference = "latest", "registry.local/prod/app:latest@"+d.String() }},
		{name: "admission rules apply on the summary: tag only", fastPath: true, reason: "not pinned by digest",
			mod: func(_ *gate.Config, o *gate.Options) { o.Policies = bundleEverywhere(t, references) },
			req: func(r *contract.Request) { r.Tag, r.Reference = "1.0", "registry.local/prod/app:1.0" }},
		{name: "summary too old", allow: true, mod: func(c *gate.Config, o *gate.Options) {
			c.VSAMaxAge = yamltypes.Duration(time.Hour)
			o.Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
		}},
		{name: "not a protected repository", allow: true, req: func(r *contract.Request) { r.Repository = "staging/app" }},
		{name: "a promotion never takes the fast path", allow: true, req: func(r *contract.Request) {
			r.Action, r.Repository, r.Target = contract.ActionPromote, "staging/app", contract.Target{Registry: &contract.RegistryTarget{Repository: "prod/app"}}
		}},
		{name: "another digest", reason: "release", req: func(r *contract.Request) { r.Digest = e.signed(t, e.release, "") }},
		// Last: it changes prod/app@d for good.
		{name: "evidence added since promotion", allow: true, before: func(t *testing.T) {
			// A second signature, as `cosign sign` on prod/app@d writes it
			// (its blobs pushed to staging first, as prod takes no new blobs).
			st := vt.Statement(t, d, vt.CosignSign, `{}`)
			b := vt.Bundle(t, vt.KeyMaterial(t, e.release), vt.PayloadTypeInToto, st, vt.SignDSSE(t, e.release, vt.PayloadTypeInToto, st))
			e.PushBundle(t, "staging/app", d, vt.CosignSign, b)
			e.PushBundle(t, "prod/app", d, vt.CosignSign, b)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.before != nil {
				tc.before(t)
			}
			cfg, o := e.cfg, e.opts
			o.Recorder = &recorder{}
			if tc.mod != nil {
				tc.mod(&cfg, &o)
			}
			g, err := gate.New(cfg, o)
			if err != nil {
				t.Fatal(err)
			}
			req := admit
			if tc.req != nil {
				tc.req(&req)
			}
			dec := g.Evaluate(t.Context(), req)
			reasons := strings.Join(dec.Reasons(), "\n")
			if dec.Input == nil || dec.Allow != tc.allow || (tc.reason != "" && !strings.Contains(reasons, tc.reason)) {
				t.Fatalf("allow %v, reasons %q, input %v: want allow %v, a reason with %q, decided by policy", dec.Allow, reasons, dec.Input != nil, tc.allow, tc.reason)
			}
			if dec.TrustRevision != o.Verifier.Revision() {
				t.Fatalf("trust revision %s, want %s", dec.TrustRevision, o.Verifier.Revision())
			}
			if !tc.fastPath {
				if dec.VSA != nil {
					t.Fatalf("decided on VSA %+v: want a full check", dec.VSA)
				}
				return
			}
			if dec.VSA == nil || dec.CachedEvidence || dec.VSA.Revision != promoted.Revision || dec.VSA.TrustRevision != e.opts.Verifier.Revision() {
				t.Fatalf("vsa %+v, promoted under %s: want the evidence from the VSA", dec.VSA, promoted.Revision)
			}
			if len(dec.Input.Evidence.Signatures.ByAuthority["release"]) == 0 || len(dec.Input.Evidence.Provenance) == 0 {
				t.Fatalf("the VSA's evidence lacks the release signature or the provenance: %+v", dec.Input.Evidence)
			}
			refs, err := e.reg.Store().Source().Referrers(t.Context(), "prod/app", d)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, r := range refs {
				found = found || r.Digest == dec.VSA.Manifest
			}
			if !found {
				t.Fatalf("VSA %s is not a referrer of prod/app@%s", dec.VSA.Manifest, d)
			}
			if rec := gate.AuditRecord(dec); rec.Evidence.VSADigest != dec.VSA.Manifest.String() || len(rec.Evidence.Signers) == 0 {
				t.Fatalf("audit record %+v does not name the VSA and its evidence", rec)
			}
		})
	}
}
