package registry

import "strings"

// RouteLabel names the route of a request path with a bounded set of
// labels, for metrics (never a repository name or digest).
func RouteLabel(p string) string {
	switch {
	case p == "/v2/" || p == "/v2":
		return "base"
	case p == "/v2/_catalog":
		return "catalog"
	case strings.HasPrefix(p, "/v2/"):
		switch {
		case strings.Contains(p, "/blobs/uploads"):
			return "blob_upload"
		case strings.Contains(p, "/blobs/"):
			return "blob"
		case strings.Contains(p, "/manifests/"):
			return "manifest"
		case strings.HasSuffix(p, "/tags/list"):
			return "tags"
		case strings.Contains(p, "/referrers/"):
			return "referrers"
		}
		return "other"
	case strings.HasPrefix(p, "/portcullis/v1/"):
		rest := strings.TrimPrefix(p, "/portcullis/v1/")
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			rest = rest[:i]
		}
		switch rest {
		case "promotions", "decisions", "checkpoints", "proofs", "running", "token", "policies":
			return "api_" + rest
		}
		return "api_other"
	case strings.HasPrefix(p, "/ui/"):
		return "ui"
	case p == "/metrics", p == "/healthz", p == "/readyz":
		return strings.TrimPrefix(p, "/")
	}
	return "other"
}
