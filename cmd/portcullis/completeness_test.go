package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/audit"
	vt "github.com/portcullis-dev/portcullis/verifier/verifiertest"
)

// auditLog reads a server's decision history, oldest first, and hands out
// the records appended since the last call.
type auditLog struct {
	t    *testing.T
	data string
	seen int
}

func (l *auditLog) all() []audit.Record {
	l.t.Helper()
	code, out, errOut := run2(l.t, "audit", "query", "--data", l.data, "--output", "json", "--oldest-first", "--limit", "0")
	if code != 0 {
		l.t.Fatalf("audit query: exit %d: %s", code, errOut)
	}
	var entries []audit.Entry
	if err := json.Unmarshal([]byte(out), &entries); err != nil {
		l.t.Fatalf("audit query output: %v\n%s", err, out)
	}
	recs := make([]audit.Record, len(entries))
	for i, e := range entries {
		recs[i] = e.Record
	}
	return recs
}

// one returns the single record appended since the last call, failing
// the test unless there is exactly one and it has action and verdict.
func (l *auditLog) one(what, action, verdict string) audit.Record {
	l.t.Helper()
	recs := l.all()
	fresh := recs[l.seen:]
	l.seen = len(recs)
	if len(fresh) != 1 {
		var b strings.Builder
		for _, r := range fresh {
			fmt.Fprintf(&b, "\n  %s %s %s@%s -> %+v: %v", r.Action, r.Verdict, r.Subject.Repository, r.Subject.Digest, r.Target, r.Reasons)
		}
		l.t.Fatalf("%s: %d new records, want exactly 1:%s", what, len(fresh), b.String())
	}
	r := fresh[0]
	if r.Action != action || r.Verdict != verdict {
		l.t.Fatalf("%s: record %s/%s, want %s/%s: %+v", what, r.Action, r.Verdict, action, verdict, r)
	}
	return r
}

