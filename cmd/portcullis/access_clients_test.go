package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// dockerConfigEnv is an environment whose docker config (used by crane,
// cosign, oras with --registry-config, ...) lives in dir.
func dockerConfigEnv(dir string) []string {
	return []string{"DOCKER_CONFIG=" + filepath.Join(dir, "docker"), "HOME=" + dir}
}

// TestAuthRealClients: crane, skopeo, oras and cosign log in and push
// where their user may, and are refused where not; a robot created with
// the CLI pushes until it is revoked.
func TestAuthRealClients(t *testing.T) {
	for _, tool := range []string{"crane", "skopeo", "oras", "cosign3"} {
		requireTool(t, tool)
	}
	config := `auth:
  htpasswd: htpasswd
  grants:
    - {namespace: staging, roles: [push], users: [alice]}
    - {namespace: staging, roles: [pull], users: [bob]}
`
	s, dir, data := startAuthServer(t, config, "alice", "bob")
	home := func(user string) string {
		d := filepath.Join(dir, "home-"+user)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	aliceEnv, bobEnv := dockerConfigEnv(home("alice")), dockerConfigEnv(home("bob"))
	layer := filepath.Join(dir, "layer.tar")
	writeFile(t, layer, tarOf(t, map[string][]byte{"data/random.bin": randomBytes(64 << 10)}))
	refused := func(what string, err error, stderr string) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s: succeeded, want it refused", what)
		}
		if !strings.Contains(err.Error(), "DENIED") && !strings.Contains(err.Error(), "UNAUTHORIZED") && !strings.Contains(err.Error(), "401") && !strings.Contains(err.Error(), "403") && !strings.Contains(strings.ToLower(err.Error()), "denied") && !strings.Contains(strings.ToLower(err.Error()), "unauthorized") {
			t.Fatalf("%s: failed without saying it was refused: %v", what, err)
		}
	}

	// crane auth login writes the docker config; crane uses the token flow.
	runTool(t, dir, aliceEnv, "crane", "auth", "login", s.Addr, "-u", "alice", "-p", accessPassword)
	runTool(t, dir, bobEnv, "crane", "auth", "login", s.Addr, "-u", "bob", "-p", accessPassword)
	out, _ := runTool(t, dir, aliceEnv, "crane", "append", "-f", layer, "-t", s.Addr+"/staging/crane:1")
	img := strings.TrimSpace(out)
	_, stderr, err := tryTool(t, dir, bobEnv, "crane", "append", "-f", layer, "-t", s.Addr+"/staging/crane:2")
	refused("crane push as bob (pull only)", err, stderr)
	_, stderr, err = tryTool(t, dir, aliceEnv, "crane", "append", "-f", layer, "-t", s.Addr+"/team/crane:1")
	refused("crane push as alice outside staging", err, stderr)
	runTool(t, dir, bobEnv, "crane", "manifest", img) // bob may pull
	_, stderr, err = tryTool(t, dir, dockerConfigEnv(home("nobody")), "crane", "manifest", img)
	refused("crane pull without logging in", err, stderr)
	mallory := dockerConfigEnv(home("mallory"))
	runTool(t, dir, mallory, "crane", "auth", "login", s.Addr, "-u", "alice", "-p", "wrong") // only writes the config
	_, stderr, err = tryTool(t, dir, mallory, "crane", "manifest", img)
	refused("crane pull with a wrong password", err, stderr)

	// portcullis promote sends the credentials of the docker config: alice
	// is authenticated, and refused (she may not promote), with the reason:
	// a refusal of access control, not a policy denial, so exit 2.
	t.Setenv("DOCKER_CONFIG", filepath.Join(home("alice"), "docker"))
	var pout, perr bytes.Buffer
	if code := run(context.Background(), []string{"promote", img, s.Addr + "/prod/crane:1"}, &pout, &perr); code != exitFailed || !strings.Contains(perr.String(), "refused (access)") || !strings.Contains(perr.String(), "alice may not promote") {
		t.Fatalf("portcullis promote as alice: exit %d\n%s%s", code, pout.String(), perr.String())
	}

	// skopeo --creds / --dest-creds.
	policy := filepath.Join(dir, "policy.json")
	writeFile(t, policy, []byte(`{"default":[{"type":"insecureAcceptAnything"}]}`))
	layout := newTestImage(t, map[string][]byte{"skopeo/payload.bin": randomBytes(32 << 10)})
	layout.writeLayout(t, filepath.Join(dir, "layout"), "v1")
	skopeoEnv := []string{"HOME=" + home("skopeo"), "REGISTRY_AUTH_FILE=" + filepath.Join(home("skopeo"), "auth.json")}
	copyAs := func(creds, dst string) (string, string, error) {
		return tryTool(t, dir, skopeoEnv, "skopeo", "--policy", policy, "copy", "--dest-tls-verify=false", "--dest-creds", creds, "oci:layout:v1", "docker://"+s.Addr+"/"+dst)
	}
	if _, _, err := copyAs("alice:"+accessPassword, "staging/skopeo:v1"); err != nil {
		t.Fatal(err)
	}
	_, stderr, err = copyAs("bob:"+accessPassword, "staging/skopeo:v2")
	refused("skopeo copy as bob", err, stderr)
	_, stderr, err = copyAs("alice:"+accessPassword, "team/skopeo:v1")
	refused("skopeo copy as alice outside staging", err, stderr)
	out, _ = runTool(t, dir, skopeoEnv, "skopeo", "inspect", "--tls-verify=false", "--creds", "bob:"+accessPassword, "--raw", "docker://"+s.Addr+"/staging/skopeo:v1")
	equalStrings(t, "digest skopeo read as bob", sha256Digest([]byte(out)), layout.Digest)
	_, stderr, err = tryTool(t, dir, skopeoEnv, "skopeo", "inspect", "--tls-verify=false", "--creds", "bob:wrong", "--raw", "docker://"+s.Addr+"/staging/skopeo:v1")
	refused("skopeo inspect with a wrong password", err, stderr)

	// oras login (its own registry config file).
	writeFile(t, filepath.Join(dir, "artifact.txt"), []byte("artifact "+uniqueName("")))
	orasAs := func(user string, args ...string) (string, string, error) {
		cfgFile := filepath.Join(home(user), "oras.json")
		return tryTool(t, dir, []string{"HOME=" + home(user)}, "oras", append(args, "--plain-http", "--registry-config", cfgFile)...)
	}
	for _, u := range []string{"alice", "bob"} {
		if _, _, err := orasAs(u, "login", s.Addr, "-u", u, "-p", accessPassword); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := orasAs("alice", "push", s.Addr+"/staging/oras:v1", "artifact.txt"); err != nil {
		t.Fatal(err)
	}
	_, stderr, err = orasAs("bob", "push", s.Addr+"/staging/oras:v2", "artifact.txt")
	refused("oras push as bob", err, stderr)
	_, stderr, err = orasAs("alice", "push", s.Addr+"/team/oras:v1", "artifact.txt")
	refused("oras push as alice outside staging", err, stderr)
	if _, _, err := orasAs("bob", "pull", "-o", filepath.Join(dir, "pulled"), s.Addr+"/staging/oras:v1"); err != nil {
		t.Fatal(err)
	}

	// cosign with the docker config crane wrote: alice may sign (a push
	// into staging), bob may not.
	keys := home("keys")
	runTool(t, keys, cosignEnv(keys), "cosign3", "generate-key-pair")
	cosignAs := func(env []string) (string, string, error) {
		return tryTool(t, keys, append(cosignEnv(keys), env[0]), "cosign3", "sign", "--key", filepath.Join(keys, "cosign.key"), "--yes", "--tlog-upload=false", "--use-signing-config=false", img)
	}
	if _, _, err := cosignAs(aliceEnv); err != nil {
		t.Fatal(err)
	}
	_, stderr, err = cosignAs(bobEnv)
	refused("cosign sign as bob", err, stderr)

	// A robot created with the CLI (the server reads it within seconds)
	// pushes in its scope only, until it is revoked.
	var robotOut, robotErr bytes.Buffer
	if code := run(context.Background(), []string{"robot", "create", "--data", data, "--name", "ci", "--scope", "staging=push", "--expires", "1h"}, &robotOut, &robotErr); code != 0 {
		t.Fatalf("robot create: %d %s", code, robotErr.String())
	}
	token := strings.TrimSpace(robotOut.String())
	ciEnv := dockerConfigEnv(home("ci"))
	runTool(t, dir, ciEnv, "crane", "auth", "login", s.Addr, "-u", "robot$ci", "-p", token)
	runTool(t, dir, ciEnv, "crane", "append", "-f", layer, "-t", s.Addr+"/staging/robot:1")
	_, stderr, err = tryTool(t, dir, ciEnv, "crane", "append", "-f", layer, "-t", s.Addr+"/team/robot:1")
	refused("robot push outside its scope", err, stderr)
	robotOut.Reset()
	if code := run(context.Background(), []string{"robot", "list", "--data", data}, &robotOut, &robotErr); code != 0 || !strings.Contains(robotOut.String(), "robot$ci") || !strings.Contains(robotOut.String(), "staging=push") || strings.Contains(robotOut.String(), token) {
		t.Fatalf("robot list: %d\n%s", code, robotOut.String())
	}
	if code := run(context.Background(), []string{"robot", "revoke", "--data", data, "ci"}, &robotOut, &robotErr); code != 0 {
		t.Fatalf("robot revoke: %d %s", code, robotErr.String())
	}
	time.Sleep(2500 * time.Millisecond) // the server's view of robots is at most 2s old
	_, stderr, err = tryTool(t, dir, ciEnv, "crane", "append", "-f", layer, "-t", s.Addr+"/staging/robot:2")
	refused("revoked robot", err, stderr)
	robotErr.Reset()
	if code := run(context.Background(), []string{"robot", "revoke", "--data", data, "ci"}, &robotOut, &robotErr); code == 0 || strings.Count(strings.TrimSpace(robotErr.String()), "\n") != 0 {
		t.Fatalf("revoking twice: %d %q, want one error line", code, robotErr.String())
	}
}

