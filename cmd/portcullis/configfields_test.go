package main

import (
	"encoding"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/webhook"
)

// configExempt are the Config fields (by Go path) that portcullis.yaml
// does not set, each with the reason.
var configExempt = map[string]string{}

// configLeaf is one settable field of Config: its Go path, its YAML
// path (a "[0]" element is a list's first, "k" a map's key) and type.
type configLeaf struct {
	goPath string
	path   []string
	typ    reflect.Type
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// configLeaves walks t (recursively through structs, pointers, slices and
// maps) and returns its leaves; a field without a json tag is an error.
func configLeaves(t *testing.T, typ reflect.Type, goPath string, path []string) []configLeaf {
	t.Helper()
	if typ == reflect.TypeFor[time.Time]() || reflect.PointerTo(typ).Implements(jsonUnmarshaler) || reflect.PointerTo(typ).Implements(textUnmarshaler) {
		return []configLeaf{{goPath, path, typ}}
	}
	switch typ.Kind() {
	case reflect.Pointer:
		return configLeaves(t, typ.Elem(), goPath, path)
	case reflect.Slice:
		return configLeaves(t, typ.Elem(), goPath+"[0]", append(slicesClone(path), "[0]"))
	case reflect.Map:
		if typ.Key().Kind() != reflect.String {
			t.Errorf("%s: map key %s is not a string", goPath, typ.Key())
			return nil
		}
		return configLeaves(t, typ.Elem(), goPath+"[k]", append(slicesClone(path), "k"))
	case reflect.Struct:
		var out []configLeaf
		for i := range typ.NumField() {
			f := typ.Field(i)
			if !f.IsExported() {
				continue
			}
			fp := goPath + "." + f.Name
			tag, ok := f.Tag.Lookup("json")
			name, _, _ := strings.Cut(tag, ",")
			switch {
			case name == "-":
				if configExempt[fp] == "" {
					t.Errorf("%s is json:\"-\": portcullis.yaml cannot set it (list it in configExempt with the reason)", fp)
				}
				continue
			case !ok || name == "":
				t.Errorf("%s has no json tag", fp)
				continue
			}
			out = append(out, configLeaves(t, f.Type, fp, append(slicesClone(path), name))...)
		}
		return out
	}
	return []configLeaf{{goPath, path, typ}}
}

func slicesClone(s []string) []string { return append([]string(nil), s...) }

// sample is a value of typ as JSON; absolute paths are not made relative.
func sample(t *testing.T, typ reflect.Type) any {
	switch {
	case typ == reflect.TypeFor[Duration]():
		return "7s"
	case typ == reflect.TypeFor[time.Time]():
		return "2026-01-02T03:04:05Z"
	case typ == reflect.TypeFor[webhook.Mode]():
		return "warn" // enumerations are checked where they are read
	case typ == reflect.TypeFor[webhook.FailureMode]():
		return "allow-unsafe"
	}
	switch typ.Kind() {
	case reflect.String:
		return "/sample"
	case reflect.Bool:
		return true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return 7
	case reflect.Float32, reflect.Float64:
		return 7.5
	}
	t.Fatalf("no sample value for type %s", typ)
	return nil
}

// document is a YAML (JSON) document setting path to v.
func document(path []string, v any) any {
	if len(path) == 0 {
		return v
	}
	inner := document(path[1:], v)
	if path[0] == "[0]" {
		return []any{inner}
	}
	return map[string]any{path[0]: inner}
}

// lookup follows path in v.
func lookup(v reflect.Value, path []string) (reflect.Value, bool) {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return v, false
		}
		v = v.Elem()
	}
	if len(path) == 0 {
		return v, true
	}
	switch v.Kind() {
	case reflect.Slice:
		if v.Len() != 1 {
			return v, false
		}
		return lookup(v.Index(0), path[1:])
	case reflect.Map:
		e := v.MapIndex(reflect.ValueOf(path[0]).Convert(v.Type().Key()))
		if !e.IsValid() {
			return e, false
		}
		return lookup(e, path[1:])
	case reflect.Struct:
		for i := range v.NumField() {
			name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("json"), ",")
			if name == path[0] {
				return lookup(v.Field(i), path[1:])
			}
		}
	}
	return v, false
}

