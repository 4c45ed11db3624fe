package policy

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHandler(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	prod := filepath.Join(dir, "prod")
	if err := os.MkdirAll(prod, 0o755); err != nil {
		t.Fatal(err)
	}
	writePolicy := func(body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(prod, "p.rego"), []byte("package portcullis.policies.frozen\n\n"+body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writePolicy("deny contains \"frozen v1\" if { true }\n")
	ps, err := NewSet(t.Context(), Config{
		Default: SetConfig{Bundle: prod},
		Sets:    []SetConfig{{Name: "prod", Registry: &RegistryMatch{Prefixes: []string{"prod"}}, Bundle: prod}},
	}, SetOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	failures := 0
	h := Handler(ps, HandlerOptions{
		Caller:       func(r *http.Request) string { return r.Header.Get("X-Test-Caller") },
		ReloadFailed: func() { failures++ },
		Logger:       slog.New(slog.NewTextHandler(&logs, nil)),
	})
	do := func(method, path string) (int, []SetInfo, string) {
		t.Helper()
		req := httptest.NewRequest(method, path, nil)
		req.Header.Set("X-Test-Caller", "ops")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var body struct {
			Sets  []SetInfo `json:"sets"`
			Error string    `json:"error"`
		}
		if rec.Code != http.StatusNotFound && rec.Code != http.StatusMethodNotAllowed {
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("%s %s: Content-Type %q", method, path, ct)
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("%s %s: %v\n%s", method, path, err, rec.Body)
			}
		}
		return rec.Code, body.Sets, body.Error
	}

	code, sets, _ := do(http.MethodGet, HandlerPath)
	if code != http.StatusOK || len(sets) != 2 || sets[0].Name != DefaultSetName || sets[1].Name != "prod" ||
		!strings.HasPrefix(sets[1].Revision, "sha256:") || sets[1].Source != prod {
		t.Fatalf("GET: %d %+v; want the default set, then prod from %s", code, sets, prod)
	}
	rev1 := sets[1].Revision

	// A bundle that does not compile: refused, counted, the old one serves.
	writePolicy("deny contains x if {\n\ty == 1\n}\n")
	code, sets, msg := do(http.MethodPost, HandlerPath+"/reload")
	if code != http.StatusUnprocessableEntity || msg == "" || failures != 1 || len(sets) != 2 || sets[1].Revision != rev1 {
		t.Fatalf("reload of a broken bundle: %d %q, %d failures, sets %+v; want 422, one failure, %s still", code, msg, failures, sets, rev1)
	}
	if !strings.Contains(logs.String(), "policy reload failed") || !strings.Contains(logs.String(), "by=ops") {
		t.Errorf("the refused reload's log does not say who:\n%s", logs.String())
	}

	writePolicy("deny contains \"frozen v2\" if { true }\n")
	code, sets, _ = do(http.MethodPost, HandlerPath+"/reload")
	if code != http.StatusOK || failures != 1 || len(sets) != 2 || sets[1].Revision == rev1 {
		t.Fatalf("reload of a fixed bundle: %d, sets %+v; want 200 and a new revision", code, sets)
	}
	if !strings.Contains(logs.String(), `msg="policies reloaded" by=ops`) {
		t.Errorf("the reload's log does not say who:\n%s", logs.String())
	}
	if code, _, _ := do(http.MethodGet, HandlerPath+"/reload"); code != http.StatusMethodNotAllowed {
		t.Errorf("GET reload: %d, want 405", code)
	}
}
