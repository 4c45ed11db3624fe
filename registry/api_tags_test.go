package registry_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"testing"
)

var nextLink = regexp.MustCompile(`^<([^>]+)>; rel="next"$`)

// pages follows Link headers from path and returns each page's items
// (field is "tags" or "repositories").
func (h *apiHarness) pages(t *testing.T, path, field string) [][]string {
	t.Helper()
	var out [][]string
	for path != "" {
		if len(out) > 100 {
			t.Fatalf("more than 100 pages")
		}
		r := h.do(t, http.MethodGet, path, nil)
		wantStatus(t, r, http.StatusOK)
		var body map[string]json.RawMessage
		var items []string
		if err := json.Unmarshal(r.body, &body); err != nil || json.Unmarshal(body[field], &items) != nil || items == nil {
			t.Fatalf("GET %s: body %s has no %s list", path, r.body, field)
		}
		out = append(out, items)
		path = ""
		if link := r.header.Get("Link"); link != "" {
			m := nextLink.FindStringSubmatch(link)
			if m == nil {
				t.Fatalf("Link header %q is not <url>; rel=\"next\"", link)
			}
			path = m[1]
		}
	}
	return out
}

func TestAPITagsPagination(t *testing.T) {
	h := newAPIHarness(t)
	img := h.image(t, "app", "tags")
	for _, tag := range []string{"v2", "a", "v10", "b", "c"} {
		h.pushManifest(t, "app", tag, img)
	}
	all := []string{"a", "b", "c", "v10", "v2"}
	tests := []struct {
		name  string
		query string
		want  [][]string
	}{
		{"all", "", [][]string{all}},
		{"pages of two", "?n=2", [][]string{{"a", "b"}, {"c", "v10"}, {"v2"}}},
		{"pages of five end with an empty page", "?n=5", [][]string{all, {}}},
		{"after last", "?last=b", [][]string{{"c", "v10", "v2"}}},
		{"after last, pages of two", "?n=2&last=b", [][]string{{"c", "v10"}, {"v2"}}},
		{"n above the count", "?n=10", [][]string{all}},
		{"n zero", "?n=0", [][]string{{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := h.pages(t, "/v2/app/tags/list"+tt.query, "tags")
			if !slices.EqualFunc(got, tt.want, slices.Equal) {
				t.Fatalf("pages %q, want %q", got, tt.want)
			}
		})
	}
	t.Run("Link header", func(t *testing.T) {
		r := h.do(t, http.MethodGet, "/v2/app/tags/list?n=2", nil)
		if got, want := r.header.Get("Link"), `</v2/app/tags/list?last=b&n=2>; rel="next"`; got != want {
			t.Fatalf("Link %q, want %q", got, want)
		}
	})
	t.Run("invalid n", func(t *testing.T) {
		for _, n := range []string{"x", "-1", "1.5"} {
			r := h.do(t, http.MethodGet, "/v2/app/tags/list?n="+n, nil)
			wantStatus(t, r, http.StatusBadRequest)
		}
	})
	t.Run("unknown repository", func(t *testing.T) {
		wantError(t, h.do(t, http.MethodGet, "/v2/unknown/tags/list", nil), http.StatusNotFound, "NAME_UNKNOWN")
	})
}

func TestAPICatalogPagination(t *testing.T) {
	h := newAPIHarness(t)
	all := []string{"alpha", "alpha/one", "beta", "gamma/x/y"}
	for _, repo := range []string{"beta", "gamma/x/y", "alpha", "alpha/one"} {
		h.pushManifest(t, repo, "1", h.image(t, repo, repo))
	}
	// Blobs alone (a push refused before its manifest) list nothing.
	h.pushBlob(t, "alpha/blobs-only", []byte("a refused push"))
	tests := []struct {
		name  string
		query string
		want  [][]string
	}{
		{"all", "", [][]string{all}},
		{"pages of three", "?n=3", [][]string{all[:3], all[3:]}},
		{"pages of two", "?n=2", [][]string{all[:2], all[2:], {}}},
		{"after last", "?last=alpha/one", [][]string{all[2:]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := h.pages(t, "/v2/_catalog"+tt.query, "repositories")
			if !slices.EqualFunc(got, tt.want, slices.Equal) {
				t.Fatalf("pages %q, want %q", got, tt.want)
			}
		})
	}
}