// TestQuotaMidPush: crane pushes an image whose layer does not fit in
// the namespace's quota: the push fails with DENIED and the quota in the
// message, and nothing of it is visible; `portcullis quota` shows usage.
func TestQuotaMidPush(t *testing.T) {
	requireTool(t, "crane")
	config := `auth:
  htpasswd: htpasswd
  grants:
    - {namespace: small, roles: [push], users: [alice]}
    - {namespace: big, roles: [push], users: [alice]}
quotas:
  - {namespace: small, size: 200KiB}
`
	s, dir, data := startAuthServer(t, config, "alice")
	env := dockerConfigEnv(dir)
	runTool(t, dir, env, "crane", "auth", "login", s.Addr, "-u", "alice", "-p", accessPassword)
	writeFile(t, filepath.Join(dir, "small.tar"), tarOf(t, map[string][]byte{"small.bin": randomBytes(50 << 10)}))
	writeFile(t, filepath.Join(dir, "large.tar"), tarOf(t, map[string][]byte{"large.bin": randomBytes(400 << 10)}))
	runTool(t, dir, env, "crane", "append", "-f", "small.tar", "-t", s.Addr+"/small/app:1")
	_, stderr, err := tryTool(t, dir, env, "crane", "append", "-f", "large.tar", "-t", s.Addr+"/small/app:2")
	if err == nil || !strings.Contains(err.Error(), "DENIED") || !strings.Contains(err.Error(), "quota of 200.0 KiB") {
		t.Fatalf("push over the quota: %v %s", err, stderr)
	}
	out, _ := runTool(t, dir, env, "crane", "ls", s.Addr+"/small/app")
	equalStrings(t, "tags after the refused push", strings.TrimSpace(out), "1")
	// A refused first push into a new repository leaves nothing in the
	// catalog (its small config blob may be accepted before the layer is
	// refused). Upload sessions the client abandons when it gives up are
	// gc's (gc.uploadMaxAge).
	if _, stderr, err := tryTool(t, dir, env, "crane", "append", "-f", "large.tar", "-t", s.Addr+"/small/new:1"); err == nil || !strings.Contains(err.Error(), "DENIED") {
		t.Fatalf("first push over the quota: %v %s", err, stderr)
	}
	out, _ = runTool(t, dir, env, "crane", "catalog", s.Addr)
	equalStrings(t, "catalog after the refused push", strings.Join(strings.Fields(out), " "), "small/app")
	runTool(t, dir, env, "crane", "append", "-f", "large.tar", "-t", s.Addr+"/big/app:1") // no quota there

	var stdout, errb bytes.Buffer
	if code := run(context.Background(), []string{"quota", "--data", data, "--config", filepath.Join(dir, "portcullis.yaml"), "--output", "json"}, &stdout, &errb); code != 0 {
		t.Fatalf("portcullis quota: %d %s", code, errb.String())
	}
	var usage []struct {
		Namespace   string
		Used, Limit int64
	}
	unmarshal(t, "quota output", stdout.Bytes(), &usage)
	byNS := map[string][2]int64{}
	for _, u := range usage {
		byNS[u.Namespace] = [2]int64{u.Used, u.Limit}
	}
	if u := byNS["small"]; u[1] != 200<<10 || u[0] <= 0 || u[0] > 100<<10 {
		t.Fatalf("usage of small: %v (want some, under 100 KiB: the large layer is not counted)", u)
	}
	if u := byNS["big"]; u[1] != 0 || u[0] < 400<<10 {
		t.Fatalf("usage of big: %v", u)
	}
	stdout.Reset()
	if code := run(context.Background(), []string{"quota", "--data", data, "--config", filepath.Join(dir, "portcullis.yaml")}, &stdout, &errb); code != 0 || !regexp.MustCompile(`small\s+\S+ KiB\s+200.0 KiB\s+\d+%`).MatchString(stdout.String()) {
		t.Fatalf("portcullis quota: %d\n%s", code, stdout.String())
	}
}
