package main

// End to end: the real cosign CLIs, v2 (tag scheme) and v3 (Sigstore
// bundles as referrers), sign and attest images in a running
// `portcullis serve`; `portcullis verify` must find and verify all of it.

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	vt "github.com/portcullis-dev/portcullis/verifier/verifiertest"
)

const (
	provenancePredicate = `{"buildDefinition":{"buildType":"https://example.com/build/v1",
		"externalParameters":{"source":"git+https://github.com/acme/app@refs/heads/main"},
		"resolvedDependencies":[{"uri":"git+https://github.com/acme/app@refs/heads/main","digest":{"gitCommit":"0123456789abcdef0123456789abcdef01234567"}}]},
		"runDetails":{"builder":{"id":"https://ci.example.com/builder@v1"}}}`
	cyclonedxPredicate = `{"bomFormat":"CycloneDX","specVersion":"1.6","version":1,
		"components":[{"type":"library","name":"openssl","version":"3.0.11","purl":"pkg:deb/debian/openssl@3.0.11","licenses":[{"license":{"id":"Apache-2.0"}}]}]}`
	spdxPredicate = `{"spdxVersion":"SPDX-2.3","dataLicense":"CC0-1.0","SPDXID":"SPDXRef-DOCUMENT","name":"app",
		"documentNamespace":"https://example.com/app","creationInfo":{"created":"2026-01-01T00:00:00Z","creators":["Tool: test"]},
		"packages":[{"SPDXID":"SPDXRef-musl","name":"musl","versionInfo":"1.2.5","downloadLocation":"NOASSERTION","licenseConcluded":"MIT"}]}`
)

// cosignCLI is one way of running the cosign CLI: the flags it needs to
// sign offline, and the storage scheme they choose.
type cosignCLI struct {
	name       string
	tool       string
	offline    []string
	wantSource string // where verify must find what it wrote
}

// cosignLegacy are the cosign v3 flags that write what cosign v2 writes by
// default: the simple-signing payload under the sha256-<hex>.sig/.att tags
// (cosign v3 keeps v2's writer, ociremote.WriteSignatures, behind them), so
// one pinned CLI exercises both schemes.
var cosignLegacy = []string{"--tlog-upload=false", "--use-signing-config=false", "--new-bundle-format=false"}

var cosignCLIs = []cosignCLI{
	{name: "tag-scheme", tool: "cosign3", offline: cosignLegacy, wantSource: "tag"},
	{name: "bundle", tool: "cosign3", offline: []string{"--tlog-upload=false", "--use-signing-config=false"}, wantSource: "bundle"},
}

// cosignEnv is an environment for a cosign CLI working in dir: its own
// HOME (no TUF cache or credentials from the machine), no key password.
func cosignEnv(dir string) []string {
	return []string{"HOME=" + dir, "COSIGN_PASSWORD=", "COSIGN_YES=true", "SIGSTORE_NO_CACHE=true"}
}

