package webhook_test

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/portcullis-dev/portcullis/registry/registrytest"
	vt "github.com/portcullis-dev/portcullis/verifier/verifiertest"
	"github.com/portcullis-dev/portcullis/webhook"
)

// TestImageResolver: a tag of this registry resolves in-process, one of a
// listed registry over the network (with its host in the location), a
// digest reference as written, and any other registry or a tag that is
// not there is an error (fail closed).
func TestImageResolver(t *testing.T) {
	t.Parallel()
	local, localHost := registrytest.New(t)
	_, otherHost := registrytest.New(t)
	ld := vt.Registry{Host: localHost}.PushImage(t, "prod/app", "1.0")
	od := vt.Registry{Host: otherHost}.PushImage(t, "team/tool", "2.0")
	remotes, err := webhook.OpenRegistries([]webhook.RemoteRegistry{{Host: otherHost, Insecure: true}})
	if err != nil {
		t.Fatal(err)
	}
	r := &webhook.ImageResolver{Local: local.Store().Source(), LocalHosts: map[string]bool{"registry.local": true}, Remotes: remotes}
	ctx := t.Context()

	loc, err := r.Resolve(ctx, "registry.local/prod/app:1.0")
	if err != nil || loc.Registry != "" || loc.Repository != "prod/app" || loc.Digest != ld {
		t.Errorf("local tag: %+v, %v; want prod/app@%s in this registry", loc, err, ld)
	}
	loc, err = r.Resolve(ctx, otherHost+"/team/tool:2.0")
	if err != nil || loc.Registry != otherHost || loc.Repository != "team/tool" || loc.Digest != od {
		t.Errorf("remote tag: %+v, %v; want %s/team/tool@%s", loc, err, otherHost, od)
	}
	loc, err = r.Resolve(ctx, "registry.local/prod/app@"+od.String())
	if err != nil || loc.Digest != od {
		t.Errorf("digest reference: %+v, %v; want the digest as written", loc, err)
	}
	for _, image := range []string{
		"docker.io/library/nginx:1", // a registry nobody listed
		"registry.local/prod/app:9.9",
		"registry.local/prod/app:not a tag",
	} {
		if loc, err := r.Resolve(ctx, image); err == nil {
			t.Errorf("Resolve(%s) = %+v, want an error", image, loc)
		}
	}
	if _, err := remotes.Source("docker.io"); err == nil {
		t.Error("Source of an unlisted registry: want an error")
	}
}

func TestOpenRegistriesRefusesBadHosts(t *testing.T) {
	t.Parallel()
	for _, rr := range []webhook.RemoteRegistry{{Host: ""}, {Host: "not a host"}, {Host: "ok.example", DockerConfig: filepath.Join(t.TempDir(), "missing.json")}} {
		if _, err := webhook.OpenRegistries([]webhook.RemoteRegistry{rr}); err == nil {
			t.Errorf("OpenRegistries(%+v): want an error", rr)
		}
	}
}

// TestDockerConfigKeychain: the credentials of a docker config.json are
// used for its registry only; another registry is anonymous.
func TestDockerConfigKeychain(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "config.json")
	cfg := `{"auths":{"registry.example.com":{"auth":"` + base64.StdEncoding.EncodeToString([]byte("robot:s3cret")) + `"}}}`
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	kc, err := webhook.DockerConfigKeychain(path)
	if err != nil {
		t.Fatal(err)
	}
	reg, _ := name.NewRegistry("registry.example.com")
	a, err := kc.Resolve(reg)
	if err != nil {
		t.Fatal(err)
	}
	ac, err := a.Authorization()
	if err != nil || ac.Username != "robot" || ac.Password != "s3cret" {
		t.Errorf("registry.example.com: %+v, %v; want robot's credentials", ac, err)
	}
	other, _ := name.NewRegistry("other.example.com")
	if a, err := kc.Resolve(other); err != nil || a != authn.Anonymous {
		t.Errorf("other.example.com: %v, %v; want anonymous", a, err)
	}
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := webhook.DockerConfigKeychain(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("unreadable config: %v, want an error naming it", err)
	}
}
