package main

// Findings 1 and 2 of the soundness issue, as an attacker with push rights
// to staging does them with real clients (crane, oras, the cosign CLI)
// against a real `portcullis serve`: nothing reaches prod/ but what the
// gate allowed, and evidence about it (docs/gate.md, I1 and I2).

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSideDoorsRealClients(t *testing.T) {
	requireTool(t, "oras")
	s := newStory(t)
	oras := func(args ...string) (string, string, error) {
		return tryTool(t, s.dir, nil, "oras", append(args, "--plain-http")...)
	}
	victim := s.push("staging/app", "1", "v1", fixedMusl)
	victimDigest := victim[strings.Index(victim, "@")+1:]
	// The attacker's runnable image, pushed to staging like any other.
	evil := s.push("staging/evil", "1", "evil", fixedMusl)
	raw, _ := runTool(t, s.dir, nil, "crane", "manifest", evil)
	var evilMan manifestJSON
	unmarshal(t, "crane manifest", []byte(raw), &evilMan)
	victimRaw, _ := runTool(t, s.dir, nil, "crane", "manifest", victim)

	// Finding 2: the attacker attaches the runnable image to the victim's
	// image in staging, before CI promotes it.
	var victimMan manifestJSON
	unmarshal(t, "crane manifest", []byte(victimRaw), &victimMan)
	withSubject := evilMan
	withSubject.MediaType = mediaTypeOCIManifest
	withSubject.Subject = &descriptor{MediaType: victimMan.MediaType, Digest: victimDigest, Size: int64(len(victimRaw))}
	attached := filepath.Join(s.dir, "attached.json")
	writeFile(t, attached, mustJSONBytes(t, withSubject))
	// oras copies the layers across as an attacker's client would.
	runTool(t, s.dir, nil, "crane", "copy", evil, s.srv.Addr+"/staging/app:evil-layers")
	if _, stderr, err := oras("manifest", "push", "--media-type", mediaTypeOCIManifest, s.srv.Addr+"/staging/app", attached); err != nil {
		t.Fatalf("oras manifest push of a referrer into staging: %v\n%s", err, stderr)
	}
	attachedDigest := sha256Digest(mustJSONBytes(t, withSubject))

	s.cosign("ci", "sign", victim)
	s.cosign("ci", "attest", "--type", "slsaprovenance1", "--predicate", "prov.json", victim)
	s.cosign("ci", "attest", "--type", "cyclonedx", "--predicate", "cdx.json", victim)
	if msg := s.copyToProd(victim, "prod/app:1.0"); msg != "" {
		t.Fatalf("crane copy of the signed image: %s", msg)
	}
	if s.inProd("@" + attachedDigest) {
		t.Fatal("the runnable image attached in staging was carried into prod")
	}
	// portcullis promote names what it leaves behind.
	code, out, stderr := run2(t, "promote", "--output", "json", victim, s.srv.Addr+"/prod/app:1.0")
	if code != 0 {
		t.Fatalf("portcullis promote again: exit %d\n%s%s", code, out, stderr)
	}
	var resp struct {
		Allowed    bool `json:"allowed"`
		LeftBehind []struct {
			Digest string `json:"digest"`
		} `json:"leftBehind"`
	}
	unmarshal(t, "portcullis promote --output json", []byte(out), &resp)
	if !resp.Allowed || len(resp.LeftBehind) != 1 || resp.LeftBehind[0].Digest != attachedDigest {
		t.Fatalf("promotion response %s: want the attached image named as left behind", out)
	}

	// Finding 1: a manifest PUT into prod/ with a subject, or under a
	// cosign tag, is not a way around the gate.
	cosignTag := "sha256-" + strings.TrimPrefix(victimDigest, "sha256:")
	for _, target := range []string{"prod/app:" + cosignTag + ".sig", "prod/app:" + cosignTag + ".att", "prod/app:" + cosignTag + ".sbom", "prod/app:1.0", "prod/app:new"} {
		if msg := s.copyToProd(evil, target); !strings.Contains(msg, "DENIED") {
			t.Errorf("crane copy of the attacker's image to %s: %q, want DENIED", target, msg)
		}
	}
	if _, stderr, err := oras("manifest", "push", "--media-type", mediaTypeOCIManifest, s.srv.Addr+"/prod/app", attached); err == nil || !strings.Contains(stderr, "denied: prod/app is protected") {
		t.Errorf("oras manifest push of a runnable image with the promoted subject into prod: %v %s", err, stderr)
	}
	for _, ref := range []string{"@" + attachedDigest, evil[strings.Index(evil, "@"):]} {
		if s.inProd(ref) {
			t.Errorf("prod/app%s is pullable", ref)
		}
	}
	// The attacker's blobs were mounted into prod/app by the refused
	// copies above; no manifest there names them, so they are not there
	// for clients, neither to read nor to mount elsewhere. The promoted
	// image's blobs are.
	blobInProd := func(d string) bool {
		_, _, err := tryTool(t, s.dir, nil, "crane", "blob", s.srv.Addr+"/prod/app@"+d)
		return err == nil
	}
	if blobInProd(evilMan.Config.Digest) {
		t.Errorf("the attacker's config blob %s is pullable from prod/app", evilMan.Config.Digest)
	}
	if !blobInProd(victimMan.Config.Digest) || !blobInProd(victimMan.Layers[0].Digest) {
		t.Errorf("the promoted image's blobs are not pullable from prod/app")
	}
	got, _ := runTool(t, s.dir, nil, "crane", "digest", s.srv.Addr+"/prod/app:1.0")
	if strings.TrimSpace(got) != victimDigest {
		t.Fatalf("prod/app:1.0 is %s, want %s", got, victimDigest)
	}
	// The evidence the promotion carried still verifies with cosign.
	runTool(t, s.dir, cosignEnv(filepath.Join(s.dir, "ci")), "cosign3", "verify", "--key", filepath.Join(s.dir, "ci", "cosign.pub"),
		"--insecure-ignore-tlog", "--trusted-root", writeEmptyTrustedRoot(t, s.dir), s.srv.Addr+"/prod/app:1.0")
}

