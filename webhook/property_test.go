package webhook_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"
	admissionv1 "k8s.io/api/admission/v1"

	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/policy/contract"
	"github.com/portcullis-dev/portcullis/registry"
	"github.com/portcullis-dev/portcullis/registry/registrytest"
	"github.com/portcullis-dev/portcullis/scanner"
	"github.com/portcullis-dev/portcullis/verifier"
	vt "github.com/portcullis-dev/portcullis/verifier/verifiertest"
	"github.com/portcullis-dev/portcullis/webhook"
)

// tagResolver resolves registry.local/REPO:TAG through tags and takes
// the digest of a reference that has one (as the server's resolver does).
type tagResolver map[string]digest.Digest // "repo:tag" -> digest

func (m tagResolver) Resolve(_ context.Context, image string) (webhook.Location, error) {
	rest, ok := strings.CutPrefix(image, "registry.local/")
	if !ok {
		return webhook.Location{}, fmt.Errorf("%s: not this registry", image)
	}
	var d digest.Digest
	if i := strings.IndexByte(rest, '@'); i >= 0 {
		d, rest = digest.Digest(rest[i+1:]), rest[:i]
	}
	repo, tag, hasTag := strings.Cut(rest, ":")
	if d == "" {
		if d, ok = m[repo+":"+tag]; !hasTag || !ok {
			return webhook.Location{}, fmt.Errorf("%s: manifest unknown", image)
		}
	}
	return webhook.Location{Repository: repo, Digest: d}, nil
}

// swapDecider decides with the gate it currently holds, and reports its
// revisions, as the server's gate does (so that one webhook, and its
// cache, outlives a change of trust or policy).
type swapDecider struct{ g atomic.Pointer[gate.Gate] }

func (s *swapDecider) Evaluate(ctx context.Context, r contract.Request) *contract.Decision {
	return s.g.Load().Evaluate(ctx, r)
}
func (s *swapDecider) RevisionFor(t contract.Target) string { return s.g.Load().RevisionFor(t) }
func (s *swapDecider) TrustRevision() string                { return s.g.Load().TrustRevision() }

// phasedScanner is the registry's scanner: image 1.0 is clean until
// phase 1, when a fixed critical CVE is found in it; image 3.0 cannot be
// scanned. A VSA carries no scan, so the fast path must see the change.
type phasedScanner struct {
	phase              atomic.Int32
	vulnerable, broken digest.Digest
}

func (s *phasedScanner) Report(_ context.Context, _ string, d digest.Digest) (*scanner.Report, error) {
	if d == s.broken {
		return nil, errors.New("no vulnerability database")
	}
	r := &scanner.Report{Digest: d.String(), Scanner: scanner.ScannerInfo{Name: "trivy", Version: "test"},
		Counts: map[string]int{"CRITICAL": 0, "HIGH": 0, "MEDIUM": 0, "LOW": 0, "UNKNOWN": 0}, Vulnerabilities: []scanner.Vulnerability{}}
	if d == s.vulnerable && s.phase.Load() == 1 {
		r.Vulnerabilities = append(r.Vulnerabilities, scanner.Vulnerability{ID: "CVE-2026-0001", Package: "musl", InstalledVersion: "1.2.5-r0",
			FixedVersion: "1.2.5-r1", Severity: scanner.SeverityCritical})
		r.Counts["CRITICAL"] = 1
	}
	return r, nil
}

// vsaCounter records decisions and counts those taken on a VSA.
type vsaCounter struct {
	mu  sync.Mutex
	vsa int
	all int
}

func (c *vsaCounter) Record(_ context.Context, d *contract.Decision) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.all++
	if d.VSA != nil {
		c.vsa++
	}
	return nil
}

