package main

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/yamlconf"
	"github.com/portcullis-dev/portcullis/webhook"
)

// loadAndDefault is what serve does with a file: load it, fill defaults.
func loadAndDefault(t *testing.T, doc string) (string, *Config, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "portcullis.yaml")
	mustWrite(t, path, doc)
	c, err := loadConfig(path)
	if err == nil {
		err = c.defaults()
	}
	return path, c, err
}

// TestConfigErrorsSayWhere (issue 22, finding 13): a configuration error
// names the file, the line and column, and the field's path.
func TestConfigErrorsSayWhere(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, doc, want string }{
		{"unknown field", "addr: 127.0.0.1:5000\nlog:\n  lvl: debug\n", `:3:3: log.lvl: unknown field (known: level, format)`},
		{"unknown field in a list", "trust:\n  authorities:\n  - name: a\n    key: [k.pub]\n", `:4:5: trust.authorities[0].key: unknown field (known: name, keys, keyless)`},
		{"wrong type", "webhook:\n  cacheSize: many\n", `:2:14: webhook.cacheSize: want an integer, got "many"`},
		{"wrong type: a mapping for a string", "addr: {host: x}\n", `:1:7: addr: want a string, got a mapping`},
		{"bad duration", "gc:\n  interval: soon\n", `:2:13: gc.interval: time: invalid duration "soon"`},
		{"duration without a unit", "shutdownTimeout: 30\n", `:1:18: shutdownTimeout: duration: want a string like "30s"`},
		{"bad enumeration: failureMode", "webhook:\n  failureMode: 3\n", `:2:16: webhook.failureMode: unknown failure mode "3": want deny or allow-unsafe`},
		{"bad enumeration: defaultMode", "webhook:\n  defaultMode: of\n", `:2:16: webhook.defaultMode: unknown mode "of": want enforce, warn or off`},
		{"bad enumeration: a namespace's mode", "webhook:\n  namespaces:\n    shop: disabled\n", `:3:11: webhook.namespaces.shop: unknown mode "disabled"`},
		{"bad enumeration: log.format", "log:\n  format: xml\n", `:2:11: log.format: "xml": want text or json`},
		{"bad enumeration: log.level", "log: {level: verbose}\n", `:1:14: log.level: "verbose": want debug, info, warn or error`},
		{"bad enumeration: storage.driver", "storage:\n  driver: gcs\n", `:2:11: storage.driver: "gcs": want filesystem, s3 or inmemory`},
		{"bad enumeration: metadata.driver", "metadata: {driver: mysql}\n", `:1:20: metadata.driver: "mysql": want sqlite or postgres`},
		{"a boolean that is not true or false", "tls: {allowPlainHTTP: yes}\n", `:1:23: tls.allowPlainHTTP: want true or false, got "yes"`},
		{"given twice", "addr: a\naddr: b\n", `:2:1: addr: given twice (first at line 1)`},
		{"negative duration", "gate:\n  evidenceTimeout: -1s\n", `:2:20: gate.evidenceTimeout: -1s: a duration must not be negative`},
		{"gate setting placed by its package's Validate", "gate:\n  staging: [prod/ci]\n  protected:\n  - {prefix: prod}\n", `:4:14: gate.protected[0].prefix: "prod" overlaps the staging prefix "prod/ci"`},
		{"negative gate cache size", "gate:\n  cacheSize: -1\n", `:2:14: gate.cacheSize: -1: must not be negative`},
		{"negative duration in a list", "gc:\n  retention:\n  - {namespace: a, keepAdmittedWithin: -1h}\n", `:3:40: gc.retention[0].keepAdmittedWithin: -1h0m0s: a duration must not be negative`},
		{"bad quota size", "quotas:\n- {namespace: staging, size: lots}\n", `:2:30: quotas[0].size: `},
		{"quota without a namespace", "quotas:\n- {size: 1GiB}\n", `:2:3: quotas[0]: a quota needs a namespace`},
		{"half a certificate", "tls:\n  certFile: tls.crt\n", `:2:3: tls: certFile and keyFile go together`},
		{"half a webhook certificate", "webhook:\n  addr: ':8443'\n  keyFile: tls.key\n", `:2:3: webhook: certFile and keyFile go together`},
		{"realm not a URL", "auth: {realm: token}\n", `:1:15: auth.realm: "token": want the token endpoint's absolute URL`},
		{"bad enumeration: a role", "auth:\n  grants:\n  - {namespace: prod, roles: [admin], users: [a]}\n", `:3:5: auth.grants[0]: namespace "prod": unknown role "admin" (want pull, push, promote, delete, audit-read or policy-admin)`},
		{"bad retention rule", "gc:\n  retention:\n  - {namespace: a, keepPattern: 'v[0-9'}\n", `:3:5: gc.retention[0]: `},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path, _, err := loadAndDefault(t, tc.doc)
			if err == nil || !strings.HasPrefix(err.Error(), path+tc.want) {
				t.Fatalf("error %v\nwant  %s%s", err, path, tc.want)
			}
		})
	}
}

