package main

// The CI story, end to end with real clients against a real
// `portcullis serve`: crane pushes to staging, the cosign CLI signs and
// attests, crane copies to prod through the gate; every denial shows its
// reason in crane's output and writes nothing to prod.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dbtypes "github.com/aquasecurity/trivy-db/pkg/types"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/scanner/trivy/trivytest"
)

const fixedMusl = "1.2.5-r1"

// storyPolicy requires a signature from the CI authority, SLSA provenance
// from the CI builder, and an SBOM.
const storyPolicy = `{"portcullis":{"config":{
	"signatures":{"authorities":["ci"]},
	"provenance":{"builders":["https://ci.example.com/builder@v1"]},
	"sbom":{"require":true,"requireAttested":true},
	"vulnerabilities":{"severity":"CRITICAL","onlyFixed":true}}}}`

type story struct {
	t    *testing.T
	srv  *server
	dir  string
	data string
}

func newStory(t *testing.T) *story {
	requireTool(t, "crane")
	requireTool(t, "cosign3")
	s := &story{t: t, dir: t.TempDir(), data: t.TempDir()}
	for _, who := range []string{"ci", "intruder"} {
		d := filepath.Join(s.dir, who)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		runTool(t, d, cosignEnv(d), "cosign3", "generate-key-pair")
	}
	bundle := filepath.Join(s.dir, "policy")
	if err := os.MkdirAll(bundle, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "data.json"), []byte(storyPolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := `trust:
  authorities:
    - name: ci
      keys: [ci/cosign.pub]
policies:
  sets:
    - name: prod
      registry: {prefixes: [prod]}
      bundle: policy
audit:
  checkpointInterval: 1s
`
	if err := os.WriteFile(filepath.Join(s.dir, "portcullis.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{"prov.json": provenancePredicate, "evil-prov.json": strings.ReplaceAll(provenancePredicate, "ci.example.com", "evil.example.com"), "cdx.json": cyclonedxPredicate} {
		if err := os.WriteFile(filepath.Join(s.dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The scanner's offline database: musl below 1.2.5-r1 has a critical
	// CVE with a fix.
	crit := trivytest.AlpineMusl
	crit.VendorSeverity = dbtypes.VendorSeverity{"nvd": dbtypes.SeverityCritical}
	trivytest.WriteDB(t, filepath.Join(s.data, "trivy", "db"), time.Now(), crit)
	s.srv = startServer(t, s.data, "--config", filepath.Join(s.dir, "portcullis.yaml"))
	return s
}

// push pushes a new one-layer Alpine-like image (with musl at
// muslVersion) to repo:tag with crane and returns repo@digest (with the
// registry host).
func (s *story) push(repo, tag, content, muslVersion string) string {
	files := trivytest.Alpine(map[string]string{"musl": muslVersion})
	files["app/version"] = []byte(content)
	layer := filepath.Join(s.t.TempDir(), "layer.tar")
	if err := os.WriteFile(layer, tarOf(s.t, files), 0o644); err != nil {
		s.t.Fatal(err)
	}
	out, _ := runTool(s.t, s.dir, nil, "crane", "append", "-f", layer, "-t", s.srv.Addr+"/"+repo+":"+tag)
	return strings.TrimSpace(out)
}

// cosign runs cosign v3 as who (ci or intruder) with the offline flags.
func (s *story) cosign(who string, args ...string) {
	d := filepath.Join(s.dir, who)
	full := append(args[:1:1], append([]string{"--key", filepath.Join(d, "cosign.key"), "--yes", "--tlog-upload=false", "--use-signing-config=false"}, args[1:]...)...)
	runTool(s.t, s.dir, cosignEnv(d), "cosign3", full...)
}

// copyToProd runs crane copy and returns its error output ("" when it worked).
func (s *story) copyToProd(img, target string) string {
	_, stderr, err := tryTool(s.t, s.dir, nil, "crane", "copy", img, s.srv.Addr+"/"+target)
	if err == nil {
		return ""
	}
	return stderr
}

func (s *story) inProd(digestRef string) bool {
	d := digestRef[strings.Index(digestRef, "@"):]
	_, _, err := tryTool(s.t, s.dir, nil, "crane", "manifest", s.srv.Addr+"/prod/app"+d)
	return err == nil
}

func TestPromotionStory(t *testing.T) {
	s := newStory(t)
	img := s.push("staging/app", "1", "v1", fixedMusl)
	s.cosign("ci", "sign", img)
	s.cosign("ci", "attest", "--type", "slsaprovenance1", "--predicate", "prov.json", img)
	s.cosign("ci", "attest", "--type", "cyclonedx", "--predicate", "cdx.json", img)

	if msg := s.copyToProd(img, "prod/app:1.0"); msg != "" {
		t.Fatalf("crane copy of a signed, attested image was refused:\n%s", msg)
	}
	// prod serves the image, its signature and attestations, and the
	// gate's verification summary, all verifiable with cosign.
	prodRef := s.srv.Addr + "/prod/app:1.0"
	if out, _ := runTool(t, s.dir, nil, "crane", "digest", prodRef); !strings.Contains(img, strings.TrimSpace(out)) {
		t.Fatalf("prod/app:1.0 is %s, want %s", out, img)
	}
	emptyRoot := filepath.Join(s.dir, "empty-root.json")
	if err := os.WriteFile(emptyRoot, []byte(`{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	offline := []string{"--insecure-ignore-tlog", "--trusted-root", emptyRoot}
	ciEnv := cosignEnv(filepath.Join(s.dir, "ci"))
	runTool(t, s.dir, ciEnv, "cosign3", append([]string{"verify", "--key", "ci/cosign.pub"}, append(offline, prodRef)...)...)
	runTool(t, s.dir, ciEnv, "cosign3", append([]string{"verify-attestation", "--key", "ci/cosign.pub", "--type", "slsaprovenance1"}, append(offline, prodRef)...)...)
	runTool(t, s.dir, ciEnv, "cosign3", append([]string{"verify-attestation", "--key", filepath.Join(s.data, "vsa.key.pub"),
		"--type", "https://slsa.dev/verification_summary/v1"}, append(offline, prodRef)...)...)

	// portcullis promote: the same decision, server-side.
	var out, errb strings.Builder
	if code := run(t.Context(), []string{"promote", "--output", "json", img, s.srv.Addr + "/prod/app:1.1"}, &out, &errb); code != 0 {
		t.Fatalf("portcullis promote: exit %d: %s%s", code, out.String(), errb.String())
	}
	var pr struct {
		Allowed bool
		Linked  int
	}
	if err := json.Unmarshal([]byte(out.String()), &pr); err != nil || !pr.Allowed || pr.Linked < 4 {
		t.Fatalf("portcullis promote output: %s", out.String())
	}

	// Denials: each with its reason in crane's output, nothing in prod.
	unsigned := s.push("staging/app", "unsigned", "v2", fixedMusl)
	intruder := s.push("staging/app", "intruder", "v3", fixedMusl)
	s.cosign("intruder", "sign", intruder)
	badBuilder := s.push("staging/app", "builder", "v4", fixedMusl)
	s.cosign("ci", "sign", badBuilder)
	s.cosign("ci", "attest", "--type", "slsaprovenance1", "--predicate", "evil-prov.json", badBuilder)
	s.cosign("ci", "attest", "--type", "cyclonedx", "--predicate", "cdx.json", badBuilder)
	noSBOM := s.push("staging/app", "nosbom", "v5", fixedMusl)
	s.cosign("ci", "sign", noSBOM)
	s.cosign("ci", "attest", "--type", "slsaprovenance1", "--predicate", "prov.json", noSBOM)
	vulnerable := s.push("staging/app", "cve", "v6", "1.2.5-r0")
	s.cosign("ci", "sign", vulnerable)
	s.cosign("ci", "attest", "--type", "slsaprovenance1", "--predicate", "prov.json", vulnerable)
	s.cosign("ci", "attest", "--type", "cyclonedx", "--predicate", "cdx.json", vulnerable)
	for _, tt := range []struct{ name, img, target, want string }{
		{"critical CVE with a fix", vulnerable, "prod/app:2.0", "CVE-2025-26519"},
		{"unsigned", unsigned, "prod/app:2.0", `no signature verified by authority \"ci\"`},
		{"signed by an untrusted key", intruder, "prod/app:2.0", `no signature verified by authority \"ci\"`},
		{"provenance from an untrusted builder", badBuilder, "prod/app:2.0", "evil.example.com"},
		{"missing SBOM", noSBOM, "prod/app:2.0", "SBOM"},
		{"retagging a production tag", noSBOM, "prod/app:1.0", "is immutable"},
	} {
		msg := s.copyToProd(tt.img, tt.target)
		t.Logf("%s: %s", tt.name, msg)
		if !strings.Contains(msg, "DENIED") || !strings.Contains(strings.ReplaceAll(msg, `\"`, `"`), strings.ReplaceAll(tt.want, `\"`, `"`)) {
			t.Errorf("%s: crane copy output %q, want DENIED and %q", tt.name, msg, tt.want)
		}
		if s.inProd(tt.img) {
			t.Errorf("%s: the image is in prod/app", tt.name)
		}
	}
	// The decision history has every decision, with its verdict, and
	// verifies.
	for _, c := range []struct{ img, verdict string }{{img, "allow"}, {unsigned, "deny"}, {vulnerable, "deny"}} {
		d := c.img[strings.Index(c.img, "@")+1:]
		resp, err := http.Get(s.srv.URL("/portcullis/v1/decisions?digest=" + d + "&verdict=" + c.verdict))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), d) {
			t.Errorf("decisions for %s (%s): %d %s", d, c.verdict, resp.StatusCode, body)
		}
	}
	// The auditor's question in one command: who allowed this digest into
	// prod, when, under which policy, on what evidence; then the record's
	// inclusion proof, and the other filters find the same record.
	d := img[strings.Index(img, "@")+1:]
	auditQuery := func(args ...string) []audit.Entry {
		t.Helper()
		code, q, qerr := run2(t, append([]string{"audit", "query", "--server", s.srv.URL(""), "--output", "json"}, args...)...)
		var entries []audit.Entry
		if code != 0 || json.Unmarshal([]byte(q), &entries) != nil {
			t.Fatalf("audit query %v: exit %d %s%s", args, code, q, qerr)
		}
		return entries
	}
	found := auditQuery("--digest", d, "--action", "promote", "--verdict", "allow", "--since", "1h")
	if len(found) == 0 {
		t.Fatal("no promote/allow record for the promoted digest")
	}
	rec := found[0].Record
	var types []string
	for _, a := range rec.Evidence.Attestations {
		types = append(types, a.PredicateType)
	}
	if len(rec.Evidence.Signers) == 0 || rec.Evidence.Signers[0].Authority != "ci" || !strings.Contains(strings.Join(types, " "), "slsa.dev/provenance") ||
		rec.Evidence.Scan == nil || rec.PolicyRevision == "" || rec.Target.Repository != "prod/app" {
		t.Fatalf("the promotion record lacks its evidence: %+v", rec)
	}
	idx := fmt.Sprint(found[0].Index)
	for _, filter := range [][]string{{"--repository", "staging/app"}, {"--policy-revision", rec.PolicyRevision}, {"--action", "promote"}, {"--verdict", "allow"}} {
		hit := false
		for _, e := range auditQuery(append(filter, "--limit", "1000")...) {
			hit = hit || fmt.Sprint(e.Index) == idx
		}
		if !hit {
			t.Errorf("audit query %v does not find record %s", filter, idx)
		}
	}
	if old := auditQuery("--digest", d, "--until", "1h"); len(old) != 0 {
		t.Errorf("records of an hour ago: %+v", old)
	}
	// A record is provable once a checkpoint covers it (every second here).
	for try := 0; ; try++ {
		code, p, perr := run2(t, "audit", "prove", "--server", s.srv.URL(""), "--pubkey", filepath.Join(s.data, "audit-key.pub"), "--index", idx)
		if code == 0 && strings.Contains(p, d) {
			break
		}
		if try == 50 || !strings.Contains(perr, "not covered by a signed checkpoint yet") {
			t.Fatalf("audit prove --index %s: exit %d %s%s", idx, code, p, perr)
		}
		time.Sleep(200 * time.Millisecond)
	}

	var errOut strings.Builder
	if code := run(t.Context(), []string{"promote", unsigned, s.srv.Addr + "/prod/app:3.0"}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "no signature verified") {
		t.Errorf("portcullis promote of an unsigned image: exit %d, %s", code, errOut.String())
	}
	// A target outside the protected namespaces is not a policy decision:
	// the promotion cannot be done (docs/cli.md, exit 2).
	errOut.Reset()
	if code := run(t.Context(), []string{"promote", img, s.srv.Addr + "/elsewhere/app:1"}, &out, &errOut); code != exitFailed || !strings.Contains(errOut.String(), "refused (gate)") {
		t.Errorf("portcullis promote to an unprotected target: exit %d, %s", code, errOut.String())
	}
}

// TestDefaultProtectsProd: with no configuration at all, prod/ is
// protected and needs a signature from a configured authority, so an
// unsigned image cannot be copied there.
func TestDefaultProtectsProd(t *testing.T) {
	requireTool(t, "crane")
	srv := startServer(t, t.TempDir())
	s := &story{t: t, srv: srv, dir: t.TempDir()}
	img := s.push("staging/demo", "1", "v1", fixedMusl)
	msg := s.copyToProd(img, "prod/demo:1")
	if !strings.Contains(msg, "DENIED") || !strings.Contains(msg, "no signature verified by a configured authority") {
		t.Fatalf("crane copy of an unsigned image to prod on defaults: %q", msg)
	}
	if _, _, err := tryTool(t, s.dir, nil, "crane", "copy", img, srv.Addr+"/staging/elsewhere:1"); err != nil {
		t.Fatalf("staging is not protected: %v", err)
	}
}
