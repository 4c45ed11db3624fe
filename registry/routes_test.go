package registry

import "testing"

func TestRouteLabel(t *testing.T) {
	for _, tc := range []struct{ path, want string }{
		{"/v2/", "base"},
		{"/v2", "base"},
		{"/v2/_catalog", "catalog"},
		{"/v2/prod/app/blobs/uploads/", "blob_upload"},
		{"/v2/prod/app/blobs/uploads/123", "blob_upload"},
		{"/v2/prod/app/blobs/sha256:abc", "blob"},
		{"/v2/prod/app/manifests/v1", "manifest"},
		{"/v2/prod/app/tags/list", "tags"},
		{"/v2/prod/app/referrers/sha256:abc", "referrers"},
		{"/v2/prod/app/nothing", "other"},
		{"/portcullis/v1/promotions", "api_promotions"},
		{"/portcullis/v1/decisions/12", "api_decisions"},
		{"/portcullis/v1/proofs/inclusion", "api_proofs"},
		{"/portcullis/v1/policies/reload", "api_policies"},
		{"/portcullis/v1/secret-name", "api_other"},
		{"/ui/decisions", "ui"},
		{"/metrics", "metrics"},
		{"/healthz", "healthz"},
		{"/readyz", "readyz"},
		{"/prod/app", "other"},
	} {
		if got := RouteLabel(tc.path); got != tc.want {
			t.Errorf("RouteLabel(%q) = %q, want %q", tc.path, got, tc.want)
		}
	}
}