// TestServeConfigErrorOneLine (finding 13): serve with a mistyped field
// exits 2 with one line naming the file, line and field.
func TestServeConfigErrorOneLine(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "portcullis.yaml")
	mustWrite(t, path, "log:\n  lvl: debug\n")
	code, _, errOut := run2(t, "serve", "--config", path, "--data", filepath.Join(dir, "data"), "--addr", "127.0.0.1:0")
	if want := "portcullis serve: " + path + ":2:3: log.lvl: unknown field (known: level, format)"; code != 2 || strings.TrimSpace(errOut) != want {
		t.Fatalf("exit %d, stderr %q, want 2 and %q", code, errOut, want)
	}
}

// TestConfigUnquotedEnumerations (finding 10): the webhook's modes are
// written unquoted, as docs/webhook.md shows them: YAML 1.1 would read
// off as a boolean, portcullis.yaml is YAML 1.2.
func TestConfigUnquotedEnumerations(t *testing.T) {
	t.Parallel()
	_, c, err := loadAndDefault(t, "webhook:\n  defaultMode: off\n  failureMode: deny\n  namespaces: {x: off, y: warn, z: enforce}\n"+
		"log: {level: error, format: json}\nauth:\n  grants: [{namespace: yes, roles: [pull], users: [no, on]}]\n")
	if err != nil {
		t.Fatal(err)
	}
	if c.Webhook.DefaultMode != webhook.ModeOff || !reflect.DeepEqual(c.Webhook.Namespaces, map[string]webhook.Mode{"x": "off", "y": "warn", "z": "enforce"}) {
		t.Fatalf("webhook modes %q %q", c.Webhook.DefaultMode, c.Webhook.Namespaces)
	}
	if g := c.Auth.Grants[0]; g.Namespace != "yes" || !slices.Equal(g.Users, []string{"no", "on"}) {
		t.Fatalf("grant %+v: unquoted yes, no and on are strings", g)
	}
	if hc := c.Webhook.handlerConfig(); hc.DefaultMode != webhook.ModeOff || hc.Namespaces["x"] != webhook.ModeOff {
		t.Fatalf("handler configuration %+v", hc)
	}
}

// pathLeafType is the type of the field at a yamlconf.PathFields pattern.
func pathLeafType(t *testing.T, typ reflect.Type, pattern string) reflect.Type {
	t.Helper()
	for _, part := range strings.Split(pattern, ".") {
		name, lists, _ := strings.Cut(part, "[")
		for typ.Kind() == reflect.Pointer {
			typ = typ.Elem()
		}
		if name == "*" {
			typ = typ.Elem()
		} else {
			found := false
			for _, f := range reflect.VisibleFields(typ) {
				if n, _, _ := strings.Cut(f.Tag.Get("json"), ","); n == name && !f.Anonymous {
					typ, found = f.Type, true
					break
				}
			}
			if !found {
				t.Fatalf("%s: no field %q", pattern, name)
			}
		}
		for range strings.Count("["+lists, "[]") {
			for typ.Kind() == reflect.Pointer {
				typ = typ.Elem()
			}
			typ = typ.Elem()
		}
	}
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	return typ
}

// pathDocPath turns "trust.authorities[].keys" into the path that
// document and lookup (configfields_test.go) take.
func pathDocPath(pattern string) []string {
	var out []string
	for _, part := range strings.Split(pattern, ".") {
		name, lists, _ := strings.Cut(part, "[")
		if name == "*" {
			name = "k"
		}
		out = append(out, name)
		for range strings.Count("["+lists, "[]") {
			out = append(out, "[0]")
		}
	}
	return out
}