// runVerify runs `portcullis verify` in-process and returns its exit code,
// standard output and standard error.
func runVerify(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(context.Background(), append([]string{"verify"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

type verifyJSON struct {
	Image      string `json:"image"`
	Verified   bool   `json:"verified"`
	Signatures []struct {
		Source, Reason string
		Verified       bool
		Authorities    []string
		Signer         *struct{ KeyID string }
	} `json:"signatures"`
	Attestations []struct {
		Source, PredicateType, Reason string
		Verified                      bool
		Predicate                     map[string]any
	} `json:"attestations"`
}

func TestVerifyCosignCLIs(t *testing.T) {
	srv := startServer(t, t.TempDir())
	for _, cli := range cosignCLIs {
		t.Run(cli.name, func(t *testing.T) {
			requireTool(t, cli.tool)
			dir := t.TempDir()
			env := cosignEnv(dir)
			runTool(t, dir, env, cli.tool, "generate-key-pair")
			repo := "staging/" + cli.name
			img := srv.Addr + "/" + repo + "@" + vt.Registry{Host: srv.Addr}.PushImage(t, repo, "1.0").String()
			for name, content := range map[string]string{"prov.json": provenancePredicate, "cdx.json": cyclonedxPredicate, "spdx.json": spdxPredicate} {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			runTool(t, dir, env, cli.tool, append([]string{"sign", "--key", "cosign.key", "--yes"}, append(cli.offline, img)...)...)
			for _, a := range [][2]string{{"slsaprovenance1", "prov.json"}, {"cyclonedx", "cdx.json"}, {"spdxjson", "spdx.json"}} {
				runTool(t, dir, env, cli.tool, append([]string{"attest", "--key", "cosign.key", "--yes", "--type", a[0], "--predicate", a[1]}, append(cli.offline, img)...)...)
			}

			code, out, stderr := runVerify("--key", filepath.Join(dir, "cosign.pub"), "--output", "json", img)
			if code != 0 {
				t.Fatalf("verify exit %d: %s%s", code, stderr, out)
			}
			var res verifyJSON
			if err := json.Unmarshal([]byte(out), &res); err != nil {
				t.Fatalf("verify output: %v\n%s", err, out)
			}
			if !res.Verified || len(res.Signatures) != 1 || !res.Signatures[0].Verified || res.Signatures[0].Source != cli.wantSource {
				t.Fatalf("signatures: %+v, want one verified from %s", res.Signatures, cli.wantSource)
			}
			got := map[string]map[string]any{}
			for _, a := range res.Attestations {
				if !a.Verified || a.Source != cli.wantSource {
					t.Errorf("attestation %s: verified=%v source=%s reason=%s", a.PredicateType, a.Verified, a.Source, a.Reason)
				}
				got[a.PredicateType] = a.Predicate
			}
			if len(res.Attestations) != 3 {
				t.Fatalf("%d attestations, want 3: %s", len(res.Attestations), out)
			}
			if p := got["https://slsa.dev/provenance/v1"]; p == nil || p["builderId"] != "https://ci.example.com/builder@v1" || p["sourceRevision"] != "0123456789abcdef0123456789abcdef01234567" {
				t.Errorf("provenance predicate: %v", p)
			}
			if p := got["https://cyclonedx.org/bom"]; p == nil || p["format"] != "cyclonedx" || len(p["components"].([]any)) != 1 {
				t.Errorf("CycloneDX predicate: %v", p)
			}
			if p := got["https://spdx.dev/Document"]; p == nil || p["format"] != "spdx" || !strings.Contains(out, `"MIT"`) {
				t.Errorf("SPDX predicate: %v", p)
			}

			// The human table says the same.
			code, out, _ = runVerify("--key", filepath.Join(dir, "cosign.pub"), img)
			if code != 0 || !strings.Contains(out, "builder https://ci.example.com/builder@v1") || !strings.Contains(out, "cyclonedx 1.6 SBOM, 1 components") {
				t.Errorf("table (exit %d):\n%s", code, out)
			}
			// With a policy: the decision the gate would take.
			pol := filepath.Join(dir, "policy")
			if err := os.MkdirAll(pol, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(pol, "data.json"), []byte(`{"portcullis":{"config":{"signatures":{"authorities":["cli"]},"provenance":{"builders":["https://ci.example.com/builder@v1"]}}}}`), 0o644); err != nil {
				t.Fatal(err)
			}
			code, out, _ = runVerify("--key", filepath.Join(dir, "cosign.pub"), "--policy", pol, "--target", "prod/app", img)
			if code != 0 || !strings.Contains(out, "ALLOW") {
				t.Errorf("--policy: exit %d:\n%s", code, out)
			}
			if err := os.WriteFile(filepath.Join(pol, "data.json"), []byte(`{"portcullis":{"config":{"provenance":{"builders":["https://other.example.com"]}}}}`), 0o644); err != nil {
				t.Fatal(err)
			}
			code, out, _ = runVerify("--key", filepath.Join(dir, "cosign.pub"), "--policy", pol, img)
			if code != 1 || !strings.Contains(out, "DENY") || !strings.Contains(out, "https://ci.example.com/builder@v1") {
				t.Errorf("--policy with another builder: exit %d:\n%s", code, out)
			}
			// The same trust from portcullis.yaml (paths relative to it).
			cfg := "trust:\n  authorities:\n    - name: release\n      keys: [cosign.pub]\n"
			if err := os.WriteFile(filepath.Join(dir, "portcullis.yaml"), []byte(cfg), 0o644); err != nil {
				t.Fatal(err)
			}
			code, out, stderr = runVerify("--config", filepath.Join(dir, "portcullis.yaml"), "--output", "json", img)
			if code != 0 || json.Unmarshal([]byte(out), &res) != nil || len(res.Signatures) != 1 || len(res.Signatures[0].Authorities) != 1 || res.Signatures[0].Authorities[0] != "release" {
				t.Errorf("--config: exit %d: %s%s", code, stderr, out)
			}
			// By tag: resolved to the same digest.
			tagRef := srv.Addr + "/staging/" + cli.name + ":1.0"
			if code, out, stderr := runVerify("--key", filepath.Join(dir, "cosign.pub"), "--output", "json", tagRef); code != 0 || !strings.Contains(out, img) {
				t.Errorf("by tag: exit %d, %s%s", code, stderr, out)
			}

			// Another key: nothing verifies, exit 1, and the reasons say why.
			other := t.TempDir()
			runTool(t, other, cosignEnv(other), cli.tool, "generate-key-pair")
			code, out, stderr = runVerify("--output", "json", img, "--key", filepath.Join(other, "cosign.pub"))
			if code != 1 || !strings.Contains(stderr, "no signature") {
				t.Fatalf("another key: exit %d, stderr %q", code, stderr)
			}
			if err := json.Unmarshal([]byte(out), &res); err != nil || res.Verified || len(res.Attestations) != 3 || res.Attestations[0].Verified || res.Attestations[0].Reason == "" {
				t.Fatalf("another key: %s", out)
			}
		})
	}
}

// TestVerifyCosignReferrerMode: cosign can store its simple-signing
// manifest as an OCI 1.1 referrer instead of under a tag.
func TestVerifyCosignReferrerMode(t *testing.T) {
	requireTool(t, "cosign3")
	srv := startServer(t, t.TempDir())
	dir := t.TempDir()
	env := append(cosignEnv(dir), "COSIGN_EXPERIMENTAL=1")
	runTool(t, dir, env, "cosign3", "generate-key-pair")
	img := srv.Addr + "/staging/ref@" + vt.Registry{Host: srv.Addr}.PushImage(t, "staging/ref", "1").String()
	runTool(t, dir, env, "cosign3", append(append([]string{"sign", "--key", "cosign.key", "--yes"}, cosignLegacy...), "--registry-referrers-mode=oci-1-1", img)...)
	code, out, stderr := runVerify("--key", filepath.Join(dir, "cosign.pub"), "--output", "json", img)
	var res verifyJSON
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || len(res.Signatures) != 1 || res.Signatures[0].Source != "referrer" || !res.Signatures[0].Verified {
		t.Fatalf("exit %d: %s%s", code, out, stderr)
	}
}

func TestVerifyCouldNotCheck(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "cosign.pub")
	if err := os.WriteFile(key, []byte("-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE2G1SUe0fS3b0rXfmt4b0HLZ8bVJ0\nZ3yQqPIO5qUHiOHJXl2CvOxtWEc0IoyFQm0ZK4F7S8oFi4wfoz4QqGBf6A==\n-----END PUBLIC KEY-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	addr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	for name, args := range map[string][]string{
		"registry unreachable": {"--key", key, addr + "/app@sha256:" + strings.Repeat("a", 64)},
		"no trust given":       {"127.0.0.1:1/app:1"},
		"unreadable key":       {"--key", filepath.Join(dir, "missing.pub"), "127.0.0.1:1/app:1"},
		"bad reference":        {"--key", key, "UPPER/Case::x"},
		"two images":           {"--key", key, "a/b:1", "c/d:2"},
		"keyless without root": {"--certificate-identity", "a@b", "--certificate-oidc-issuer", "https://i", "127.0.0.1:1/app:1"},
	} {
		code, out, stderr := runVerify(args...)
		if code != 2 || out != "" || !strings.HasPrefix(stderr, "portcullis verify: ") || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit 2 and one line on stderr", name, code, out, stderr)
		}
	}
}

// TestVerifyKeyless: an image signed and attested through a fake Sigstore
// (Fulcio, timestamp authority), verified with cosign's keyless flags
// against its trusted_root.json, offline.
func TestVerifyKeyless(t *testing.T) {
	srv := startServer(t, t.TempDir())
	reg := vt.Registry{Host: srv.Addr}
	vs := vt.NewVirtualSigstore(t)
	root := filepath.Join(t.TempDir(), "trusted_root.json")
	if err := os.WriteFile(root, vt.TrustedRootJSON(t, vs), 0o644); err != nil {
		t.Fatal(err)
	}
	const who, iss = "release@acme.example", "https://accounts.acme.example"
	d := reg.PushImage(t, "staging/keyless", "1")
	reg.PushBundle(t, "staging/keyless", d, vt.CosignSign, vt.KeylessBundle(t, vs, who, iss, vt.Statement(t, d, vt.CosignSign, `{}`), true))
	reg.PushBundle(t, "staging/keyless", d, vt.SLSAv1, vt.KeylessBundle(t, vs, who, iss, vt.Statement(t, d, vt.SLSAv1, vt.ProvenanceV1), true))
	img := srv.Addr + "/staging/keyless@" + d.String()

	code, out, stderr := runVerify("--certificate-identity", who, "--certificate-oidc-issuer", iss, "--trusted-root", root, img)
	if code != 0 || !strings.Contains(out, who+" ("+iss+")") || !strings.Contains(out, "builder https://ci.example.com/builder") {
		t.Fatalf("exit %d:\n%s%s", code, out, stderr)
	}
	code, out, _ = runVerify("--certificate-identity-regexp", `^mallory@`, "--certificate-oidc-issuer", iss, "--trusted-root", root, img)
	if code != 1 || !strings.Contains(out, "no matching CertificateIdentity") {
		t.Fatalf("another identity: exit %d:\n%s", code, out)
	}
}
