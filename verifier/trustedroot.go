package verifier

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/sigstore/sigstore-go/pkg/root"
	sgtuf "github.com/sigstore/sigstore-go/pkg/tuf"
	"github.com/theupdateframework/go-tuf/v2/metadata/fetcher"
)

// LoadTrustedRoot reads a Sigstore trusted_root.json: the certificate
// authorities, timestamp authorities and logs keyless signatures are
// checked against.
func LoadTrustedRoot(path string) (*root.TrustedRoot, error) {
	tr, err := root.NewTrustedRootFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("load trusted root %s: %w", path, err)
	}
	return tr, nil
}

// TUF says where to fetch trusted_root.json from: a TUF repository the
// operator mirrors (go-tuf/v2 checks every piece of metadata and the
// target against the pinned initial root).
type TUF struct {
	// Mirror is the repository's base URL: http(s)://... or file:///dir.
	Mirror string `json:"mirror"`
	// Root is the path of the repository's initial root.json, pinned by
	// the operator.
	Root string `json:"root" yamlconf:"path"`
	// CacheDir keeps the verified metadata between starts; empty: no cache.
	CacheDir string `json:"cacheDir,omitempty" yamlconf:"path"`
	// Target is the target file's name (default "trusted_root.json").
	Target string `json:"target,omitempty"`
}

// FetchTrustedRoot refreshes the TUF metadata from the mirror and returns
// the trusted root it serves. Nothing is read from the public Sigstore
// infrastructure unless the mirror is it.
func FetchTrustedRoot(ctx context.Context, t TUF) (*root.TrustedRoot, error) {
	if t.Mirror == "" || t.Root == "" {
		return nil, errors.New("fetch trusted root: a TUF mirror and its root.json are both needed")
	}
	rootJSON, err := os.ReadFile(t.Root)
	if err != nil {
		return nil, fmt.Errorf("fetch trusted root: %w", err)
	}
	target := t.Target
	if target == "" {
		target = "trusted_root.json"
	}
	f := fetcher.NewDefaultFetcher()
	hc := &http.Client{Transport: &ctxTransport{ctx: ctx, next: http.DefaultTransport}}
	if strings.HasPrefix(t.Mirror, "file://") {
		hc.Transport = &ctxTransport{ctx: ctx, next: http.NewFileTransport(http.Dir("/"))}
	}
	// SetHTTPClient keeps the fetcher's one-try retry policy; a 404 for
	// the next root version must end the update, not be retried.
	f.SetHTTPClient(hc)
	opts := &sgtuf.Options{
		Root:              rootJSON,
		RepositoryBaseURL: t.Mirror,
		CachePath:         t.CacheDir,
		DisableLocalCache: t.CacheDir == "",
		Fetcher:           f,
	}
	c, err := sgtuf.New(opts)
	if err != nil {
		return nil, fmt.Errorf("fetch trusted root from %s: %w", t.Mirror, err)
	}
	b, err := c.GetTarget(target)
	if err != nil {
		return nil, fmt.Errorf("fetch trusted root from %s: %s: %w", t.Mirror, target, err)
	}
	tr, err := root.NewTrustedRootFromJSON(b)
	if err != nil {
		return nil, fmt.Errorf("fetch trusted root from %s: %s: %w", t.Mirror, target, err)
	}
	return tr, nil
}

// ctxTransport ties the TUF client's requests, which take no context, to
// the caller's.
type ctxTransport struct {
	ctx  context.Context
	next http.RoundTripper
}

func (t *ctxTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return t.next.RoundTrip(r.WithContext(t.ctx))
}
