package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/registry/registrytest"
	vt "github.com/portcullis-dev/portcullis/verifier/verifiertest"
)

// TestServeWebhook: `portcullis serve --webhook-addr` admits a pod whose
// image is signed by a trusted key and denies one with an unsigned image,
// with the policy's reason, over TLS with the self-signed CA it wrote; the
// same for images of another registry listed in webhook.registries, and
// images of any other registry are denied.
func TestServeWebhook(t *testing.T) {
	_, otherHost := registrytest.New(t)
	other := vt.Registry{Host: otherHost}
	dir, data := t.TempDir(), t.TempDir()
	pki := apiServerPKI(t)
	key := writeTrustedKey(t, filepath.Join(dir, "release.pub"))
	cfg := "trust:\n  authorities:\n    - name: release\n      keys: [release.pub]\n" +
		"webhook:\n  registries:\n    - {host: \"" + otherHost + "\", insecure: true}\n" + webhookAuthYAML(pki)
	if err := os.WriteFile(filepath.Join(dir, "portcullis.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	hookAddr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, data, "--config", filepath.Join(dir, "portcullis.yaml"), "--webhook-addr", hookAddr)
	reg := vt.Registry{Host: srv.Addr}
	signed := reg.PushImage(t, "staging/web", "1")
	reg.PushKeyBundle(t, key, "staging/web", signed, vt.Statement(t, signed, vt.CosignSign, `{}`))
	unsigned := reg.PushImage(t, "staging/web", "2")

	client := webhookClient(t, data, &pki.Cert)
	review := func(images ...string) map[string]any {
		t.Helper()
		var containers []map[string]string
		for i, img := range images {
			containers = append(containers, map[string]string{"name": "c" + string(rune('0'+i)), "image": img})
		}
		pod, _ := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "web", "namespace": "shop"},
			"spec": map[string]any{"containers": containers}})
		body, _ := json.Marshal(map[string]any{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": map[string]any{
			"uid": "u1", "kind": map[string]string{"group": "", "version": "v1", "kind": "Pod"},
			"resource": map[string]string{"group": "", "version": "v1", "resource": "pods"}, "name": "web", "namespace": "shop",
			"operation": "CREATE", "userInfo": map[string]any{"username": "alice"}, "object": json.RawMessage(pod)}})
		resp, err := client.Post("https://"+hookAddr+"/validate", "application/json", bytes.NewReader(body))
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
	ok := review(srv.Addr + "/staging/web@" + signed.String())
	if ok["allowed"] != true {
		t.Fatalf("signed image denied: %v", ok)
	}
	bad := review(srv.Addr+"/staging/web:1", srv.Addr+"/staging/web@"+unsigned.String())
	msg, _ := json.Marshal(bad)
	if bad["allowed"] != false || !strings.Contains(string(msg), unsigned.Encoded()) || !strings.Contains(string(msg), "no signature verified") {
		t.Fatalf("pod with an unsigned image: %s", msg)
	}
	foreignSigned := other.PushImage(t, "team/web", "1")
	other.PushKeyBundle(t, key, "team/web", foreignSigned, vt.Statement(t, foreignSigned, vt.CosignSign, `{}`))
	foreignUnsigned := other.PushImage(t, "team/web", "2")
	if ok := review(otherHost + "/team/web:1"); ok["allowed"] != true {
		t.Fatalf("signed image of a listed registry denied: %v", ok)
	}
	bad = review(otherHost + "/team/web@" + foreignUnsigned.String())
	msg, _ = json.Marshal(bad)
	if bad["allowed"] != false || !strings.Contains(string(msg), "no signature verified") {
		t.Fatalf("unsigned image of a listed registry: %s", msg)
	}
	unknown := review("docker.io/library/nginx:1.27")
	msg, _ = json.Marshal(unknown)
	if unknown["allowed"] != false || !strings.Contains(string(msg), "neither in this registry nor in a registry listed in webhook.registries") {
		t.Fatalf("image of an unlisted registry: %s", msg)
	}
	code, out, errOut := run2(t, "audit", "query", "--data", data, "--digest", foreignSigned.String(), "--output", "json")
	if code != 0 || !strings.Contains(out, `"repository": "`+otherHost+`/team/web"`) {
		t.Fatalf("the admission of %s is not recorded with its registry: exit %d %s%s", foreignSigned, code, out, errOut)
	}
}
