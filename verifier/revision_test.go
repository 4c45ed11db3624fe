package verifier_test

import (
	"crypto"
	"testing"

	"github.com/portcullis-dev/portcullis/verifier"
	vt "github.com/portcullis-dev/portcullis/verifier/verifiertest"
)

// TestTrustRevision: the trust revision is the same for the same
// configuration (so VSAs survive a restart) and changes with every key,
// identity, trusted root, authority name and order.
func TestTrustRevision(t *testing.T) {
	k1, k2 := vt.NewKey(t).Public(), vt.NewKey(t).Public()
	pki1, pki2 := vt.NewPKI(t), vt.NewPKI(t)
	tr1, tr1again, tr2 := pki1.TrustedRoot(t), pki1.TrustedRoot(t), pki2.TrustedRoot(t)
	id := verifier.Identity{Subject: "ci@example.com", Issuer: "https://issuer.example.com"}
	rev := func(auths ...verifier.Authority) string {
		t.Helper()
		v, err := verifier.New(auths...)
		if err != nil {
			t.Fatal(err)
		}
		if r := v.Revision(); len(r) != len("sha256:")+64 {
			t.Fatalf("revision %q", r)
		}
		return v.Revision()
	}
	base := rev(verifier.Authority{Name: "release", Keys: []crypto.PublicKey{k1}},
		verifier.Authority{Name: "ci", Keyless: &verifier.Keyless{Identities: []verifier.Identity{id}, TrustedRoot: tr1}})
	if again := rev(verifier.Authority{Name: "release", Keys: []crypto.PublicKey{k1}},
		verifier.Authority{Name: "ci", Keyless: &verifier.Keyless{Identities: []verifier.Identity{id}, TrustedRoot: tr1again}}); again != base {
		t.Fatalf("the same configuration gives %s and %s", base, again)
	}
	for _, tc := range []struct {
		name  string
		auths []verifier.Authority
	}{
		{"key replaced", []verifier.Authority{{Name: "release", Keys: []crypto.PublicKey{k2}},
			{Name: "ci", Keyless: &verifier.Keyless{Identities: []verifier.Identity{id}, TrustedRoot: tr1}}}},
		{"key added", []verifier.Authority{{Name: "release", Keys: []crypto.PublicKey{k1, k2}},
			{Name: "ci", Keyless: &verifier.Keyless{Identities: []verifier.Identity{id}, TrustedRoot: tr1}}}},
		{"authority renamed", []verifier.Authority{{Name: "prod", Keys: []crypto.PublicKey{k1}},
			{Name: "ci", Keyless: &verifier.Keyless{Identities: []verifier.Identity{id}, TrustedRoot: tr1}}}},
		{"authorities reordered", []verifier.Authority{{Name: "ci", Keyless: &verifier.Keyless{Identities: []verifier.Identity{id}, TrustedRoot: tr1}},
			{Name: "release", Keys: []crypto.PublicKey{k1}}}},
		{"identity changed", []verifier.Authority{{Name: "release", Keys: []crypto.PublicKey{k1}},
			{Name: "ci", Keyless: &verifier.Keyless{Identities: []verifier.Identity{{Subject: "ci@example.com", IssuerRegExp: "^https://"}}, TrustedRoot: tr1}}}},
		{"trusted root changed", []verifier.Authority{{Name: "release", Keys: []crypto.PublicKey{k1}},
			{Name: "ci", Keyless: &verifier.Keyless{Identities: []verifier.Identity{id}, TrustedRoot: tr2}}}},
		{"SCT required", []verifier.Authority{{Name: "release", Keys: []crypto.PublicKey{k1}},
			{Name: "ci", Keyless: &verifier.Keyless{Identities: []verifier.Identity{id}, TrustedRoot: tr1, RequireSCT: true}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if r := rev(tc.auths...); r == base {
				t.Fatalf("revision unchanged: %s", r)
			}
		})
	}
}