func mustJSONBytes(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// writeEmptyTrustedRoot writes a trusted root with empty lists, so cosign
// verifies keyed signatures without reaching the public Sigstore.
func writeEmptyTrustedRoot(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "empty-trusted-root.json")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	writeFile(t, p, []byte(`{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1","tlogs":[],"certificateAuthorities":[],"ctlogs":[],"timestampAuthorities":[]}`))
	return p
}

// TestCoSignInProd is finding 8 of the promises issue: a release
// co-signature of an image already in prod/, with the real cosign CLIs
// (the tag scheme cosign v2 writes, with cosign v3's
// --new-bundle-format=false, and a Sigstore bundle referrer), sign and
// attest, is accepted and verifies; the attacker's runnable image still
// cannot be put there under the cosign tags (TestEvidenceAfterPromotion in
// gate/ tries the blob-level attacks).
func TestCoSignInProd(t *testing.T) {
	requireTool(t, "cosign3")
	s := newStory(t)
	victim := s.push("staging/app", "1", "v1", fixedMusl)
	victimDigest := victim[strings.Index(victim, "@")+1:]
	s.cosign("ci", "sign", victim)
	s.cosign("ci", "attest", "--type", "slsaprovenance1", "--predicate", "prov.json", victim)
	s.cosign("ci", "attest", "--type", "cyclonedx", "--predicate", "cdx.json", victim)
	if msg := s.copyToProd(victim, "prod/app:1.0"); msg != "" {
		t.Fatalf("crane copy of the signed image: %s", msg)
	}
	inProd := s.srv.Addr + "/prod/app@" + victimDigest
	// The release manager's co-signatures, after the promotion.
	release := filepath.Join(s.dir, "release")
	if err := os.MkdirAll(release, 0o755); err != nil {
		t.Fatal(err)
	}
	runTool(t, release, cosignEnv(release), "cosign3", "generate-key-pair")
	key2 := filepath.Join(release, "cosign.key")
	runTool(t, s.dir, cosignEnv(release), "cosign3", append(append([]string{"sign", "--key", key2, "--yes"}, cosignLegacy...), inProd)...)
	runTool(t, s.dir, cosignEnv(release), "cosign3", append(append([]string{"attest", "--key", key2, "--yes", "--type", "cyclonedx", "--predicate", "cdx.json"}, cosignLegacy...), inProd)...)
	s.cosign("intruder", "sign", inProd) // any key: what is checked is that it is evidence about the image
	s.cosign("intruder", "attest", "--type", "slsaprovenance1", "--predicate", "prov.json", inProd)

	for _, tt := range []struct {
		key    string
		source string
	}{
		{filepath.Join(release, "cosign.pub"), "tag"},
		{filepath.Join(s.dir, "intruder", "cosign.pub"), "bundle"},
		{filepath.Join(s.dir, "ci", "cosign.pub"), "bundle"}, // carried by the promotion
	} {
		code, out, stderr := runVerify("--key", tt.key, "--output", "json", inProd)
		var res verifyJSON
		if code != 0 || json.Unmarshal([]byte(out), &res) != nil || !res.Verified {
			t.Fatalf("portcullis verify --key %s %s: exit %d\n%s%s", tt.key, inProd, code, out, stderr)
		}
		found := false
		for _, sg := range res.Signatures {
			found = found || (sg.Verified && sg.Source == tt.source)
		}
		attested := false
		for _, a := range res.Attestations {
			attested = attested || (a.Verified && a.Source == tt.source)
		}
		if !found || !attested {
			t.Errorf("no verified %s signature and attestation by %s in prod: %s", tt.source, tt.key, out)
		}
	}
	// (cosign verify with --new-bundle-format=false is not used: with
	// bundles present it wants a trusted root, and then reads only them.)
	runTool(t, s.dir, cosignEnv(filepath.Join(s.dir, "intruder")), "cosign3", "verify", "--key", filepath.Join(s.dir, "intruder", "cosign.pub"),
		"--insecure-ignore-tlog", "--trusted-root", writeEmptyTrustedRoot(t, s.dir), inProd)

	// The image and its tag did not change; the attacker's image is still
	// refused under the cosign tags that now exist.
	got, _ := runTool(t, s.dir, nil, "crane", "digest", s.srv.Addr+"/prod/app:1.0")
	if strings.TrimSpace(got) != victimDigest {
		t.Fatalf("prod/app:1.0 is %s, want %s", got, victimDigest)
	}
	evil := s.push("staging/evil", "1", "evil", fixedMusl)
	cosignTag := "sha256-" + strings.TrimPrefix(victimDigest, "sha256:")
	for _, target := range []string{"prod/app:" + cosignTag + ".sig", "prod/app:" + cosignTag + ".att"} {
		if msg := s.copyToProd(evil, target); !strings.Contains(msg, "DENIED") {
			t.Errorf("crane copy of the attacker's image to %s: %q, want DENIED", target, msg)
		}
	}
	if s.inProd(evil) {
		t.Error("the attacker's image is in prod/app")
	}
}
