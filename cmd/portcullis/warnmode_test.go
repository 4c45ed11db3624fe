package main

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/audit"
	vt "github.com/portcullis-dev/portcullis/verifier/verifiertest"
)

// postPodReview posts the review of Pod name in ns running image, by
// user alice, with annotations, to the webhook at hookAddr, and returns
// its response.
func postPodReview(t *testing.T, client *http.Client, hookAddr, ns, name, image string, annotations map[string]string) map[string]any {
	t.Helper()
	resp, err := client.Post("https://"+hookAddr+"/validate", "application/json", bytes.NewReader(namedPodReview(name, ns, "alice", image, annotations)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out["response"].(map[string]any)
}

// TestAuditWarnMode: in a namespace in warn mode, an image that policy
// denies (or whose check fails) is admitted with a warning; its record
// keeps the verdict and says "enforcement": "warn", decided or answered
// from the cache, and audit running lists the workload. Once the
// namespace enforces (a server started on the same data with another
// configuration), the record carries no enforcement.
func TestAuditWarnMode(t *testing.T) {
	dir, data := t.TempDir(), t.TempDir()
	pki := apiServerPKI(t)
	key := vt.NewKey(t)
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "release.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	// serve starts a server with namespace shop in mode; at addr, if not
	// "" (where the one stopped listened: images are named by its address).
	serve := func(mode, addr string) (*server, string) {
		t.Helper()
		cfg := filepath.Join(dir, mode+".yaml")
		yaml := "trust:\n  authorities:\n    - name: release\n      keys: [release.pub]\n" +
			"webhook:\n  namespaces: {shop: " + mode + "}\n" + webhookAuthYAML(pki)
		if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		hookAddr, err := freeAddr()
		if err != nil {
			t.Fatal(err)
		}
		args := []string{"--config", cfg, "--webhook-addr", hookAddr}
		if addr == "" {
			return startServer(t, data, args...), hookAddr
		}
		srv, err := tryStartServerAt(t, nil, addr, data, args...)
		if err != nil {
			t.Fatalf("start portcullis serve again at %s: %v", addr, err)
		}
		return srv, hookAddr
	}
	srv, hookAddr := serve("warn", "")
	reg := vt.Registry{Host: srv.Addr}
	unsigned := reg.PushImage(t, "staging/web", "1")
	bad := srv.Addr + "/staging/web@" + unsigned.String()

	log := &auditLog{t: t, data: data}
	log.seen = len(log.all())
	client := webhookClient(t, data, &pki.Cert)
	admitted := func(name, image string) {
		t.Helper()
		got := postPodReview(t, client, hookAddr, "shop", name, image, nil)
		if got["allowed"] != true || !strings.Contains(strings.Join(warningsOf(got), "\n"), "warn mode in namespace shop") {
			t.Fatalf("admission of %s in warn mode: %v, want allowed with the would-be denial as a warning", image, got)
		}
	}

	admitted("w", bad)
	if r := log.one("denied image admitted in warn mode", audit.ActionAdmit, audit.VerdictDeny); r.Enforcement != audit.EnforcementWarn || r.Cached || r.Target.Name != "w" {
		t.Fatalf("warn-mode admission: want enforcement warn, not cached, workload w: %+v", r)
	}
	admitted("w", bad)
	if r := log.one("cached warn-mode admission", audit.ActionAdmit, audit.VerdictDeny); r.Enforcement != audit.EnforcementWarn || !r.Cached {
		t.Fatalf("cached warn-mode admission: want enforcement warn, cached: %+v", r)
	}
	admitted("x", srv.Addr+"/staging/missing:1")
	if r := log.one("unresolvable image admitted in warn mode", audit.ActionAdmit, audit.VerdictError); r.Enforcement != audit.EnforcementWarn {
		t.Fatalf("unresolvable image in warn mode: want enforcement warn: %+v", r)
	}

	code, out, errOut := run2(t, "audit", "running", "--data", data, "--namespace", "shop", "--output", "json")
	if code != 0 {
		t.Fatalf("audit running: exit %d %s", code, errOut)
	}
	var running []audit.Entry
	if err := json.Unmarshal([]byte(out), &running); err != nil {
		t.Fatalf("audit running output: %v\n%s", err, out)
	}
	ran := map[string]audit.Record{}
	for _, e := range running {
		ran[e.Record.Target.Name] = e.Record
	}
	if r, ok := ran["w"]; !ok || r.Verdict != audit.VerdictDeny || r.Enforcement != audit.EnforcementWarn || r.Subject.Digest != unsigned.String() {
		t.Errorf("audit running: workload w (admitted in warn mode) missing or wrong: %+v\n%s", r, out)
	}
	if _, ok := ran["x"]; !ok {
		t.Errorf("audit running misses workload x (admitted in warn mode after its check failed):\n%s", out)
	}
	if code, out, _ := run2(t, "audit", "running", "--data", data, "--namespace", "shop"); code != 0 || !strings.Contains(out, "enforcement: warn") {
		t.Errorf("audit running table: exit %d, want the warn-mode admissions marked:\n%s", code, out)
	}

	// The same namespace, now enforced: the same image is denied, and its
	// record says nothing of warn mode.
	srv.Stop()
	_, hookAddr = serve("enforce", srv.Addr)
	if got := postPodReview(t, client, hookAddr, "shop", "w", bad, nil); got["allowed"] != false {
		t.Fatalf("admission of %s once enforced: %v, want denied", bad, got)
	}
	if r := log.one("denied image, enforced", audit.ActionAdmit, audit.VerdictDeny); r.Enforcement != "" {
		t.Fatalf("enforced denial: want no enforcement: %+v", r)
	}
	if code, _, errOut := run2(t, "audit", "verify", "--data", data); code != 0 {
		t.Fatalf("audit verify: %s", errOut)
	}
}

func warningsOf(resp map[string]any) []string {
	var out []string
	ws, _ := resp["warnings"].([]any)
	for _, w := range ws {
		s, _ := w.(string)
		out = append(out, s)
	}
	return out
}