// TestConfigFieldsSettable (I7): every exported field of Config, however
// deep, can be set from portcullis.yaml and arrives with the value set: a
// field strict parsing would reject, or that has no tag, fails here.
func TestConfigFieldsSettable(t *testing.T) {
	t.Parallel()
	leaves := configLeaves(t, reflect.TypeFor[Config](), "Config", nil)
	if len(leaves) < 50 {
		t.Fatalf("only %d leaves found in Config: the walk is broken", len(leaves))
	}
	dir := t.TempDir()
	for i, l := range leaves {
		t.Run(l.goPath, func(t *testing.T) {
			want := sample(t, l.typ)
			doc, err := json.Marshal(document(l.path, want))
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, strconv.Itoa(i)+".yaml")
			if err := os.WriteFile(path, doc, 0o644); err != nil {
				t.Fatal(err)
			}
			cfg, err := loadConfig(path)
			if err != nil {
				t.Fatalf("portcullis.yaml %s: %v", doc, err)
			}
			got, ok := lookup(reflect.ValueOf(cfg), l.path)
			if !ok {
				t.Fatalf("%s: %s did not reach the field", l.goPath, doc)
			}
			gotJSON, err := json.Marshal(got.Interface())
			if err != nil {
				t.Fatal(err)
			}
			if wantJSON, _ := json.Marshal(want); string(gotJSON) != string(wantJSON) {
				t.Fatalf("%s: set to %s from %s, got %s", l.goPath, wantJSON, doc, gotJSON)
			}
		})
	}
}

// TestWebhookHandlerConfig (I7): every field of webhook.Config that has a
// json name is in the webhook section of portcullis.yaml under that name,
// and its value reaches the handler's configuration.
func TestWebhookHandlerConfig(t *testing.T) {
	t.Parallel()
	doc := `webhook:
  timeout: 3s
  failureMode: allow-unsafe
  defaultMode: warn
  namespaces: {a: off}
  exempt: [b]
  breakGlass: [{namespace: c, until: "2026-01-02T03:04:05Z"}]
  cacheSize: 7
  cacheAllowTTL: 9s
  cacheDenyTTL: 11s
  modeLabelRelaxes: true
`
	path := filepath.Join(t.TempDir(), "portcullis.yaml")
	mustWrite(t, path, doc)
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	hc := cfg.Webhook.handlerConfig()
	wt := reflect.TypeFor[WebhookConfig]()
	hv := reflect.ValueOf(hc)
	for i := range hv.NumField() {
		f := hv.Type().Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || name == "" {
			continue
		}
		found := false
		for j := range wt.NumField() {
			if n, _, _ := strings.Cut(wt.Field(j).Tag.Get("json"), ","); n == name {
				found = true
			}
		}
		if !found {
			t.Errorf("webhook.Config.%s (%s) is not in the webhook section of portcullis.yaml", f.Name, name)
			continue
		}
		if hv.Field(i).IsZero() {
			t.Errorf("webhook.%s: set in portcullis.yaml, zero in webhook.Config", name)
		}
	}
	if hc.FailureMode != webhook.FailOpenUnsafe || hc.Timeout != 3*time.Second || hc.CacheDenyTTL != 11*time.Second {
		t.Fatalf("handler configuration %+v", hc)
	}
}

// TestConfigIneffective (I7): settings that cannot take effect refuse to
// start.
func TestConfigIneffective(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, doc, want string }{
		{"selector without a label source", "webhook: {addr: ':0'}\npolicies:\n  sets:\n  - {name: p, kubernetes: {namespaceSelector: {matchLabels: {env: prod}}}}\n",
			"policies.sets[0] (p) has a kubernetes.namespaceSelector, but no namespace labels are read"},
		{"selector without the webhook", "policies:\n  sets:\n  - {name: p, kubernetes: {namespaceSelector: {matchLabels: {env: prod}}}}\n",
			"no namespace labels are read"},
		{"empty selector", "webhook: {addr: ':0', kubernetes: {inCluster: true}}\npolicies:\n  sets:\n  - {name: p, kubernetes: {namespaceSelector: {matchLabels: {}}}}\n",
			"has a kubernetes.namespaceSelector without matchLabels, which selects no namespace"},
		{"matchers on the default set", "policies:\n  default: {kubernetes: {namespaces: [prod]}}\n", "its registry and kubernetes matchers would be ignored"},
		{"webhook setting without the webhook", "webhook: {failureMode: allow-unsafe}\n", "webhook.failureMode is set but the webhook is off"},
		{"kubernetes without the webhook", "webhook: {kubernetes: {inCluster: true}}\n", "webhook.kubernetes is set but the webhook is off"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "portcullis.yaml")
			mustWrite(t, path, tc.doc)
			cfg, err := loadConfig(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := cfg.defaults(); err != nil {
				t.Fatal(err)
			}
			if err := cfg.checkEffective(); err == nil || !strings.Contains(err.Error(), tc.want) || !regexp.MustCompile(`^`+regexp.QuoteMeta(path)+`:\d+:\d+: `).MatchString(err.Error()) {
				t.Fatalf("checkEffective: %v, want %q at its line of %s (issue 22, finding 13)", err, tc.want, path)
			}
		})
	}
	path := filepath.Join(t.TempDir(), "portcullis.yaml")
	mustWrite(t, path, "webhook: {addr: ':0', kubernetes: {kubeconfig: kube/config}}\npolicies:\n  sets:\n  - {name: p, kubernetes: {namespaceSelector: {matchLabels: {env: prod}}}}\n")
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.checkEffective(); err != nil {
		t.Fatalf("a selector with a label source: %v", err)
	}
	if want := filepath.Join(filepath.Dir(path), "kube", "config"); cfg.Webhook.Kubernetes.Kubeconfig != want {
		t.Fatalf("kubeconfig %q, want %q (relative to portcullis.yaml)", cfg.Webhook.Kubernetes.Kubeconfig, want)
	}
}

