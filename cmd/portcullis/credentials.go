package main

import (
	"net/http"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// credentialTransport sends the credentials the docker config (or a
// credential helper) holds for the server's host with basic auth, which
// access control accepts on every endpoint (docs/access-control.md).
type credentialTransport struct {
	base http.RoundTripper
}

func (c credentialTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Header.Get("Authorization") == "" {
		if reg, err := name.NewRegistry(req.URL.Host); err == nil {
			if a, err := authn.DefaultKeychain.Resolve(reg); err == nil {
				if cfg, err := a.Authorization(); err == nil && cfg.Username != "" {
					req = req.Clone(req.Context())
					req.SetBasicAuth(cfg.Username, cfg.Password)
				}
			}
		}
	}
	return c.base.RoundTrip(req)
}

// credentialClient is an HTTP client sending the user's registry
// credentials (as `docker login` or `crane auth login` stored them).
func credentialClient() *http.Client {
	return &http.Client{Transport: credentialTransport{base: http.DefaultTransport}}
}
