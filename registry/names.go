package registry

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
)

// MaxNameLength is the longest repository name accepted (the spec's
// recommendation, and what clients assume).
const MaxNameLength = 255

var (
	// nameComponent is one path component of a repository name (spec's <name> grammar).
	nameComponent = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$`)
	tagPattern    = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
)

// ValidateRepository reports whether name is a valid repository name.
func ValidateRepository(name string) error {
	if name == "" {
		return fmt.Errorf("repository name is empty")
	}
	if len(name) > MaxNameLength {
		return fmt.Errorf("repository name is %d characters long, longer than %d", len(name), MaxNameLength)
	}
	for _, c := range strings.Split(name, "/") {
		if !nameComponent.MatchString(c) {
			return fmt.Errorf("repository name %q: component %q must be lowercase letters and digits separated by '.', '_', '__' or '-'", name, c)
		}
	}
	return nil
}

// ValidateTag reports whether tag is a valid tag.
func ValidateTag(tag string) error {
	if !tagPattern.MatchString(tag) {
		return fmt.Errorf("tag %q must match %s", tag, tagPattern)
	}
	return nil
}

// Reference is a manifest reference: a tag or a digest.
type Reference struct {
	Tag    string
	Digest digest.Digest
}

func (r Reference) String() string {
	if r.Digest != "" {
		return r.Digest.String()
	}
	return r.Tag
}

// ParseReference parses a tag or a digest. Anything with a ':' must be a
// valid digest of an algorithm this registry can compute.
func ParseReference(s string) (Reference, error) {
	if strings.Contains(s, ":") {
		d, err := ParseDigest(s)
		if err != nil {
			return Reference{}, err
		}
		return Reference{Digest: d}, nil
	}
	if err := ValidateTag(s); err != nil {
		return Reference{}, err
	}
	return Reference{Tag: s}, nil
}

// ParseDigest parses a digest and checks its algorithm is available.
func ParseDigest(s string) (digest.Digest, error) {
	d, err := digest.Parse(s)
	if err != nil {
		return "", fmt.Errorf("digest %q: %w", s, err)
	}
	return d, nil
}

// ContentRange is an inclusive byte range from a Content-Range request
// header as chunked uploads send it: "<start>-<end>" (also accepted with a
// "bytes " prefix and a "/<size>" suffix).
type ContentRange struct {
	Start, End int64
}

// Len returns the number of bytes in the range.
func (c ContentRange) Len() int64 { return c.End - c.Start + 1 }

// ParseContentRange parses a Content-Range header of a chunked upload.
func ParseContentRange(s string) (ContentRange, error) {
	v := strings.TrimSpace(s)
	v = strings.TrimPrefix(v, "bytes ")
	v = strings.TrimPrefix(v, "bytes=")
	if i := strings.IndexByte(v, '/'); i >= 0 {
		v = v[:i]
	}
	a, b, ok := strings.Cut(v, "-")
	if !ok {
		return ContentRange{}, fmt.Errorf("content range %q: want <start>-<end>", s)
	}
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(b, 10, 64)
	// end < MaxInt64 keeps Len from overflowing.
	if err1 != nil || err2 != nil || start < 0 || end < start || end == math.MaxInt64 {
		return ContentRange{}, fmt.Errorf("content range %q: want <start>-<end> with 0 <= start <= end < 2^63-1", s)
	}
	return ContentRange{Start: start, End: end}, nil
}

// parseByteRange parses a single-range Range request header
// ("bytes=a-b", "bytes=a-", "bytes=-n") against a blob of the given size.
// ok is false when the header should be ignored (multiple ranges);
// err is set when the range cannot be satisfied.
func parseByteRange(h string, size int64) (start, length int64, ok bool, err error) {
	spec, found := strings.CutPrefix(h, "bytes=")
	if !found || strings.Contains(spec, ",") {
		return 0, 0, false, nil
	}
	a, b, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return 0, 0, false, fmt.Errorf("range %q", h)
	}
	switch {
	case a == "":
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n <= 0 {
			return 0, 0, false, fmt.Errorf("range %q", h)
		}
		n = min(n, size)
		return size - n, n, true, nil
	default:
		s, err := strconv.ParseInt(a, 10, 64)
		if err != nil || s < 0 || s >= size {
			return 0, 0, false, fmt.Errorf("range %q not satisfiable for size %d", h, size)
		}
		e := size - 1
		if b != "" {
			e, err = strconv.ParseInt(b, 10, 64)
			if err != nil || e < s {
				// Answered 416 rather than ignored: what the OCI conformance suite expects.
				return 0, 0, false, fmt.Errorf("range %q", h)
			}
			e = min(e, size-1)
		}
		return s, e - s + 1, true, nil
	}
}
