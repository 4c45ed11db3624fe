package ui

import (
	"context"
	"encoding/base64"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/audit/audittest"
)

// chromium returns the path of a Chromium to drive, or skips the test when
// there is none; on CI (CI=true), where .ci/tools.sh installs it, a missing
// Chromium fails the test instead, as in cmd/portcullis's tests.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "headless-shell", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	const msg = "no headless Chromium on PATH (Debian: apt-get install chromium, or .ci/tools.sh chromium)"
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
		t.Fatal(msg + ": CI must run the browser test")
	}
	t.Skip(msg + ": skipping the browser test")
	return ""
}

// TestUIBrowser drives the auditors' page in headless Chromium: search by
// digest through the form, open a record, see its evidence and its verified
// inclusion proof.
func TestUIBrowser(t *testing.T) {
	exe := chromium(t)
	ctx := context.Background()
	l, _ := audittest.OpenSQLite(t)
	audittest.AppendN(t, l, 0, 40) // promote, admit, push; allow, deny, error; 40 digests
	const digest = "sha256:d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1"
	denied := audittest.Record(40)
	denied.Subject.Digest = digest
	breakGlass := audit.Record{
		Time:    audittest.T0.Add(41 * time.Second),
		Action:  audit.ActionBreakGlass,
		Verdict: audit.VerdictAllow,
		Subject: audit.Subject{Repository: "registry.example/prod/web", Digest: digest, Tag: "v9"},
		Target:  audit.Target{Namespace: "prod", Kind: "Deployment", Name: "web"},
		Actor:   audit.Actor{KubernetesUser: "oncall@example.com", ServiceAccount: "prod/web"},
		Evidence: audit.Evidence{
			Signers: []audit.EvidenceSigner{
				{Authority: "release", KeyID: "SHA256:releasekey"},
				{Authority: "github", Subject: "https://github.com/acme/web/.github/workflows/release.yml@refs/tags/v9", Issuer: "https://token.actions.githubusercontent.com"},
			},
			Attestations: []audit.Attestation{{PredicateType: "https://slsa.dev/provenance/v1", Digest: "sha256:a77e"}},
			SBOMDigest:   "sha256:5b0b",
			Scan:         &audit.Scan{DBVersion: "2", DBBuiltAt: audittest.T0, Counts: map[string]int{"HIGH": 2, "CRITICAL": 1}},
			VSADigest:    "sha256:75a0",
		},
		PolicyRevision:          "sha256:9011c7",
		Reasons:                 []string{"break-glass allowed by policy"},
		Warnings:                []string{"image is 40 days old"},
		BreakGlassJustification: "INC-4242: payment outage",
	}
	if _, err := l.AppendAll(ctx, []audit.Record{denied, breakGlass}); err != nil { // 40, 41
		t.Fatal(err)
	}
	audittest.AppendN(t, l, 42, 10)
	if _, err := l.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	srv := testServer(t, l)
	t.Cleanup(srv.Close)

	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]), // headless
		chromedp.ExecPath(exe),
		chromedp.NoSandbox, // tests run as root in CI containers
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	// The first call starts the browser, which lives as long as its
	// context: no timeout on that one.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start %s: %v", exe, err)
	}
	bctx, cancel := context.WithTimeout(bctx, 2*time.Minute)
	defer cancel()
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	location := func() string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Location())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	err := chromedp.Do(bctx,
		chromedp.Navigate(srv.URL+PathDecisions),
		chromedp.WaitVisible(chromedp.CSS(`#decisions`)),
		chromedp.SendKeys(chromedp.CSS(`#filters input[name="digest"]`), digest),
	)
	if err != nil {
		t.Fatalf("open the decisions page: %v", err)
	}
	resp, err := chromedp.RunResponse(bctx, chromedp.Click(chromedp.CSS(`#filters button[type="submit"]`)))
	if err != nil {
		t.Fatalf("submit the filter: %v", err)
	}
	if resp.Status != 200 {
		t.Fatalf("submit the filter: status %d", resp.Status)
	}
	if url := location(); !strings.Contains(url, "digest="+strings.Replace(digest, ":", "%3A", 1)) {
		t.Errorf("the form did not submit the digest: %s", url)
	}
	rows, err := chromedp.Run(bctx, chromedp.Evaluate[[]string](
		`Array.from(document.querySelectorAll("#decisions tbody tr"), r => r.dataset.index + " " + r.dataset.digest)`))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"41 " + digest, "40 " + digest}; !slices.Equal(rows, want) {
		t.Fatalf("rows after filtering on the digest: %q, want %q", rows, want)
	}

	resp, err = chromedp.RunResponse(bctx, chromedp.Click(chromedp.CSS(`#decisions tbody tr:first-child a.index`)))
	if err != nil {
		t.Fatalf("open the record: %v", err)
	}
	if resp.Status != 200 {
		t.Fatalf("open the record: status %d", resp.Status)
	}
	if url := location(); !strings.HasSuffix(url, PathDecisions+"/41") {
		t.Errorf("the first row links to %s, want record 41", url)
	}
	if status := text(`#proof-status`); status != "proof verifies" {
		t.Errorf("proof status %q, want %q", status, "proof verifies")
	}
	decision, subject, actor, evidence := text(`#decision`), text(`#subject`), text(`#actor`), text(`#evidence`)
	checkpoint, leafHash := text(`#checkpoint`), text(`#leaf-hash`)
	proofHashes, err := chromedp.Run(bctx, chromedp.Evaluate[[]string](
		`Array.from(document.querySelectorAll("#proof-hashes li"), li => li.textContent)`))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ section, text string }{
		{decision, "break-glass"}, {decision, "allow"}, {decision, "sha256:9011c7"},
		{decision, "break-glass allowed by policy"}, {decision, "image is 40 days old"}, {decision, "INC-4242: payment outage"},
		{subject, "registry.example/prod/web"}, {subject, digest}, {subject, "v9"}, {subject, "prod"}, {subject, "Deployment/web"},
		{actor, "oncall@example.com"}, {actor, "prod/web"},
		{evidence, "SHA256:releasekey"}, {evidence, "https://github.com/acme/web/.github/workflows/release.yml@refs/tags/v9"},
		{evidence, "https://token.actions.githubusercontent.com"}, {evidence, "https://slsa.dev/provenance/v1"},
		{evidence, "sha256:a77e"}, {evidence, "sha256:5b0b"}, {evidence, "sha256:75a0"},
		{evidence, "CRITICAL: 1"}, {evidence, "HIGH: 2"},
		{checkpoint, l.Verifier().Name() + "\n52\n"},
	} {
		if !strings.Contains(c.section, c.text) {
			t.Errorf("the record page lacks %q in:\n%s", c.text, c.section)
		}
	}
	b64 := base64.StdEncoding.EncodeToString
	p, err := l.InclusionProof(ctx, 41, 52)
	if err != nil {
		t.Fatal(err)
	}
	e, err := l.Get(ctx, 41)
	if err != nil {
		t.Fatal(err)
	}
	if want := b64(e.LeafHash); strings.TrimSpace(leafHash) != want {
		t.Errorf("leaf hash %q, want %q", leafHash, want)
	}
	if len(proofHashes) != len(p.Hashes) {
		t.Fatalf("%d proof hashes shown, want %d", len(proofHashes), len(p.Hashes))
	}
	for i, h := range p.Hashes {
		if proofHashes[i] != b64(h) {
			t.Errorf("proof hash %d: %q, want %q", i, proofHashes[i], b64(h))
		}
	}
}
