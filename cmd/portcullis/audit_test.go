package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/audit/httpapi"
)

// auditData writes a data directory with n decisions, checkpointed.
func auditData(t *testing.T, n int) string {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	s, err := audit.LoadOrCreateSigner(dir)
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.OpenSQLite(ctx, filepath.Join(dir, "audit.db"), audit.WithSigner(s), audit.WithCheckpointEvery(5, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		r := audit.Record{Time: base.Add(time.Duration(i) * time.Minute), Action: audit.ActionPromote, Verdict: audit.VerdictAllow,
			Subject: audit.Subject{Repository: "staging/app", Digest: "sha256:" + strings.Repeat(string(rune('a'+i%3)), 64)},
			Target:  audit.Target{Repository: "prod/app"}, Actor: audit.Actor{Identity: "ci"}, PolicyRevision: "sha256:pol",
			Evidence: audit.Evidence{Signers: []audit.EvidenceSigner{{Authority: "release", KeyID: "k1"}}}}
		if i%4 == 3 {
			r.Verdict, r.Reasons = audit.VerdictDeny, []string{"no provenance"}
		}
		if _, err := l.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil { // checkpoints the rest
		t.Fatal(err)
	}
	return dir
}

func runAudit(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(context.Background(), append([]string{"audit"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

func TestAuditVerifyData(t *testing.T) {
	dir := auditData(t, 12)
	code, out, errs := runAudit("verify", "--data", dir)
	if code != 0 || !strings.Contains(out, "12 records") {
		t.Fatalf("verify intact log: exit %d, %q %q", code, out, errs)
	}
	// Tamper: promote a denial into an allow, in the database itself.
	db, err := sql.Open("sqlite", filepath.Join(dir, "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	var leaf []byte
	if err := db.QueryRow(`SELECT leaf FROM records WHERE idx = 7`).Scan(&leaf); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(leaf, []byte(`"verdict":"deny"`)) {
		t.Fatalf("record 7 is not a denial: %s", leaf)
	}
	leaf = bytes.Replace(leaf, []byte(`"verdict":"deny"`), []byte(`"verdict":"allow"`), 1)
	if _, err := db.Exec(`UPDATE records SET leaf = ?, verdict = 'allow' WHERE idx = 7`, leaf); err != nil {
		t.Fatal(err)
	}
	db.Close()
	code, out, errs = runAudit("verify", "--data", dir)
	if code != 1 || !strings.Contains(errs, "record 7") || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
		t.Fatalf("verify tampered log: exit %d, stdout %q, stderr %q; want exit 1 and one line naming record 7", code, out, errs)
	}
}

func TestAuditVerifyWrongKey(t *testing.T) {
	dir := auditData(t, 3)
	other := t.TempDir()
	if _, err := audit.LoadOrCreateSigner(other); err != nil {
		t.Fatal(err)
	}
	code, _, errs := runAudit("verify", "--data", dir, "--pubkey", filepath.Join(other, audit.PublicKeyFile))
	if code != 1 || !strings.Contains(errs, "signature") {
		t.Fatalf("verify with another key: exit %d, %q", code, errs)
	}
}

func TestAuditErrors(t *testing.T) {
	for _, args := range [][]string{
		{"verify"},
		{"verify", "--data", t.TempDir()},
		{"verify", "--server", "http://127.0.0.1:1"},
		{"query", "--data", t.TempDir(), "--server", "http://x"},
		{"query", "--output", "xml", "--data", "x"},
		{"frobnicate"},
	} {
		code, _, errs := runAudit(args...)
		if code != 2 || errs == "" {
			t.Errorf("audit %v: exit %d, stderr %q; want 2 and a message", args, code, errs)
		}
	}
}

func TestAuditQueryAndProve(t *testing.T) {
	dir := auditData(t, 12)
	code, out, errs := runAudit("query", "--data", dir, "--verdict", "deny", "--output", "json")
	if code != 0 {
		t.Fatalf("query: exit %d, %s", code, errs)
	}
	var entries []audit.Entry
	if err := json.Unmarshal([]byte(out), &entries); err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 || entries[0].Index != 11 || entries[0].Record.Reasons[0] != "no provenance" {
		t.Fatalf("query --verdict deny: %d entries %+v", len(entries), entries)
	}
	code, out, _ = runAudit("query", "--data", dir, "--digest", "sha256:"+strings.Repeat("b", 64), "--output", "csv")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); code != 0 || len(lines) != 5 || !strings.HasPrefix(lines[0], "index,time,action") {
		t.Fatalf("query --output csv: exit %d, %q", code, out)
	}
	code, out, _ = runAudit("query", "--data", dir, "--limit", "2")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); code != 0 || len(lines) != 3 || !strings.HasPrefix(lines[1], "11 ") {
		t.Fatalf("query table --limit 2: exit %d, %q", code, out)
	}
	code, out, errs = runAudit("prove", "--data", dir, "--index", "4")
	if code != 0 || !strings.Contains(errs, "record 4 is included in the checkpoint of 12 records") {
		t.Fatalf("prove: exit %d, %q", code, errs)
	}
	var p audit.Proved
	if err := json.Unmarshal([]byte(out), &p); err != nil || p.Proof == nil {
		t.Fatalf("prove output %q: %v", out, err)
	}
	code, out, _ = runAudit("export", "--data", dir)
	if code != 0 || strings.Count(out, "\n") != 12 {
		t.Fatalf("export: exit %d, %d lines", code, strings.Count(out, "\n"))
	}
}

func TestAuditVerifyServer(t *testing.T) {
	dir := auditData(t, 8)
	l, err := audit.OpenSQLite(context.Background(), filepath.Join(dir, "audit.db"), audit.ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	srv := httptest.NewServer(httpapi.Handler(l, nil))
	defer srv.Close()
	code, out, errs := runAudit("verify", "--server", srv.URL, "--pubkey", filepath.Join(dir, audit.PublicKeyFile))
	if code != 0 || !strings.Contains(out, "8 records") {
		t.Fatalf("verify --server: exit %d, %q %q", code, out, errs)
	}
	code, _, errs = runAudit("prove", "--server", srv.URL, "--pubkey", filepath.Join(dir, audit.PublicKeyFile), "--index", "7")
	if code != 0 {
		t.Fatalf("prove --server: exit %d, %q", code, errs)
	}
	// host:port without a scheme, as crane takes it: http on loopback.
	code, out, errs = runAudit("query", "--server", strings.TrimPrefix(srv.URL, "http://"), "--limit", "1")
	if code != 0 || !strings.HasPrefix(strings.Split(out, "\n")[1], "7 ") {
		t.Fatalf("query --server host:port: exit %d, %q %q", code, out, errs)
	}
}

// TestAuditServerURL is from the promises issue: --server takes a URL, or
// host:port (https, http on loopback), and says what it wants otherwise.
func TestAuditServerURL(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ in, want string }{
		{"https://portcullis.example.com", "https://portcullis.example.com"},
		{"http://10.0.0.1:5000/", "http://10.0.0.1:5000"},
		{"portcullis.example.com:5000", "https://portcullis.example.com:5000"},
		{"127.0.0.1:5000", "http://127.0.0.1:5000"},
		{"localhost:5000", "http://localhost:5000"},
		{"[::1]:5000", "http://[::1]:5000"},
		{"ftp://x", ""},
		{"https://", ""},
		{"https://u:p@x", ""},
	} {
		got, err := serverURL(tt.in)
		if got != tt.want || (err == nil) != (tt.want != "") {
			t.Errorf("serverURL(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
		if err != nil && !strings.Contains(err.Error(), "want host:port or a URL") {
			t.Errorf("serverURL(%q): %v does not say what is expected", tt.in, err)
		}
	}
}

// TestServeAuditPages: serve mounts the auditors' pages next to the API.
func TestServeAuditPages(t *testing.T) {
	s := startServer(t, auditData(t, 6))
	for _, tt := range []struct {
		path   string
		status int
		want   string
	}{
		{"/ui/decisions", 200, `<tr data-index="5"`},
		{"/ui/decisions?verdict=deny", 200, `<tr data-index="3"`},
		{"/ui/decisions/4", 200, "proof verifies"},
		{"/ui/decisions?since=yesterday", 400, "want an RFC 3339 time"},
		{"/ui/decisions/6", 404, "not found"},
		{"/portcullis/v1/decisions/4", 200, `"inclusionProof"`},
	} {
		resp, err := http.Get(s.URL(tt.path))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status || !strings.Contains(string(body), tt.want) {
			t.Errorf("GET %s: %d, want %d and %q:\n%s", tt.path, resp.StatusCode, tt.status, tt.want, body)
		}
	}
}
