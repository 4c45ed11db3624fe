package source

import (
	"regexp"

	"github.com/opencontainers/go-digest"
)

// The cosign tag scheme: evidence about sha256:<hex> is kept under the tags
// sha256-<hex>.sig (signatures), .att (attestations) and .sbom (SBOMs).
// This is the one copy of that knowledge: the verifier reads these tags,
// the gate's evidence filter and cache fingerprint them, and the store's
// promotion closure carries them.
const (
	CosignSignature   = "sig"
	CosignAttestation = "att"
	CosignSBOM        = "sbom"
)

// CosignSuffixes lists the suffixes of the cosign tag scheme, in a fixed
// order.
func CosignSuffixes() []string { return []string{CosignSignature, CosignAttestation, CosignSBOM} }

var cosignTagRE = regexp.MustCompile(`^sha256-([0-9a-f]{64})\.(sig|att|sbom)$`)

// CosignTag returns the tag under which cosign keeps evidence of kind
// suffix (CosignSignature, CosignAttestation or CosignSBOM) about d.
func CosignTag(d digest.Digest, suffix string) string {
	return d.Algorithm().String() + "-" + d.Encoded() + "." + suffix
}

// ParseCosignTag reports whether tag is one of cosign's evidence tags, and
// for which digest and suffix. Only the exact form counts: anything else is
// an ordinary tag.
func ParseCosignTag(tag string) (digest.Digest, string, bool) {
	m := cosignTagRE.FindStringSubmatch(tag)
	if m == nil {
		return "", "", false
	}
	return digest.NewDigestFromEncoded(digest.SHA256, m[1]), m[2], true
}
