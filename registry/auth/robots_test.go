package auth

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/registry"
)

func TestRobots(t *testing.T) {
	e := newEnv(t, envOptions{policy: grantsForTests}, "alice")
	ctx := context.Background()
	tok, rb, err := e.robots.Create(ctx, "ci", []Scope{{Namespace: "ci", Roles: []registry.Action{registry.ActionPush}}}, time.Hour, "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.robots.Create(ctx, "ci", []Scope{{Namespace: "ci", Roles: []registry.Action{registry.ActionPull}}}, 0, ""); err == nil {
		t.Fatal("a second active robot named ci was created")
	}
	// Only a hash is stored.
	for _, f := range []string{DBFile, DBFile + "-wal"} {
		raw, _ := os.ReadFile(filepath.Join(e.dir, f))
		if secret := tok[len(tok)-20:]; bytes.Contains(raw, []byte(secret)) {
			t.Fatalf("the robot token is stored in clear in %s", f)
		}
	}
	for _, user := range []string{"robot$ci", "ci", ""} {
		if r := e.do(http.MethodPost, "/v2/ci/app/blobs/uploads/", basic(user, tok), nil); r.status != http.StatusAccepted {
			t.Fatalf("robot (user %q) starts an upload in its scope: %d %s", user, r.status, r.body)
		}
	}
	if r := e.do(http.MethodPost, "/v2/ci/app/blobs/uploads/", basic("alice", tok), nil); r.status != http.StatusUnauthorized {
		t.Fatalf("robot token under another user name: %d", r.status)
	}
	if r := e.do(http.MethodPost, "/v2/staging/app/blobs/uploads/", basic("robot$ci", tok), nil); r.status != http.StatusForbidden {
		t.Fatalf("robot outside its scope: %d %s", r.status, r.body)
	}
	bearer, tr := e.token(basic("robot$ci", tok), "repository:ci/app:pull,push")
	if tr.status != http.StatusOK {
		t.Fatalf("robot token: %d %s", tr.status, tr.body)
	}
	if r := e.do(http.MethodPost, "/v2/ci/app/blobs/uploads/", "Bearer "+bearer, nil); r.status != http.StatusAccepted {
		t.Fatalf("robot bearer: %d %s", r.status, r.body)
	}
	wrong := tok[:len(tok)-2] + "xx"
	if r := e.do(http.MethodPost, "/v2/ci/app/blobs/uploads/", basic("robot$ci", wrong), nil); r.status != http.StatusUnauthorized {
		t.Fatalf("wrong robot secret: %d", r.status)
	}

	// Revoked: the robot token and the registry tokens issued to it stop
	// working at once.
	if err := e.robots.Revoke(ctx, "ci"); err != nil {
		t.Fatal(err)
	}
	if r := e.do(http.MethodPost, "/v2/ci/app/blobs/uploads/", basic("robot$ci", tok), nil); r.status != http.StatusUnauthorized {
		t.Fatalf("revoked robot, basic: %d", r.status)
	}
	if r := e.do(http.MethodPost, "/v2/ci/app/blobs/uploads/", "Bearer "+bearer, nil); r.status != http.StatusUnauthorized {
		t.Fatalf("revoked robot, bearer: %d", r.status)
	}
	if _, r := e.token(basic("robot$ci", tok), "repository:ci/app:pull"); r.status != http.StatusUnauthorized {
		t.Fatalf("revoked robot at the token endpoint: %d", r.status)
	}
	l, err := e.robots.List(ctx)
	if err != nil || len(l) != 1 || l[0].ID != rb.ID || l[0].RevokedAt.IsZero() {
		t.Fatalf("List after revoke: %+v, %v", l, err)
	}

	// Expired.
	old, nightly, err := e.robots.Create(ctx, "nightly", []Scope{{Namespace: "ci", Roles: []registry.Action{registry.ActionPull}}}, time.Nanosecond, "")
	if err != nil {
		t.Fatal(err)
	}
	// Its expiry has passed on the wall clock, which the store reads
	// (Round(0) drops the monotonic reading): a wait of a nanosecond or so.
	for expires := nightly.ExpiresAt.Round(0); !time.Now().After(expires); {
		runtime.Gosched()
	}
	if r := e.do(http.MethodGet, "/v2/ci/app/tags/list", basic("robot$nightly", old), nil); r.status != http.StatusUnauthorized {
		t.Fatalf("expired robot: %d", r.status)
	}
}
