package auth

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func TestCatalogAndMountHideWhatCallerCannotRead(t *testing.T) {
	e := newEnv(t, envOptions{policy: grantsForTests}, "alice", "bob")
	alice, bob := basic("alice", testPassword), basic("bob", testPassword)
	_, blob := e.pushImage("staging/app", "1", alice)
	e.pushImage("other/app", "1", bob)
	catalog := func(auth string) string {
		r := e.do(http.MethodGet, "/v2/_catalog", auth, nil)
		if r.status != http.StatusOK {
			t.Fatalf("catalog: %d %s", r.status, r.body)
		}
		var c struct{ Repositories []string }
		_ = json.Unmarshal(r.body, &c)
		return strings.Join(c.Repositories, ",")
	}
	if got := catalog(alice); got != "staging/app" {
		t.Fatalf("alice's catalog: %q", got)
	}
	if got := catalog(bob); got != "other/app" {
		t.Fatalf("bob's catalog: %q", got)
	}
	// With a bearer token for the catalog only, the listing is still what
	// alice may pull.
	tok, _ := e.token(alice, "registry:catalog:*")
	if got := catalog("Bearer " + tok); got != "staging/app" {
		t.Fatalf("alice's catalog with a token: %q", got)
	}
	if r := e.do(http.MethodGet, "/v2/_catalog", "", nil); r.status != http.StatusUnauthorized {
		t.Fatalf("anonymous catalog: %d", r.status)
	}
	// Pagination counts only what is shown.
	e.pushImage("staging/app2", "1", alice)
	if r := e.do(http.MethodGet, "/v2/_catalog?n=1", alice, nil); !strings.Contains(string(r.body), `"staging/app"`) || !strings.Contains(r.header.Get("Link"), "last=staging%2Fapp") {
		t.Fatalf("first page: %s %q", r.body, r.header.Get("Link"))
	}

	// bob may push to other/ but not read staging/: mounting from staging
	// answers as if the blob were not there (a new upload, 202).
	r := e.do(http.MethodPost, "/v2/other/app/blobs/uploads/?mount="+blob+"&from=staging/app", bob, nil)
	if r.status != http.StatusAccepted {
		t.Fatalf("bob mounts from staging: %d %s", r.status, r.body)
	}
	// ...exactly as for a repository that does not exist.
	r2 := e.do(http.MethodPost, "/v2/other/app/blobs/uploads/?mount="+blob+"&from=nothing/here", bob, nil)
	if r2.status != r.status {
		t.Fatalf("mount from a missing repository: %d, from an unreadable one: %d", r2.status, r.status)
	}
	if r := e.do(http.MethodHead, "/v2/other/app/blobs/"+blob, bob, nil); r.status != http.StatusNotFound {
		t.Fatalf("the blob was linked into other/app: %d", r.status)
	}
	// alice may read staging: her mount works.
	e2 := e.do(http.MethodPost, "/v2/staging/copy/blobs/uploads/?mount="+blob+"&from=staging/app", alice, nil)
	if e2.status != http.StatusCreated {
		t.Fatalf("alice mounts: %d %s", e2.status, e2.body)
	}
}

func TestOpenModePassesEverything(t *testing.T) {
	e := newEnv(t, envOptions{policy: Policy{}, open: true})
	e.pushImage("anything/app", "1", "")
	if r := e.do(http.MethodGet, "/v2/_catalog", "", nil); r.status != http.StatusOK || !strings.Contains(string(r.body), "anything/app") {
		t.Fatalf("open catalog: %d %s", r.status, r.body)
	}
}
