package webhook

import (
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
)

// reference is an image reference split into its parts: name[:tag][@digest].
type reference struct {
	Name   string
	Tag    string
	Digest digest.Digest
}

// parseReference splits an image reference. It checks the shape only; the
// resolver decides what the name means.
func parseReference(s string) (reference, error) {
	var r reference
	if s == "" {
		return r, fmt.Errorf("empty image reference")
	}
	if strings.ContainsAny(s, " \t\r\n") {
		return r, fmt.Errorf("image reference %q contains white space", s)
	}
	rest := s
	if i := strings.IndexByte(rest, '@'); i >= 0 {
		d, err := digest.Parse(rest[i+1:])
		if err != nil {
			return r, fmt.Errorf("image reference %q: bad digest: %w", s, err)
		}
		r.Digest, rest = d, rest[:i]
	}
	if i := strings.LastIndexByte(rest, ':'); i > strings.LastIndexByte(rest, '/') {
		r.Tag, rest = rest[i+1:], rest[:i]
		if r.Tag == "" {
			return r, fmt.Errorf("image reference %q: empty tag", s)
		}
	}
	if rest == "" {
		return r, fmt.Errorf("image reference %q: empty name", s)
	}
	r.Name = rest
	return r, nil
}
