package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/portcullis-dev/portcullis/registry/metadata"
)

// pageParams reads the n and last query parameters of tag and catalog
// listings. n < 0 means no limit.
func pageParams(req *http.Request) (n int, last string, e *regError) {
	q := req.URL.Query()
	n, last = -1, q.Get("last")
	if s := q.Get("n"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 {
			return 0, "", newError(http.StatusBadRequest, codeUnsupported, "n=%q must be a non-negative integer", s)
		}
		n = v
	}
	return n, last, nil
}

// writePage writes a listing, with a Link header to the next page when the
// page is full.
func writePage(w http.ResponseWriter, req *http.Request, n int, items []string, body any) {
	if n > 0 && len(items) == n {
		next := url.Values{"n": {strconv.Itoa(n)}, "last": {items[len(items)-1]}}
		w.Header().Set("Link", fmt.Sprintf(`<%s?%s>; rel="next"`, req.URL.Path, next.Encode()))
	}
	b, _ := json.Marshal(body)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

func (r *Registry) listTags(w http.ResponseWriter, req *http.Request, rt route) *regError {
	n, last, e := pageParams(req)
	if e != nil {
		return e
	}
	tags := []string{}
	if n != 0 {
		var err error
		tags, err = r.meta.ListTags(req.Context(), rt.name, last, n)
		if errors.Is(err, metadata.ErrNotFound) {
			return newError(http.StatusNotFound, codeNameUnknown, "repository %s not found", rt.name)
		}
		if err != nil {
			return internalError(err)
		}
	}
	writePage(w, req, n, tags, struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}{rt.name, tags})
	return nil
}

func (r *Registry) catalog(w http.ResponseWriter, req *http.Request, _ route) *regError {
	n, last, e := pageParams(req)
	if e != nil {
		return e
	}
	repos := []string{}
	if n != 0 {
		var err error
		repos, err = r.readableRepositories(req.Context(), last, n)
		if err != nil {
			return internalError(err)
		}
	}
	writePage(w, req, n, repos, struct {
		Repositories []string `json:"repositories"`
	}{repos})
	return nil
}

// readableRepositories lists the repositories after last that the
// request's caller may pull, at most n (n < 0: all): the catalog shows
// nothing else. Where the store can tell, only repositories holding a
// manifest are listed, so that a refused push leaves nothing in the
// catalog.
func (r *Registry) readableRepositories(ctx context.Context, last string, n int) ([]string, error) {
	list := r.meta.ListRepositories
	if mr, ok := r.meta.(metadata.ManifestRepositories); ok {
		list = mr.ListManifestRepositories
	}
	if CallerFrom(ctx) == nil {
		return list(ctx, last, n)
	}
	const batch = 1000
	out := []string{}
	for {
		page, err := list(ctx, last, batch)
		if err != nil {
			return nil, err
		}
		for _, repo := range page {
			if CallerFrom(ctx).Visible(repo) {
				out = append(out, repo)
				if n >= 0 && len(out) == n {
					return out, nil
				}
			}
		}
		if len(page) < batch {
			return out, nil
		}
		last = page[len(page)-1]
	}
}