// TestConfigPathsRelative (finding 9): every path of portcullis.yaml,
// set relatively, is relative to the file's directory, not to the
// working directory; absolute paths and oci:// references are kept.
func TestConfigPathsRelative(t *testing.T) {
	t.Parallel()
	fields := yamlconf.PathFields(reflect.TypeFor[Config]())
	// The ones the docs name; the tag must not go missing from any.
	for _, want := range []string{
		"data", "storage.filesystem.rootDirectory", "metadata.sqlite.path", "scanner.db",
		"trust.authorities[].keys", "trust.authorities[].keyless.trustedRoot",
		"trust.authorities[].keyless.tuf.root", "trust.authorities[].keyless.tuf.cacheDir",
		"gate.vsaKey", "webhook.certFile", "webhook.keyFile", "webhook.auth.clientCAFile", "webhook.auth.tokenFile",
		"webhook.kubernetes.kubeconfig", "webhook.registries[].dockerConfig",
		"policies.default.bundle", "policies.sets[].bundle",
		"auth.htpasswd", "auth.oidc.jwksFile", "tls.certFile", "tls.keyFile",
	} {
		if !slices.Contains(fields, want) {
			t.Errorf("%s is not a path field of Config (tag it yamlconf:\"path\")", want)
		}
	}
	dir := t.TempDir()
	for _, field := range fields {
		t.Run(field, func(t *testing.T) {
			t.Parallel()
			typ := pathLeafType(t, reflect.TypeFor[Config](), field)
			var v, want any = "rel/x", filepath.Join(dir, "rel", "x")
			if typ.Kind() == reflect.Slice {
				v, want = []string{"rel/x", "/abs/y"}, []string{filepath.Join(dir, "rel", "x"), "/abs/y"}
			}
			doc, err := json.Marshal(document(pathDocPath(field), v))
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, strings.NewReplacer("[]", "", "*", "k").Replace(field)+".yaml")
			mustWrite(t, path, string(doc))
			// Loaded from elsewhere: the working directory must not matter.
			cfg, err := loadConfig(path)
			if err != nil {
				t.Fatalf("%s: %v", doc, err)
			}
			got, ok := lookup(reflect.ValueOf(cfg), pathDocPath(field))
			if !ok {
				t.Fatalf("%s did not reach the field", doc)
			}
			gotJSON, _ := json.Marshal(got.Interface())
			wantJSON, _ := json.Marshal(want)
			if string(gotJSON) != string(wantJSON) {
				t.Fatalf("%s from %s in %s: got %s, want %s", field, doc, dir, gotJSON, wantJSON)
			}
		})
	}
	t.Run("absolute and oci:// are kept", func(t *testing.T) {
		t.Parallel()
		_, c, err := loadAndDefault(t, "gate: {vsaKey: /srv/vsa.key}\npolicies:\n  default: {bundle: oci://127.0.0.1:5000/policies/p:1}\n")
		if err != nil {
			t.Fatal(err)
		}
		if c.Gate.VSAKey != "/srv/vsa.key" || c.Policies.Default.Bundle != "oci://127.0.0.1:5000/policies/p:1" {
			t.Fatalf("vsaKey %q, bundle %q", c.Gate.VSAKey, c.Policies.Default.Bundle)
		}
	})
	t.Run("data, relative, and what defaults from it", func(t *testing.T) {
		t.Parallel()
		path, c, err := loadAndDefault(t, "data: d\n")
		if err != nil {
			t.Fatal(err)
		}
		d := filepath.Join(filepath.Dir(path), "d")
		if c.Data != d || c.Storage.Filesystem.RootDirectory != filepath.Join(d, "blobs") || c.Gate.VSAKey != filepath.Join(d, "vsa.key") ||
			c.Metadata.SQLite.Path != filepath.Join(d, "metadata.db") {
			t.Fatalf("data %q: %+v", c.Data, c)
		}
	})
}

// configNotPaths are the string settings whose names look like paths but
// are not files of this machine, each with the reason.
var configNotPaths = map[string]string{
	"Config.Storage.S3.AccessKey":                    "a credential",
	"Config.Storage.S3.SecretKey":                    "a credential",
	"Config.Storage.S3.RootDirectory":                "a key prefix inside the bucket",
	"Config.Storage.S3.Endpoint":                     "a URL",
	"Config.Trust.Authorities[0].Keyless.TUF.Mirror": "a URL (file:///dir for a local mirror)",
	"Config.Trust.Authorities[0].Keyless.TUF.Target": "a file name inside the TUF repository",
	"Config.Auth.Realm":                              "a URL",
	"Config.Tracing.Endpoint":                        "a URL",
}

// TestConfigPathFieldsTagged (finding 9): every string setting named like
// a file or directory is tagged yamlconf:"path" (so TestConfigPathsRelative
// covers it), or listed in configNotPaths with the reason.
func TestConfigPathFieldsTagged(t *testing.T) {
	t.Parallel()
	looksLikePath := regexp.MustCompile(`(?i)(file|dir|directory|path|keys?|root|db|bundle|htpasswd|kubeconfig|config|data|mirror|endpoint|realm|target)$`)
	tagged := map[string]bool{}
	for _, f := range yamlconf.PathFields(reflect.TypeFor[Config]()) {
		tagged[strings.NewReplacer("[]", "[0]", "*", "k").Replace(f)] = true
	}
	checked := 0
	for _, l := range configLeaves(t, reflect.TypeFor[Config](), "Config", nil) {
		kind := l.typ.Kind()
		if kind == reflect.Slice {
			kind = l.typ.Elem().Kind()
		}
		goName := l.goPath[strings.LastIndex(l.goPath, ".")+1:]
		if kind != reflect.String || !looksLikePath.MatchString(strings.TrimSuffix(goName, "[0]")) {
			continue
		}
		checked++
		yamlPath := strings.ReplaceAll(strings.Join(l.path, "."), ".[0]", "[0]")
		yamlPath = strings.TrimSuffix(yamlPath, "[0]")
		_, exempt := configNotPaths[strings.TrimSuffix(l.goPath, "[0]")]
		if tagged[yamlPath] == exempt {
			if exempt {
				t.Errorf("%s (%s) is both a path and in configNotPaths", l.goPath, yamlPath)
			} else {
				t.Errorf("%s (%s) looks like a path: tag it yamlconf:\"path\" or list it in configNotPaths with the reason", l.goPath, yamlPath)
			}
		}
	}
	if checked < 20 {
		t.Fatalf("only %d path-like settings found: the walk is broken", checked)
	}
}