// TestAuditCompleteness drives every path on which the gate or the
// webhook decides or refuses, through a real server and real clients, and
// checks that each leaves exactly one record with the right action and
// verdict (docs/audit.md, "every decision is a record").
func TestAuditCompleteness(t *testing.T) {
	requireTool(t, "crane")
	dir, data := t.TempDir(), t.TempDir()
	pki := apiServerPKI(t)
	key := writeTrustedKey(t, filepath.Join(dir, "release.pub"))
	until := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	cfg := "trust:\n  authorities:\n    - name: release\n      keys: [release.pub]\n" +
		"webhook:\n  breakGlass: [{namespace: shop, until: " + until + "}]\n" + webhookAuthYAML(pki)
	if err := os.WriteFile(filepath.Join(dir, "portcullis.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	hookAddr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, data, "--config", filepath.Join(dir, "portcullis.yaml"), "--webhook-addr", hookAddr)
	reg := vt.Registry{Host: srv.Addr}
	sign := func(repo string, d digest.Digest) {
		reg.PushKeyBundle(t, key, repo, d, vt.Statement(t, d, vt.CosignSign, `{}`))
	}
	signed := reg.PushImage(t, "staging/web", "1")
	sign("staging/web", signed)
	signed2 := reg.PushImage(t, "staging/web", "2")
	sign("staging/web", signed2)
	unsigned := reg.PushImage(t, "staging/web", "3")
	elsewhere := reg.PushImage(t, "team/web", "1")
	sign("team/web", elsewhere)

	log := &auditLog{t: t, data: data}
	log.seen = len(log.all()) // pushes to staging are not decisions

	client := webhookClient(t, data, &pki.Cert)
	review := func(name string, annotations map[string]string, image string) map[string]any {
		t.Helper()
		return postPodReview(t, client, hookAddr, "shop", name, image, annotations)
	}
	admit := func(name, image string, want bool) {
		t.Helper()
		if got := review(name, nil, image); got["allowed"] != want {
			t.Fatalf("admission of %s: %v, want allowed=%v", image, got, want)
		}
	}

	// Admissions: decided, then answered from the cache; each is a record
	// of its own workload.
	img := srv.Addr + "/staging/web@" + signed.String()
	admit("a", img, true)
	if r := log.one("admit", audit.ActionAdmit, audit.VerdictAllow); r.Cached || r.Target.Name != "a" || r.Subject.Digest != signed.String() {
		t.Fatalf("first admission: %+v", r)
	}
	// The cache is keyed by everything policy sees, the workload's name
	// included: the same pod again (a retried create) is a hit.
	admit("a", img, true)
	if r := log.one("cached admit", audit.ActionAdmit, audit.VerdictAllow); !r.Cached || r.Target.Name != "a" || r.Actor.KubernetesUser != "alice" {
		t.Fatalf("cached admission: want cached, workload a, user alice: %+v", r)
	}
	admit("b", img, true)
	if r := log.one("admit of another workload", audit.ActionAdmit, audit.VerdictAllow); r.Cached || r.Target.Name != "b" {
		t.Fatalf("another workload: %+v", r)
	}
	bad := srv.Addr + "/staging/web@" + unsigned.String()
	admit("c", bad, false)
	log.one("denied admit", audit.ActionAdmit, audit.VerdictDeny)
	admit("c", bad, false)
	if r := log.one("cached denial", audit.ActionAdmit, audit.VerdictDeny); !r.Cached || r.Target.Name != "c" {
		t.Fatalf("cached denial: %+v", r)
	}
	admit("e", srv.Addr+"/staging/missing:1", false)
	if r := log.one("unresolvable image", audit.ActionAdmit, audit.VerdictError); !strings.Contains(r.Error, "resolve") || r.Target.Name != "e" {
		t.Fatalf("unresolvable image: %+v", r)
	}
	admit("f", "Not//A:Reference::", false)
	log.one("unparsable reference", audit.ActionAdmit, audit.VerdictError)
	if got := review("g", map[string]string{"portcullis.dev/break-glass": "incident 42"}, bad); got["allowed"] != true {
		t.Fatalf("break glass: %v", got)
	}
	// The denial that break glass overrides is recorded, then the break
	// glass itself.
	recs := log.all()
	fresh := recs[log.seen:]
	log.seen = len(recs)
	if len(fresh) != 2 || fresh[0].Action != audit.ActionAdmit || fresh[0].Verdict != audit.VerdictDeny ||
		fresh[1].Action != audit.ActionBreakGlass || fresh[1].BreakGlassJustification != "incident 42" {
		t.Fatalf("break glass: want the admit denial and the break-glass record, got %+v", fresh)
	}

	// Promotions: by crane and by the API, allowed and denied.
	crane := func(args ...string) error {
		_, _, err := tryTool(t, dir, nil, "crane", args...)
		return err
	}
	if err := crane("copy", img, srv.Addr+"/prod/web:1"); err != nil {
		t.Fatalf("crane copy of a signed image: %v", err)
	}
	log.one("crane promotion", audit.ActionPromote, audit.VerdictAllow)
	if code, out, errOut := run2(t, "promote", srv.Addr+"/staging/web@"+signed2.String(), srv.Addr+"/prod/web:2"); code != 0 {
		t.Fatalf("promote: exit %d %s%s", code, out, errOut)
	}
	log.one("API promotion", audit.ActionPromote, audit.VerdictAllow)
	if err := crane("copy", bad, srv.Addr+"/prod/web:3"); err == nil {
		t.Fatal("crane copy of an unsigned image was allowed")
	}
	log.one("denied crane promotion", audit.ActionPromote, audit.VerdictDeny)

	// Refusals before any policy is asked.
	if err := crane("copy", srv.Addr+"/staging/web@"+signed2.String(), srv.Addr+"/prod/web:1"); err == nil {
		t.Fatal("an immutable tag moved")
	}
	if r := log.one("immutable tag moved by crane", audit.ActionPush, audit.VerdictDeny); !strings.Contains(strings.Join(r.Reasons, " "), "immutable") {
		t.Fatalf("immutable tag refusal: %+v", r)
	}
	if code, _, _ := run2(t, "promote", srv.Addr+"/staging/web@"+signed2.String(), srv.Addr+"/prod/web:1"); code != 2 {
		t.Fatalf("promote onto an immutable tag: exit %d, want 2", code)
	}
	log.one("immutable tag moved by the API", audit.ActionPromote, audit.VerdictDeny)
	if code, _, _ := run2(t, "promote", srv.Addr+"/team/web@"+elsewhere.String(), srv.Addr+"/prod/web:9"); code != 2 {
		t.Fatalf("promote from a namespace not in from: exit %d, want 2", code)
	}
	if r := log.one("source not in from", audit.ActionPromote, audit.VerdictDeny); r.Subject.Repository != "team/web" || r.Target.Repository != "prod/web" {
		t.Fatalf("source not in from: %+v", r)
	}
	hc := newClient(t)
	for _, ref := range []string{"1", signed.String()} {
		resp := mustDo(t, hc, http.StatusForbidden, http.MethodDelete, srv.URL("/v2/prod/web/manifests/"+ref), nil, nil)
		_ = resp
		r := log.one("delete of prod/web:"+ref, audit.ActionDelete, audit.VerdictDeny)
		if r.Subject.Tag+r.Subject.Digest != ref {
			t.Fatalf("delete record names %q%q, want %s", r.Subject.Tag, r.Subject.Digest, ref)
		}
	}
	mustDo(t, hc, http.StatusForbidden, http.MethodDelete, srv.URL("/v2/prod/web/blobs/"+signed.String()), nil, nil)
	log.one("blob delete", audit.ActionDelete, audit.VerdictDeny)
	// New content in prod is linked for evidence only (no decision yet);
	// an image manifest over it is a refused push, recorded.
	blob := []byte(`{"new content never pushed to staging": true}`)
	mustDo(t, hc, http.StatusCreated, http.MethodPost, srv.URL("/v2/prod/web/blobs/uploads/?digest="+sha256Digest(blob)), nil, blob)
	over := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",` +
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + sha256Digest(blob) + `","size":` + fmt.Sprint(len(blob)) + `},` +
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"` + sha256Digest(blob) + `","size":` + fmt.Sprint(len(blob)) + `}]}`)
	mustDo(t, hc, http.StatusForbidden, http.MethodPut, srv.URL("/v2/prod/web/manifests/evil"),
		http.Header{"Content-Type": {"application/vnd.oci.image.manifest.v1+json"}}, over)
	if r := log.one("image over an evidence blob in prod", audit.ActionPush, audit.VerdictDeny); r.Subject.Digest != sha256Digest(over) {
		t.Fatalf("refusal of an image over an evidence blob: %+v", r)
	}

	// What ran: both admitted workloads and the break glass.
	code, out, errOut := run2(t, "audit", "running", "--data", data, "--namespace", "shop", "--output", "json")
	if code != 0 {
		t.Fatalf("audit running: exit %d %s", code, errOut)
	}
	for _, w := range []string{`"name": "a"`, `"name": "b"`, `"name": "g"`} {
		if !strings.Contains(out, w) {
			t.Errorf("audit running misses workload %s:\n%s", w, out)
		}
	}
	if code, _, errOut := run2(t, "audit", "verify", "--data", data); code != 0 {
		t.Fatalf("audit verify: %s", errOut)
	}
}
