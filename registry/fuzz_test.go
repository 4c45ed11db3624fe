package registry

import (
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// Seeds shared by the manifest fuzzer: one of each kind the registry accepts.
func FuzzValidateRepository(f *testing.F) {
	for _, s := range []string{
		"library/ubuntu", "a", "a/b/c", "a.b_c__d---e", "blobs", "a/blobs/uploads", "x/manifests/y", "tags/list",
		"Library/ubuntu", "a//b", "a/", "/a", "a/../b", "a..b", "a_-b", "-a", "", strings.Repeat("a", 255), strings.Repeat("a", 256),
		"a/" + strings.Repeat("b", 253), "ü", "a\x00b",
	} {
		f.Add(s)
	}
	d := digest.FromString("x").String()
	f.Fuzz(func(t *testing.T, name string) {
		if ValidateRepository(name) != nil {
			return
		}
		if len(name) > MaxNameLength {
			t.Fatalf("accepted a name of %d bytes", len(name))
		}
		if name != strings.ToLower(name) {
			t.Fatalf("accepted %q with uppercase", name)
		}
		for _, c := range strings.Split(name, "/") {
			if c == "" || c == "." || c == ".." {
				t.Fatalf("accepted %q with component %q", name, c)
			}
		}
		if err := ValidateRepository(name); err != nil {
			t.Fatalf("accepted %q, then rejected it: %v", name, err)
		}
		// Every route to the repository parses back to it, whatever
		// path markers the name contains.
		routes := []struct{ path, kind, arg string }{
			{"/v2/" + name + "/manifests/latest", "manifest", "latest"},
			{"/v2/" + name + "/manifests/" + d, "manifest", d},
			{"/v2/" + name + "/blobs/" + d, "blob", d},
			{"/v2/" + name + "/blobs/uploads/", "uploads", ""},
			{"/v2/" + name + "/blobs/uploads/0f1e2d3c-id", "upload", "0f1e2d3c-id"},
			{"/v2/" + name + "/referrers/" + d, "referrers", d},
			{"/v2/" + name + "/tags/list", "tags", ""},
		}
		for _, r := range routes {
			got, ok := parseRoute(r.path)
			if !ok || got.kind != r.kind || got.name != name || got.arg != r.arg {
				t.Errorf("parseRoute(%q) = %+v, %v; want {%s %s %s}", r.path, got, ok, r.kind, name, r.arg)
			}
		}
	})
}

func FuzzParseReference(f *testing.F) {
	for _, s := range []string{
		"latest", "v1.2.3", "_x", "A-Z", strings.Repeat("t", 128), strings.Repeat("t", 129), "-x", ".x", "",
		digest.FromString("x").String(), digest.SHA512.FromString("x").String(), "sha256:abc", "md5:d41d8cd98f00b204e9800998ecf8427e",
		"sha256:" + strings.Repeat("Z", 64), "a:b", ":",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ref, err := ParseReference(s)
		if err != nil {
			return
		}
		if (ref.Tag == "") == (ref.Digest == "") {
			t.Fatalf("ParseReference(%q) = %+v: want exactly one of tag and digest", s, ref)
		}
		if ref.String() != s {
			t.Fatalf("ParseReference(%q).String() = %q", s, ref.String())
		}
		if ref.Tag != "" {
			if len(ref.Tag) > 128 || strings.ContainsAny(ref.Tag, ":/@") || ValidateTag(ref.Tag) != nil {
				t.Fatalf("accepted tag %q", ref.Tag)
			}
		} else {
			if err := ref.Digest.Validate(); err != nil || !ref.Digest.Algorithm().Available() {
				t.Fatalf("accepted digest %q (%v)", ref.Digest, err)
			}
		}
		again, err := ParseReference(ref.String())
		if err != nil || again != ref {
			t.Fatalf("ParseReference(%q) = %+v, then %+v, %v", s, ref, again, err)
		}
	})
}

func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{
		"0-0", "0-99", "bytes 0-99/100", "bytes=5-10", "bytes 5-10/*", " 1-2 ", "5-4", "-1-2", "1", "a-b", "",
		"0-9223372036854775806", "0-9223372036854775807", "1-9223372036854775807", "+1-+2",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseContentRange(s)
		if err != nil {
			return
		}
		if r.Start < 0 || r.End < r.Start {
			t.Fatalf("ParseContentRange(%q) = %+v", s, r)
		}
		if r.Len() != r.End-r.Start+1 || r.Len() < 1 {
			t.Fatalf("ParseContentRange(%q) = %+v with Len %d", s, r, r.Len())
		}
	})
}

func FuzzParseByteRange(f *testing.F) {
	for _, s := range []struct {
		h    string
		size int64
	}{
		{"bytes=0-9", 100}, {"bytes=90-", 100}, {"bytes=-5", 100}, {"bytes=-500", 100}, {"bytes=95-200", 100},
		{"bytes=100-", 100}, {"bytes=-0", 100}, {"bytes=0-1,5-6", 100}, {"items=0-1", 100}, {"bytes=5-3", 100},
		{"bytes=-5", 0}, {"bytes=0-", 1}, {"bytes= 1-2", 10}, {"bytes=0-9223372036854775807", 9223372036854775807},
		{"bytes=-9223372036854775807", 1}, {"bytes=", 10}, {"bytes=-", 10}, {"bytes=+1-+2", 10},
	} {
		f.Add(s.h, s.size)
	}
	f.Fuzz(func(t *testing.T, h string, size int64) {
		if size < 0 {
			size = ^size // any non-negative size
		}
		start, length, ok, err := parseByteRange(h, size)
		if err != nil || !ok {
			if start != 0 || length != 0 || ok {
				t.Fatalf("parseByteRange(%q, %d) = %d, %d, %v, %v", h, size, start, length, ok, err)
			}
			return
		}
		if start < 0 || length < 0 || start > size || length > size-start {
			t.Fatalf("parseByteRange(%q, %d) = start %d, length %d: outside the blob", h, size, start, length)
		}
		if size > 0 && length == 0 {
			t.Fatalf("parseByteRange(%q, %d) = an empty range", h, size)
		}
	})
}