// customRules are rules on the admission's own input: the namespace, its
// labels, the workload kind, the user, the action.
const customRules = `package portcullis.policies.custom

deny contains "bare pods are not admitted in namespace prod" if {
	input.target.kubernetes.namespace == "prod"
	input.target.kubernetes.workload.kind == "Pod"
}

deny contains "namespaces labelled env=prod run only images of prod/" if {
	input.target.kubernetes.namespaceLabels.env == "prod"
	not startswith(input.subject.repository, "prod/")
}

deny contains "admission needs provenance" if {
	input.action == "admit"
	count(input.evidence.provenance) == 0
}

deny contains "mallory admits nothing" if {
	input.request.identity.name == "mallory"
}
`

// TestFastPathProperty is I4's property: over a matrix of images
// (promoted with their VSA, or only in staging, signed or not), references
// (by digest, tag and digest, latest and digest, tag only, latest only),
// namespaces (with labels), workload kinds, users, actions, policies
// (admission-only reference rules, reference rules for promotion only,
// namespace, label, workload, user and action rules) and trust
// configurations and scans (the release key kept, or replaced without a
// restart of the webhook, while a CVE is found in a promoted image), the
// answer of the webhook with the VSA fast path and the
// decision cache, asked twice (the second answer from the cache), equals
// the answer of a full check: a gate without a VSA key behind a webhook
// without a cache. The gate's own answers for promotions are compared the
// same way.
func TestFastPathProperty(t *testing.T) {
	st := registrytest.Store(t)
	release := vt.NewKey(t)
	vsaKey := vt.NewKey(t)
	trust := func(k *ecdsa.PrivateKey) *verifier.Verifier {
		v, err := verifier.New(verifier.Authority{Name: "release", Keys: []crypto.PublicKey{k.Public()}})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	bundle := func(data string, rules bool) *policy.Set {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "data.json"), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		if rules {
			if err := os.WriteFile(filepath.Join(dir, "custom.rego"), []byte(customRules), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		ps, err := policy.NewSet(t.Context(), policy.Config{Default: policy.SetConfig{Bundle: dir}}, policy.SetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return ps
	}
	quiet := slog.New(slog.DiscardHandler)

	// Promote with the policy that also decides admissions in the second
	// case below, as `portcullis serve` does by default: its reference
	// rules apply to admissions only, so the promotion passes on the
	// release signature.
	referencesForAdmission := `{"portcullis":{"config":{"signatures":{"authorities":["release"]},"references":{}}}}`
	promoter, err := gate.New(gate.DefaultConfig(), gate.Options{Store: st, Verifier: trust(release), VSAKey: vsaKey, Logger: quiet,
		Policies: bundle(referencesForAdmission, false)})
	if err != nil {
		t.Fatal(err)
	}
	_, host := registrytest.Serve(t, st, registry.WithGate(promoter), registry.WithPromoted(promoter.Promoted))
	vr := vt.Registry{Host: host}
	tags := tagResolver{}
	type image struct{ repo, tag string }
	var images []image
	push := func(tag string, sign, provenance, promote bool) {
		d := vr.PushImage(t, "staging/app", tag)
		if sign {
			vr.PushKeyBundle(t, release, "staging/app", d, vt.Statement(t, d, vt.CosignSign, `{}`))
		}
		if provenance {
			vr.PushKeyBundle(t, release, "staging/app", d, vt.Statement(t, d, vt.SLSAv1, vt.ProvenanceV1))
		}
		tags["staging/app:"+tag] = d
		images = append(images, image{"staging/app", tag})
		if promote {
			src, _ := name.NewDigest(host + "/staging/app@" + d.String())
			img, err := remote.Image(src)
			if err != nil {
				t.Fatal(err)
			}
			dst, _ := name.NewTag(host + "/prod/app:" + tag)
			if err := remote.Write(dst, img); err != nil {
				t.Fatalf("promote %s: %v", tag, err)
			}
			tags["prod/app:"+tag] = d
			images = append(images, image{"prod/app", tag})
		}
	}
	push("1.0", true, true, true)    // promoted, signed, with provenance
	push("2.0", true, false, true)   // promoted, signed, no provenance
	push("3.0", false, false, false) // unsigned, staging only
	tags["prod/app:latest"] = tags["prod/app:1.0"]
	scan := &phasedScanner{vulnerable: tags["prod/app:1.0"], broken: tags["staging/app:3.0"]}

	var refs []string
	for _, im := range images {
		d := tags[im.repo+":"+im.tag]
		base := "registry.local/" + im.repo
		refs = append(refs, base+"@"+d.String(), base+":"+im.tag+"@"+d.String(), base+":latest@"+d.String(), base+":"+im.tag)
	}
	refs = append(refs, "registry.local/prod/app:latest")

	policies := []struct {
		name  string
		data  string
		rules bool
	}{
		{"signatures", `{"portcullis":{"config":{"signatures":{"authorities":["release"]}}}}`, false},
		{"references for admission", referencesForAdmission, false},
		{"references for promotion only", `{"portcullis":{"config":{"signatures":{"authorities":["release"]},"references":{"actions":["promote"]}}}}`, false},
		{"namespace, label, workload, user and action rules", `{"portcullis":{"config":{"signatures":{"authorities":["release"]},"references":{"allowTagOnly":true}}}}`, true},
		{"vulnerabilities from the scan now", `{"portcullis":{"config":{"signatures":{"authorities":["release"]},"vulnerabilities":{"severity":"CRITICAL","onlyFixed":true}}}}`, false},
	}
	nsLabels := map[string]map[string]string{"shop": {"env": "dev"}, "prod": {"env": "prod"}}
	labels := func(_ context.Context, ns string) (map[string]string, error) { return nsLabels[ns], nil }
	var total, fastTotal, hits int
	for _, pc := range policies {
		t.Run(pc.name, func(t *testing.T) {
			ps := bundle(pc.data, pc.rules)
			fast := &swapDecider{}
			fastRec := &vsaCounter{}
			h, err := webhook.New(webhook.Config{Authenticator: apiServerAuth{}, Logger: quiet, NamespaceLabels: labels}, fast, tags)
			if err != nil {
				t.Fatal(err)
			}
			for phase, key := range []struct {
				name string
				k    *ecdsa.PrivateKey
			}{{"release key", release}, {"release key replaced, a CVE found in 1.0", vt.NewKey(t)}} {
				scan.phase.Store(int32(phase))
				v := trust(key.k)
				fg, err := gate.New(gate.DefaultConfig(), gate.Options{Store: st, Verifier: v, Policies: ps, Scanner: scan, VSAKey: vsaKey, Recorder: fastRec, Logger: quiet})
				if err != nil {
					t.Fatal(err)
				}
				fast.g.Store(fg)
				full, err := gate.New(gate.DefaultConfig(), gate.Options{Store: st, Verifier: v, Policies: ps, Scanner: scan, Logger: quiet})
				if err != nil {
					t.Fatal(err)
				}
				fh, err := webhook.New(webhook.Config{Authenticator: apiServerAuth{}, Logger: quiet, NamespaceLabels: labels, CacheSize: -1}, full, tags)
				if err != nil {
					t.Fatal(err)
				}
				for _, ref := range refs {
					for _, ns := range []string{"shop", "prod"} {
						for _, kind := range []string{"Pod", "Deployment"} {
							for _, user := range []string{"alice", "mallory"} {
								body := admissionReview(t, kind, ns, user, ref)
								want := answer(t, fh, body)
								for i, got := range []string{answer(t, h, body), answer(t, h, body)} {
									if got != want {
										t.Errorf("%s, %s in namespace %s, %s by %s, answer %d (fast path and cache):\n%s\nfull check:\n%s", key.name, ref, ns, kind, user, i, got, want)
									}
								}
								total++
							}
						}
					}
				}
				// The gate's own answers for admissions, without the
				// webhook's cache, after the scan of 1.0 changed under
				// the same trust: the VSA carries no scan.
				if phase == 0 {
					v2, err := gate.New(gate.DefaultConfig(), gate.Options{Store: st, Verifier: v, Policies: ps, Scanner: scan, VSAKey: vsaKey, Recorder: fastRec, Logger: quiet})
					if err != nil {
						t.Fatal(err)
					}
					scan.phase.Store(1)
					for _, ref := range []string{"prod/app:1.0", "prod/app:2.0"} {
						d := tags[ref]
						req := contract.Request{Action: contract.ActionAdmit, Repository: "prod/app", Digest: d, Reference: "registry.local/prod/app@" + d.String(),
							Target: contract.Target{Kubernetes: &contract.KubernetesTarget{Namespace: "shop", Workload: contract.Workload{Kind: "Pod", Name: "web"}, Container: "app"}}}
						got, want := v2.Evaluate(t.Context(), req), full.Evaluate(t.Context(), req)
						if got.VSA == nil || got.Allow != want.Allow || strings.Join(got.Reasons(), "\n") != strings.Join(want.Reasons(), "\n") {
							t.Errorf("admission of %s after a CVE was found in 1.0: fast gate %v %q (vsa %v), full check %v %q", ref, got.Allow, got.Reasons(), got.VSA != nil, want.Allow, want.Reasons())
						}
					}
					scan.phase.Store(0)
				}
				// Promotions: the gate's own answers.
				for _, im := range images {
					if im.repo != "staging/app" {
						continue
					}
					for _, tag := range []string{im.tag, "latest"} {
						req := contract.Request{Action: contract.ActionPromote, Repository: im.repo, Digest: tags[im.repo+":"+im.tag], Tag: tag,
							Reference: "registry.local/" + im.repo + ":" + tag,
							Target:    contract.Target{Registry: &contract.RegistryTarget{Namespace: "prod", Repository: "prod/app", Tag: tag}}}
						got, want := fg.Evaluate(t.Context(), req), full.Evaluate(t.Context(), req)
						if got.Allow != want.Allow || strings.Join(got.Reasons(), "\n") != strings.Join(want.Reasons(), "\n") {
							t.Errorf("%s, promotion of %s:%s: fast gate %v %q, full check %v %q", key.name, im.repo, tag, got.Allow, got.Reasons(), want.Allow, want.Reasons())
						}
					}
				}
			}
			fastRec.mu.Lock()
			fastTotal += fastRec.vsa
			fastRec.mu.Unlock()
			hits += int(h.CacheStats().Hits)
		})
	}
	t.Logf("%d admissions compared, %d decided on a VSA, %d answered from the cache", total, fastTotal, hits)
	if fastTotal == 0 || hits < total {
		t.Fatalf("the matrix exercised %d VSA decisions and %d cache hits: the fast paths were not compared", fastTotal, hits)
	}
}

// admissionReview is a review of a workload of kind with one container
// running image, in ns, by user.
func admissionReview(t *testing.T, kind, ns, user, image string) []byte {
	t.Helper()
	spec := map[string]any{"containers": []map[string]string{{"name": "app", "image": image}}}
	obj := map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "web", "namespace": ns, "labels": map[string]string{"app": "web"}}, "spec": spec}
	group, version := "", "v1"
	if kind == "Deployment" {
		group, version = "apps", "v1"
		obj = map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": map[string]any{"name": "web", "namespace": ns},
			"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{"labels": map[string]string{"app": "web"}}, "spec": spec}}}
	}
	raw, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(map[string]any{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": map[string]any{
		"uid": "u", "kind": map[string]string{"group": group, "version": version, "kind": kind}, "namespace": ns, "name": "web",
		"operation": "CREATE", "userInfo": map[string]any{"username": user}, "object": json.RawMessage(raw)}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// answer is what the API server would act on: allowed, the message and
// the warnings.
func answer(t *testing.T, h http.Handler, body []byte) string {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/validate", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	h.ServeHTTP(rec, req)
	var rev admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &rev); err != nil || rec.Code != 200 || rev.Response == nil {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	msg := ""
	if rev.Response.Result != nil {
		msg = rev.Response.Result.Message
	}
	return fmt.Sprintf("allowed=%v message=%q warnings=%q", rev.Response.Allowed, msg, rev.Response.Warnings)
}