// TestServeRefusesIneffectiveSelector (I7): `portcullis serve` with a
// namespaceSelector policy set and no namespace-label source exits
// non-zero with one line that says why.
func TestServeRefusesIneffectiveSelector(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "portcullis.yaml")
	mustWrite(t, path, "policies:\n  sets:\n  - {name: prod, kubernetes: {namespaceSelector: {matchLabels: {env: prod}}}}\n")
	hookAddr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run2(t, "serve", "--config", path, "--data", filepath.Join(dir, "data"), "--addr", "127.0.0.1:0", "--webhook-addr", hookAddr)
	if code == 0 || strings.Count(strings.TrimSpace(errOut), "\n") != 0 || !strings.Contains(errOut, "policies.sets[0] (prod) has a kubernetes.namespaceSelector, but no namespace labels are read") {
		t.Fatalf("exit %d, stdout %q, stderr %q: want a non-zero exit and the one-line reason", code, out, errOut)
	}
}

// TestServeFailureModeAllowUnsafe (I7): webhook.failureMode from
// portcullis.yaml reaches the handler. An image of a registry that never
// answers misses webhook.timeout; with allow-unsafe it is admitted with a
// warning that says it was not checked (with the default it is denied).
func TestServeFailureModeAllowUnsafe(t *testing.T) {
	t.Parallel()
	hang, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var held []net.Conn
	go func() {
		for {
			c, err := hang.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c) // never answered
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		hang.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})
	image := hang.Addr().String() + "/app@sha256:" + strings.Repeat("ab", 32)
	for _, tc := range []struct{ mode, want string }{
		{"allow-unsafe", `was admitted unchecked: the check timed out after 1s (failure mode allow-unsafe)`},
		{"deny", `the check timed out after 1s`},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			t.Parallel()
			dir, data := t.TempDir(), t.TempDir()
			pki := apiServerPKI(t)
			mustWrite(t, filepath.Join(dir, "portcullis.yaml"), "webhook:\n  timeout: 1s\n  failureMode: "+tc.mode+
				"\n  registries: [{host: \""+hang.Addr().String()+"\", insecure: true}]\n"+webhookAuthYAML(pki))
			hookAddr, err := freeAddr()
			if err != nil {
				t.Fatal(err)
			}
			startServer(t, data, "--config", filepath.Join(dir, "portcullis.yaml"), "--webhook-addr", hookAddr)
			code, body := postReview(t, webhookClient(t, data, &pki.Cert), "https://"+hookAddr+"/validate", podReview("shop", "alice", image, nil), "")
			allowed := strings.Contains(body, `"allowed":true`)
			if code != 200 || !strings.Contains(body, tc.want) || allowed != (tc.mode == "allow-unsafe") {
				t.Fatalf("%d %s: want allowed=%v and %q", code, body, tc.mode == "allow-unsafe", tc.want)
			}
		})
	}
}

// TestServeNamespaceInformerMustSync (I7): with webhook.kubernetes set
// and an API server that cannot be reached, serve does not start: it
// exits non-zero, saying the namespace informer did not sync.
func TestServeNamespaceInformerMustSync(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	dead, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(dir, "kubeconfig"), "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: \"https://"+dead+"\", insecure-skip-tls-verify: true}\n"+
		"users:\n- name: u\n  user: {token: t}\ncontexts:\n- name: c\n  context: {cluster: c, user: u}\ncurrent-context: c\n")
	pki := apiServerPKI(t)
	mustWrite(t, filepath.Join(dir, "portcullis.yaml"), "webhook:\n  kubernetes: {kubeconfig: kubeconfig, syncTimeout: 1s}\n"+webhookAuthYAML(pki))
	hookAddr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	code, _, errOut := run2(t, "serve", "--config", filepath.Join(dir, "portcullis.yaml"), "--data", filepath.Join(dir, "data"), "--addr", "127.0.0.1:0", "--webhook-addr", hookAddr)
	if code == 0 || !strings.Contains(errOut, "the namespace informer did not sync within 1s") || !strings.Contains(errOut, dead) {
		t.Fatalf("exit %d, stderr %q: want a non-zero exit naming the API server and the sync timeout", code, errOut)
	}
}
