package gate_test

import (
	"crypto"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/policy"
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

func TestAdmissionFastPath(t *testing.T) {
	dir := policyDir(t, requireRelease, nil)
	e := newEnv(t, dir, func(_ *gate.Config, o *gate.Options) { o.Policies = bundleEverywhere(t, dir) })
	d := e.signed(t, e.release, vt.ProvenanceV1)
	if err := e.copyTo(t, d, "1.0"); err != nil {
		t.Fatalf("promotion: %v", err)
	}
	promoted := e.rec.last()

	// Each case decides with a gate that trusts no real signer: the full
	// check denies, so only the verification summary can admit.
	stranger, err := verifier.New(verifier.Authority{Name: "release", Keys: []crypto.PublicKey{vt.NewKey(t).Public()}})
	if err != nil {
		t.Fatal(err)
	}
	admit := gate.Request{Action: policy.ActionAdmit, Repository: "prod/app", Digest: d,
		Target: policy.Target{Kubernetes: &policy.KubernetesTarget{Namespace: "shop", Workload: policy.Workload{Kind: "Pod", Name: "web"}}}}
	otherPolicy := policyDir(t, `{"portcullis":{"config":{"signatures":{"authorities":["release"]}}}}`, nil)
	for _, tc := range []struct {
		name     string
		mod      func(*gate.Config, *gate.Options)
		req      func(r *gate.Request)
		fastPath bool
		why      string
	}{
		{name: "summary signed by this gate", fastPath: true},
		{name: "summary signed by another key", mod: func(_ *gate.Config, o *gate.Options) { o.VSAKey = vt.NewKey(t) }},
		{name: "policy changed since promotion", mod: func(_ *gate.Config, o *gate.Options) { o.Policies = bundleEverywhere(t, otherPolicy) }},
		{name: "summary too old", mod: func(c *gate.Config, o *gate.Options) {
			c.VSAMaxAge = time.Hour
			o.Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
		}},
		{name: "not a protected repository", req: func(r *gate.Request) { r.Repository = "staging/app" }},
		{name: "a promotion never takes the fast path", req: func(r *gate.Request) {
			r.Action, r.Repository, r.Target = policy.ActionPromote, "staging/app", policy.Target{Registry: &policy.RegistryTarget{Repository: "prod/app"}}
		}},
		{name: "another digest", req: func(r *gate.Request) { r.Digest = e.signed(t, e.release, vt.ProvenanceV1) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, o := e.cfg, e.opts
			o.Verifier, o.Recorder = stranger, &recorder{}
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
			if !tc.fastPath {
				if dec.Allow || dec.VSA != nil || dec.Input == nil {
					t.Fatalf("allow %v, vsa %+v, input %v: want a full check that denies", dec.Allow, dec.VSA, dec.Input != nil)
				}
				if !strings.Contains(strings.Join(dec.Reasons(), "\n"), "release") {
					t.Fatalf("reasons %q do not name the missing signature", dec.Reasons())
				}
				return
			}
			if !dec.Allow || dec.VSA == nil || dec.Input != nil || dec.Revision != promoted.Revision {
				t.Fatalf("allow %v, vsa %+v, input %v, revision %s (promoted under %s): want the fast path",
					dec.Allow, dec.VSA, dec.Input != nil, dec.Revision, promoted.Revision)
			}
			refs, err := e.reg.Source().Referrers(t.Context(), "prod/app", d)
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
			if rec := gate.AuditRecord(dec); rec.Evidence.VSADigest != dec.VSA.Manifest.String() || rec.Verdict != "allow" {
				t.Fatalf("audit record %+v does not name the VSA", rec)
			}
		})
	}
}
