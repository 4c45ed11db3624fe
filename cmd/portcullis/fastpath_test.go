package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/scanner/trivy/trivytest"
	vt "github.com/portcullis-dev/portcullis/verifier/verifiertest"
	"github.com/portcullis-dev/portcullis/webhook/webhooktest"
)

// fastPathServer is `portcullis serve --webhook-addr` with the release key
// trusted and the library's signature and reference policies deciding
// promotions and admissions (references apply to admissions only, their
// default).
type fastPathServer struct {
	t         *testing.T
	dir, data string
	srv       *server
	hookAddr  string
	client    *http.Client
	pki       webhooktest.ClientPKI
}

const fastPathPolicy = `{"portcullis":{"config":{"signatures":{"authorities":["release"]},"references":{}}}}`

func newFastPathServer(t *testing.T, release *ecdsa.PrivateKey) *fastPathServer {
	s := &fastPathServer{t: t, dir: t.TempDir(), data: t.TempDir()}
	if err := os.MkdirAll(filepath.Join(s.dir, "policy"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.dir, "policy", "data.json"), []byte(fastPathPolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	s.pki = apiServerPKI(t)
	cfg := "trust:\n  authorities:\n    - name: release\n      keys: [release.pub]\npolicies:\n  default:\n    bundle: policy\nwebhook:\n" + webhookAuthYAML(s.pki)
	if err := os.WriteFile(filepath.Join(s.dir, "portcullis.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	// A vulnerability database (no image here has musl): scans succeed, and the VSA carries
	// the scan as the rest of the evidence.
	trivytest.WriteDB(t, filepath.Join(s.data, "trivy", "db"), time.Now(), trivytest.AlpineMusl)
	s.start(release)
	return s
}

// start (re)starts the server trusting key as the release authority.
func (s *fastPathServer) start(release *ecdsa.PrivateKey) {
	t := s.t
	der, err := x509.MarshalPKIXPublicKey(release.Public())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.dir, "release.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if s.hookAddr, err = freeAddr(); err != nil {
		t.Fatal(err)
	}
	s.srv = startServer(t, s.data, "--config", filepath.Join(s.dir, "portcullis.yaml"), "--webhook-addr", s.hookAddr)
	s.client = webhookClient(t, s.data, &s.pki.Cert)
}

// admit posts an AdmissionReview for a Pod running image in ns to
// /validate over HTTPS and returns whether it was allowed, and the message.
func (s *fastPathServer) admit(ns, image string) (bool, string) {
	t := s.t
	t.Helper()
	resp, err := s.client.Post("https://"+s.hookAddr+"/validate", "application/json", bytes.NewReader(podReview(ns, "alice", image, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Response struct {
			Allowed bool `json:"allowed"`
			Status  struct {
				Message string `json:"message"`
			} `json:"status"`
		} `json:"response"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
		t.Fatalf("status %d: %v", resp.StatusCode, err)
	}
	return out.Response.Allowed, out.Response.Status.Message
}

// TestFastPathFindings: findings 4, 5 and 6 of issue 17 through
// AdmissionReviews over HTTPS to a real `portcullis serve`. A signed image
// is promoted to prod/app:1.0 (with the gate's VSA) under the default
// policy, whose reference rules apply to admissions only.
//
//   - 4: the VSA stands in for the evidence, not for policy: prod/app:latest@D
//     and the tag-only prod/app:1.0 are denied by the reference rules, as
//     the same image is from staging, while prod/app@D is admitted on its
//     VSA.
//   - 6: after staging/app@D or prod/app@D was admitted (and cached),
//     :latest@D and the tag-only :1.0 of the same repository in the same
//     namespace are still denied: the decision cache is keyed by the
//     reference as written.
//   - 5: after the release key is replaced in trust.authorities and the
//     server restarted, prod/app@D is denied (its signature no longer
//     verifies): the VSA, verified under the old trust revision, no
//     longer stands.
func TestFastPathFindings(t *testing.T) {
	release := vt.NewKey(t)
	s := newFastPathServer(t, release)
	reg := vt.Registry{Host: s.srv.Addr}
	d := reg.PushImage(t, "staging/app", "1.0")
	reg.PushKeyBundle(t, release, "staging/app", d, vt.Statement(t, d, vt.CosignSign, `{}`))
	promote(t, s.srv.Addr+"/staging/app@"+d.String(), s.srv.Addr+"/prod/app:1.0")
	prod, staging := s.srv.Addr+"/prod/app", s.srv.Addr+"/staging/app"

	t.Run("4: reference rules apply to promoted images", func(t *testing.T) {
		for i, tc := range []struct {
			image, want string
		}{
			{prod + ":latest@" + d.String(), `uses the mutable tag \"latest\"`},
			{prod + ":1.0", "is not pinned by digest"},
			{staging + ":latest@" + d.String(), `uses the mutable tag \"latest\"`},
			{staging + ":1.0", "is not pinned by digest"},
		} {
			ns := fmt.Sprintf("fresh-%d", i) // nothing cached
			if ok, msg := s.admit(ns, tc.image); ok || !strings.Contains(msg, strings.ReplaceAll(tc.want, `\"`, `"`)) {
				t.Errorf("%s: allowed %v, %q: want a denial saying %s", tc.image, ok, msg, tc.want)
			}
		}
		if ok, msg := s.admit("shop", prod+"@"+d.String()); !ok {
			t.Fatalf("the promoted image, pinned by digest, was denied: %s", msg)
		}
		code, out, errOut := run2(t, "audit", "query", "--data", s.data, "--digest", d.String(), "--action", "admit", "--output", "json")
		if code != 0 || !strings.Contains(out, `"vsaDigest": "sha256:`) {
			t.Fatalf("no admission recorded on the VSA: exit %d %s%s", code, out, errOut)
		}
	})
	t.Run("6: the decision cache keys the reference as written", func(t *testing.T) {
		// From staging (a full check, no VSA) and from prod (on the VSA).
		for _, repo := range []string{staging, prod} {
			ns := "cache-" + repo[len(s.srv.Addr)+1:len(s.srv.Addr)+5]
			if ok, msg := s.admit(ns, repo+"@"+d.String()); !ok {
				t.Fatalf("%s@D denied: %s", repo, msg)
			}
			for _, img := range []string{repo + ":latest@" + d.String(), repo + ":1.0"} {
				if ok, msg := s.admit(ns, img); ok {
					t.Errorf("%s admitted after %s@D was (from the cache?): %s", img, repo, msg)
				}
			}
			if ok, msg := s.admit(ns, repo+"@"+d.String()); !ok {
				t.Fatalf("%s@D denied the second time: %s", repo, msg)
			}
		}
	})
	t.Run("5: a replaced key invalidates the VSA and the caches", func(t *testing.T) {
		s.srv.Stop()
		s.start(vt.NewKey(t)) // the same data, on another port
		ok, msg := s.admit("shop", s.srv.Addr+"/prod/app@"+d.String())
		if ok || !strings.Contains(msg, `has no signature verified by authority "release"`) {
			t.Fatalf("after the release key was replaced: allowed %v, %q: want the full check's denial", ok, msg)
		}
	})
}
