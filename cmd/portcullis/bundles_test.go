package main

// oci:// policy bundles, end to end: a bundle built as `opa build` writes
// it and pushed with the real oras CLI in OPA's OCI format decides
// promotions in `portcullis serve` (read from the server's own store, and
// from another registry over the network), in `portcullis verify
// --policy` and in `portcullis policy eval|test`; a moved tag is picked
// up on reload with a new revision; a bundle that cannot be fetched stops
// the server at start and keeps the old one on reload.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/registry"
)

// bundleData turns the library's scan errors into warnings: these tests
// run without a vulnerability database.
const bundleData = `{"portcullis":{"config":{"errors":{"warnOnly":["scan"]}}}}`

// freezeRego denies every promotion with a reason naming its version.
const freezeRego = `package portcullis.policies.freeze

deny contains msg if {
	input.action == "promote"
	msg := "prod is frozen by bundle %s"
}
`

const freezeTestRego = `package portcullis.policies.freeze_test

import data.portcullis.policies.freeze

test_promotion_denied if {
	count(freeze.deny) == 1 with input as {"action": "promote"}
}
`

// opaBundle returns a gzipped tarball in OPA's bundle format (what `opa
// build` writes: files under /, a .manifest).
func opaBundle(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for name, content := range files {
		if err := tw.WriteHeader(&tar.Header{Name: "/" + name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(content)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// pushBundle pushes bundle.tar.gz to ref with oras as OPA's docs do
// (config {} as application/vnd.oci.image.config.v1+json, the tarball as
// application/vnd.oci.image.layer.v1.tar+gzip) and returns its digest.
func pushBundle(t *testing.T, oras, ref string, bundle []byte, login ...string) string {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "bundle.tar.gz"), bundle)
	writeFile(t, filepath.Join(dir, "config.json"), []byte("{}"))
	args := append([]string{"push", "--plain-http", "--format", "json", ref,
		"--config", "config.json:application/vnd.oci.image.config.v1+json",
		"bundle.tar.gz:application/vnd.oci.image.layer.v1.tar+gzip"}, login...)
	out, _ := runTool(t, dir, nil, oras, args...)
	var res struct {
		Digest string `json:"digest"`
	}
	unmarshal(t, "oras push", []byte(out), &res)
	return res.Digest
}

func freezeBundle(t *testing.T, version string) []byte {
	return opaBundle(t, map[string]string{
		"freeze/policy.rego":      fmt.Sprintf(freezeRego, version),
		"freeze/policy_test.rego": freezeTestRego,
		"data.json":               bundleData,
		".manifest":               `{"revision":"` + version + `"}`,
	})
}

// promoteAPI asks c to promote source to target and returns the status and
// the response.
func promoteAPI(t *testing.T, c *http.Client, s *server, source, target string) (int, registry.PromotionResponse) {
	t.Helper()
	body, _ := json.Marshal(registry.PromotionRequest{Source: source, Target: target})
	resp, err := do(c, http.MethodPost, s.URL(registry.PromotionsPath), http.Header{"Content-Type": {"application/json"}}, body)
	if err != nil {
		t.Fatal(err)
	}
	var pr registry.PromotionResponse
	_ = json.Unmarshal(resp.Body, &pr)
	if resp.Status != http.StatusOK && resp.Status != http.StatusForbidden {
		t.Fatalf("promotion %s -> %s: %d %s", source, target, resp.Status, resp.Body)
	}
	return resp.Status, pr
}

func promotionReasons(pr registry.PromotionResponse) string {
	b, _ := json.Marshal(pr)
	return string(b)
}

type policySets struct {
	Sets []struct{ Name, Revision, Source string } `json:"sets"`
}

func policySet(t *testing.T, c *http.Client, s *server, name string) (revision, source string) {
	t.Helper()
	var sets policySets
	unmarshal(t, "GET /portcullis/v1/policies", mustDo(t, c, http.StatusOK, http.MethodGet, s.URL("/portcullis/v1/policies"), nil, nil).Body, &sets)
	for _, set := range sets.Sets {
		if set.Name == name {
			return set.Revision, set.Source
		}
	}
	t.Fatalf("no policy set %q in %+v", name, sets)
	return "", ""
}

func TestPolicyBundleOCI(t *testing.T) {
	oras := requireTool(t, "oras")
	dir := t.TempDir()
	dataA := filepath.Join(dir, "a")
	a := startServer(t, dataA)
	v1Digest := pushBundle(t, oras, a.Addr+"/policies/prod:v1", freezeBundle(t, "v1"))
	img := newTestImage(t, map[string][]byte{"app/bin": randomBytes(2048)})
	img.push(t, a, "staging/app", "1")

	t.Run("verify, policy eval and test read it over the network", func(t *testing.T) {
		loc := "oci://" + a.Addr + "/policies/prod:v1"
		key := filepath.Join(t.TempDir(), "cosign.pub")
		writeFile(t, key, publicKeyPEM(t))
		code, out, errOut := runVerify("--key", key, "--policy", loc, "--target", "prod/app", "--output", "json", a.Addr+"/staging/app:1")
		if code != exitDenied || !strings.Contains(out, "prod is frozen by bundle v1") {
			t.Fatalf("verify --policy %s: exit %d, want 1 with the bundle's reason\nstdout: %s\nstderr: %s", loc, code, out, errOut)
		}
		code, out, errOut = runPolicy(t, "eval", "--policy", loc, "--input", filepath.Join(policyTestdata, "inputs", "unsigned.json"))
		if code != exitDenied || !strings.Contains(out, "prod is frozen by bundle v1") {
			t.Fatalf("policy eval --policy %s: exit %d, want 1\nstdout: %s\nstderr: %s", loc, code, out, errOut)
		}
		code, out, errOut = runPolicy(t, "test", loc, "-v")
		if code != exitOK || !strings.Contains(out, "test_promotion_denied") {
			t.Fatalf("policy test %s: exit %d, want 0 running the bundle's test\nstdout: %s\nstderr: %s", loc, code, out, errOut)
		}
	})

	t.Run("serve reads another registry's bundle", func(t *testing.T) {
		cfg := filepath.Join(dir, "remote.yaml")
		writeFile(t, cfg, fmt.Appendf(nil, "policies:\n  sets:\n    - name: prod\n      registry: {prefixes: [prod]}\n      bundle: oci://%s/policies/prod:v1\n", a.Addr))
		b := startServer(t, filepath.Join(dir, "b"), "--config", cfg)
		img.push(t, b, "staging/app", "1")
		status, pr := promoteAPI(t, newClient(t), b, "staging/app:1", "prod/app:1")
		if status != http.StatusForbidden || !strings.Contains(promotionReasons(pr), "prod is frozen by bundle v1") {
			t.Fatalf("promotion under a bundle of another registry: %d %s, want 403 with the bundle's reason", status, promotionReasons(pr))
		}
		rev1, src := policySet(t, newClient(t), b, "prod")
		if src != "oci://"+a.Addr+"/policies/prod:v1@"+v1Digest {
			t.Errorf("prod set's source %q, want the reference pinned to %s", src, v1Digest)
		}

		// Move the tag to v2 and reload: a new digest, a new revision, and
		// the new rule decides.
		v2Digest := pushBundle(t, oras, a.Addr+"/policies/prod:v1", freezeBundle(t, "v2"))
		mustDo(t, newClient(t), http.StatusOK, http.MethodPost, b.URL("/portcullis/v1/policies/reload"), nil, nil)
		rev2, src := policySet(t, newClient(t), b, "prod")
		if rev2 == rev1 || !strings.HasSuffix(src, "@"+v2Digest) {
			t.Fatalf("after moving the tag and reloading: revision %s (was %s), source %s, want a new revision from %s", rev2, rev1, src, v2Digest)
		}
		if status, pr := promoteAPI(t, newClient(t), b, "staging/app:1", "prod/app:1"); status != http.StatusForbidden || !strings.Contains(promotionReasons(pr), "prod is frozen by bundle v2") {
			t.Fatalf("promotion after reload: %d %s, want the v2 bundle's reason", status, promotionReasons(pr))
		}

		// A tag moved to something that is not a bundle: the reload is
		// refused and counted, and v2 keeps serving.
		junk := t.TempDir()
		writeFile(t, filepath.Join(junk, "notes.txt"), []byte("not a bundle"))
		runTool(t, junk, nil, oras, "push", "--plain-http", a.Addr+"/policies/prod:v1", "notes.txt:text/plain")
		resp := mustDo(t, newClient(t), http.StatusUnprocessableEntity, http.MethodPost, b.URL("/portcullis/v1/policies/reload"), nil, nil)
		if !strings.Contains(string(resp.Body), "no layer of media type") {
			t.Errorf("refused reload says %s", resp.Body)
		}
		if rev, _ := policySet(t, newClient(t), b, "prod"); rev != rev2 {
			t.Errorf("after a refused reload the revision is %s, want %s still", rev, rev2)
		}
		metrics := string(mustDo(t, newClient(t), http.StatusOK, http.MethodGet, b.URL("/metrics"), nil, nil).Body)
		if !strings.Contains(metrics, "portcullis_policy_reload_failures_total 1\n") {
			t.Errorf("metrics do not count the refused reload:\n%s", grepLines(metrics, "reload"))
		}
	})

	t.Run("a bundle that cannot be fetched is a start error", func(t *testing.T) {
		gone, err := freeAddr()
		if err != nil {
			t.Fatal(err)
		}
		cfg := filepath.Join(dir, "missing.yaml")
		loc := "oci://" + gone + "/policies/prod:v1"
		writeFile(t, cfg, fmt.Appendf(nil, "policies:\n  sets:\n    - name: prod\n      registry: {prefixes: [prod]}\n      bundle: %s\n", loc))
		addr, err := freeAddr()
		if err != nil {
			t.Fatal(err)
		}
		out, err := runServeUntilExit(t, time.Minute, "--addr", addr, "--data", filepath.Join(dir, "c"), "--config", cfg)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		last := lines[len(lines)-1]
		if code := exitCode(err); code != exitFailed || !strings.HasPrefix(last, "portcullis serve: policy set prod: policy: bundle "+loc) {
			t.Fatalf("serve with an unfetchable bundle: exit %d, want 2 and one line naming it last\n%s", code, out)
		}
		if n := strings.Count(out, "portcullis serve:"); n != 1 {
			t.Errorf("%d error lines, want 1:\n%s", n, out)
		}
	})

	t.Run("serve reads its own bundle in-process only when no pusher can move it", func(t *testing.T) {
		a.Stop()
		// With access control on, only an in-process read can get the
		// bundle: the server holds no credentials for itself.
		writeHtpasswd(t, filepath.Join(dir, "htpasswd"), "ops")
		_, port, _ := strings.Cut(a.Addr, ":")
		config := func(file, bundle string) string {
			cfg := filepath.Join(dir, file)
			writeFile(t, cfg, fmt.Appendf(nil, `auth:
  htpasswd: htpasswd
  grants:
    - {namespace: "*", roles: [pull, push, promote, policy-admin], users: [ops]}
    - {namespace: staging, roles: [push], users: [ci]}
policies:
  sets:
    - name: prod
      registry: {prefixes: [prod]}
      bundle: %s
`, bundle))
			return cfg
		}

		// A tag in a namespace that is not protected: whoever may push
		// there (here ops, elsewhere any staging pusher, or anyone in open
		// loopback mode) would replace the policy at the next reload.
		loc := "oci://localhost:" + port + "/policies/prod:v1"
		out, err := runServeUntilExit(t, time.Minute, "--addr", a.Addr, "--data", dataA, "--config", config("tag.yaml", loc))
		lines := strings.Split(strings.TrimSpace(out), "\n")
		last := lines[len(lines)-1]
		if code := exitCode(err); code != exitFailed || !strings.HasPrefix(last, "portcullis serve: policy set prod: policy: bundle "+loc) || !strings.Contains(last, "not a protected namespace") || !strings.Contains(last, "pin the reference by digest") {
			t.Fatalf("serve with its own bundle by tag in an unprotected namespace: exit %d, want 2 and one line saying to pin it\n%s", code, out)
		}

		// Pinned by digest: read in-process, and a moved tag changes nothing.
		pinned := "oci://localhost:" + port + "/policies/prod@" + v1Digest
		s, err := tryStartServerAt(t, nil, a.Addr, dataA, "--config", config("pinned.yaml", pinned))
		if err != nil {
			t.Fatalf("restart portcullis serve on %s: %v", a.Addr, err)
		}
		ops := clientAs(t, "ops", false)
		status, pr := promoteAPI(t, ops, s, "staging/app:1", "prod/app:1")
		if status != http.StatusForbidden || !strings.Contains(promotionReasons(pr), "prod is frozen by bundle v1") {
			t.Fatalf("promotion under the registry's own bundle: %d %s, want 403 with the bundle's reason", status, promotionReasons(pr))
		}
		rev1, src := policySet(t, ops, s, "prod")
		if src != pinned {
			t.Fatalf("prod set's source %q, want %s", src, pinned)
		}
		login := []string{"-u", "ops", "-p", accessPassword}
		pushBundle(t, oras, s.Addr+"/policies/prod:v1", freezeBundle(t, "v3"), login...)
		mustDo(t, ops, http.StatusOK, http.MethodPost, s.URL("/portcullis/v1/policies/reload"), nil, nil)
		if rev, _ := policySet(t, ops, s, "prod"); rev != rev1 {
			t.Errorf("a pinned bundle's revision moved to %s (was %s) with the tag", rev, rev1)
		}
	})
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// exitCode is the exit status of a finished process (0 for a nil error).
func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// publicKeyPEM is a fresh ECDSA P-256 public key (PKIX PEM), as cosign
// writes cosign.pub: trust for verify that no signature matches.
func publicKeyPEM(t *testing.T) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}
