package ui

import (
	"context"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/audit/audittest"
	"github.com/portcullis-dev/portcullis/audit/httpapi"
)

// testServer serves l's pages and its API (the pages link to it), as
// portcullis serve mounts them.
func testServer(t *testing.T, l *audit.Log) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/portcullis/v1/", httpapi.Handler(l, nil))
	mux.Handle(PathDecisions, Handler(l, nil))
	mux.Handle(PathDecisions+"/", Handler(l, nil))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// getPage fetches a page and checks the headers every page must carry,
// whatever its status.
func getPage(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"Content-Type":            "text/html; charset=utf-8",
		"Content-Security-Policy": uiCSP,
		"X-Content-Type-Options":  "nosniff",
		"Cache-Control":           "no-store",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s %s: %s = %q, want %q", method, url, k, got, want)
		}
	}
	return resp.StatusCode, string(body)
}

var rowIndex = regexp.MustCompile(`<tr data-index="(\d+)"`)

// rowIndexes returns the indexes of the listed decisions, in page order.
func rowIndexes(t *testing.T, body string) []uint64 {
	t.Helper()
	var out []uint64
	for _, m := range rowIndex.FindAllStringSubmatch(body, -1) {
		n, err := strconv.ParseUint(m[1], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}

func TestUIPages(t *testing.T) {
	ctx := context.Background()
	l, _ := audittest.OpenSQLite(t)
	audittest.AppendN(t, l, 0, 60)
	if _, err := l.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	srv := testServer(t, l)
	digest := audittest.Record(7).Subject.Digest // records 7 and 57
	tests := []struct {
		name       string
		method     string
		path       string
		wantStatus int
		wantRows   []uint64 // for the list
		want       []string // in the body, HTML-escaped
	}{
		{"list", "GET", "/ui/decisions", 200, nil, []string{`<form id="filters" method="get" action="/ui/decisions">`, "60 decisions on this page"}},
		{"digest filter", "GET", "/ui/decisions?digest=" + digest, 200, []uint64{57, 7}, []string{`value="` + digest + `"`}},
		{"empty fields are no filter", "GET", "/ui/decisions?digest=&repository=&action=&verdict=&actor=&policyRevision=&namespace=&since=&until=&order=", 200, nil, []string{"60 decisions"}},
		{"action and verdict, oldest first", "GET", "/ui/decisions?action=admit&verdict=deny&order=asc", 200, []uint64{9, 11, 25, 27, 41, 43, 57, 59}, []string{"<option selected>admit</option>", `<option value="asc" selected>`}},
		{"time range", "GET", "/ui/decisions?since=2026-11-01T12:00:10Z&until=2026-11-01T12:00:13Z", 200, []uint64{12, 11, 10}, nil},
		{"no match", "GET", "/ui/decisions?digest=sha256:none", 200, []uint64{}, []string{"0 decisions on this page"}},
		{"bad time", "GET", "/ui/decisions?since=yesterday", 400, nil, []string{`since "yesterday": want an RFC 3339 time`}},
		{"bad action", "GET", "/ui/decisions?action=erase", 400, nil, []string{`action "erase": want push`}},
		{"bad cursor", "GET", "/ui/decisions?cursor=x", 400, nil, []string{`bad cursor "x"`}},
		{"bad limit", "GET", "/ui/decisions?limit=0", 400, nil, []string{`limit "0": want 1 to 1000`}},
		{"read-only", "POST", "/ui/decisions", 405, nil, []string{"read-only"}},
		{"record", "GET", "/ui/decisions/7", 200, nil, []string{
			`<p id="proof-status" class="ok">proof verifies</p>`, "reason 7", digest, audittest.Record(7).PolicyRevision,
			"https://slsa.dev/provenance/v1", "CRITICAL: 1<br>HIGH: 3", "Tree size</th><td>60"}},
		{"record against an older checkpoint", "GET", "/ui/decisions/7?treeSize=60", 200, nil, []string{"proof verifies"}},
		{"no such checkpoint", "GET", "/ui/decisions/7?treeSize=8", 404, nil, []string{"no checkpoint of size 8"}},
		{"no such record", "GET", "/ui/decisions/60", 404, nil, []string{"record 60: not found"}},
		{"bad index", "GET", "/ui/decisions/seven", 400, nil, []string{`index "seven": want a non-negative integer`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := getPage(t, tt.method, srv.URL+tt.path)
			if status != tt.wantStatus {
				t.Fatalf("status %d, want %d:\n%s", status, tt.wantStatus, body)
			}
			for _, w := range tt.want {
				if !strings.Contains(body, html.EscapeString(w)) && !strings.Contains(body, w) {
					t.Errorf("page lacks %q:\n%s", w, body)
				}
			}
			if tt.wantRows != nil {
				if got := rowIndexes(t, body); !slices.Equal(got, tt.wantRows) {
					t.Errorf("rows %v, want %v", got, tt.wantRows)
				}
			}
		})
	}
}

var olderLink = regexp.MustCompile(`<a id="older" href="([^"]+)"`)

func TestUIPagination(t *testing.T) {
	l, _ := audittest.OpenSQLite(t)
	audittest.AppendN(t, l, 0, 25)
	srv := testServer(t, l)
	var got []uint64
	path := "/ui/decisions?repository=staging/app3&limit=1" // 3, 13, 23
	for pages := 0; path != ""; pages++ {
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
		status, body := getPage(t, "GET", srv.URL+path)
		if status != http.StatusOK {
			t.Fatalf("%s: status %d:\n%s", path, status, body)
		}
		if pages > 0 && !strings.Contains(body, `<a id="first" href="/ui/decisions?limit=1&amp;repository=staging%2Fapp3">`) {
			t.Errorf("page %d has no link to the first page:\n%s", pages, body)
		}
		got = append(got, rowIndexes(t, body)...)
		path = ""
		if m := olderLink.FindStringSubmatch(body); m != nil {
			path = html.UnescapeString(m[1])
		}
	}
	// The last page is full (limit 1), so it has an "older" link to an empty page.
	if want := []uint64{23, 13, 3}; !slices.Equal(got, want) {
		t.Errorf("paged through %v, want %v", got, want)
	}
}

func TestUIEscapesRecords(t *testing.T) {
	ctx := context.Background()
	l, _ := audittest.OpenSQLite(t)
	r := audittest.Record(0)
	r.Reasons = []string{`<script>alert("x")</script>`}
	r.Subject.Repository = `"><img src=x>`
	if _, err := l.Append(ctx, r); err != nil {
		t.Fatal(err)
	}
	srv := testServer(t, l)
	for _, path := range []string{"/ui/decisions", "/ui/decisions/0"} {
		_, body := getPage(t, "GET", srv.URL+path)
		if strings.Contains(body, "<script") || strings.Contains(body, "<img") {
			t.Errorf("%s: record content is not escaped:\n%s", path, body)
		}
	}
}

func TestUIProofStatus(t *testing.T) {
	ctx := context.Background()
	t.Run("not checkpointed", func(t *testing.T) {
		l, _ := audittest.OpenSQLite(t)
		audittest.AppendN(t, l, 0, 3)
		_, body := getPage(t, "GET", testServer(t, l).URL+"/ui/decisions/1")
		if !strings.Contains(body, "No signed checkpoint covers this record yet") {
			t.Errorf("page does not say the record is not checkpointed yet:\n%s", body)
		}
	})
	t.Run("wrong key", func(t *testing.T) {
		other, err := audit.LoadOrCreateSigner(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		l, _ := audittest.OpenSQLite(t, audit.WithVerifier(other.Verifier()))
		audittest.AppendN(t, l, 0, 3)
		if _, err := l.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
		_, body := getPage(t, "GET", testServer(t, l).URL+"/ui/decisions/1")
		if !strings.Contains(body, `<p id="proof-status" class="bad">proof does not verify: `) {
			t.Errorf("a checkpoint signed by another key is not reported:\n%s", body)
		}
	})
}

func TestShortDigest(t *testing.T) {
	for in, want := range map[string]string{
		"":                                 "",
		"sha256:0123456789abcdef":          "sha256:0123456789ab…",
		"sha256:0123456789ab":              "sha256:0123456789ab",
		"not a digest":                     "not a digest",
		fmt.Sprintf("sha512:%0128x", 1234): "sha512:000000000000…",
	} {
		if got := shortDigest(in); got != want {
			t.Errorf("shortDigest(%q) = %q, want %q", in, got, want)
		}
	}
}
