package verifier

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"slices"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
)

// Revision identifies the trust configuration: every authority, in order,
// with its keys (by key id, in order), keyless identities, RequireSCT and
// trusted root material (certificate authorities, timestamp authorities,
// transparency and CT logs: their certificates and keys, IDs, URLs and
// validity periods). It is "sha256:" and the hex SHA-256 of a canonical
// text form of all that, so it is the same on every start with the same
// configuration and changes when any key, identity or root changes.
// Whatever evidence was verified under one revision (the gate's VSAs and
// caches) does not stand under another.
//
// Trusted material of a type this package cannot read (not a Sigstore
// certificate authority or timestamp authority) makes the revision unique
// to this process: nothing verified under it survives a restart.
func (v *Verifier) Revision() string { return v.revision }

// trustRevision computes [Verifier.Revision] for authorities.
func trustRevision(authorities []Authority) (string, error) {
	h := sha256.New()
	w := func(format string, args ...any) { fmt.Fprintf(h, format+"\n", args...) }
	w("portcullis-trust-v1")
	for _, a := range authorities {
		w("authority %q", a.Name)
		for _, k := range a.Keys {
			id, err := KeyID(k)
			if err != nil {
				return "", err
			}
			w("key %s", id)
		}
		if k := a.Keyless; k != nil {
			w("keyless requireSCT=%t", k.RequireSCT)
			for _, id := range k.Identities {
				w("identity subject=%q subjectRegExp=%q issuer=%q issuerRegExp=%q", id.Subject, id.SubjectRegExp, id.Issuer, id.IssuerRegExp)
			}
			if k.TrustedRoot != nil {
				if err := hashTrustedMaterial(h, k.TrustedRoot); err != nil {
					return "", err
				}
			}
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

func hashTrustedMaterial(h hash.Hash, tm root.TrustedMaterial) error {
	w := func(format string, args ...any) { fmt.Fprintf(h, format+"\n", args...) }
	certs := func(what string, cs ...*x509.Certificate) {
		for _, c := range cs {
			if c == nil {
				continue
			}
			sum := sha256.Sum256(c.Raw)
			w("%s %x", what, sum)
		}
	}
	period := func(from, to time.Time) string {
		return from.UTC().Format(time.RFC3339Nano) + "/" + to.UTC().Format(time.RFC3339Nano)
	}
	for _, ca := range tm.FulcioCertificateAuthorities() {
		switch ca := ca.(type) {
		case *root.FulcioCertificateAuthority:
			w("ca uri=%q valid=%s", ca.URI, period(ca.ValidityPeriodStart, ca.ValidityPeriodEnd))
			certs("ca.root", ca.Root)
			certs("ca.intermediate", ca.Intermediates...)
		default:
			return unique(h, fmt.Sprintf("certificate authority %T", ca))
		}
	}
	for _, tsa := range tm.TimestampingAuthorities() {
		switch tsa := tsa.(type) {
		case *root.SigstoreTimestampingAuthority:
			w("tsa uri=%q valid=%s", tsa.URI, period(tsa.ValidityPeriodStart, tsa.ValidityPeriodEnd))
			certs("tsa.root", tsa.Root)
			certs("tsa.intermediate", tsa.Intermediates...)
			certs("tsa.leaf", tsa.Leaf)
		default:
			return unique(h, fmt.Sprintf("timestamp authority %T", tsa))
		}
	}
	for _, l := range []struct {
		kind string
		logs map[string]*root.TransparencyLog
	}{{"rekor", tm.RekorLogs()}, {"ct", tm.CTLogs()}} {
		ids := make([]string, 0, len(l.logs))
		for id := range l.logs {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			tl := l.logs[id]
			if tl == nil {
				continue
			}
			der, err := x509.MarshalPKIXPublicKey(tl.PublicKey)
			if err != nil {
				return unique(h, fmt.Sprintf("%s log %q key %T", l.kind, id, tl.PublicKey))
			}
			sum := sha256.Sum256(der)
			w("%s %q id=%x url=%q valid=%s hash=%d sighash=%d key=%x", l.kind, id, tl.ID, tl.BaseURL,
				period(tl.ValidityPeriodStart, tl.ValidityPeriodEnd), tl.HashFunc, tl.SignatureHashFunc, sum)
		}
	}
	return nil
}

// unique makes the revision unique to this process, for material it cannot
// identify by content.
func unique(h hash.Hash, what string) error {
	nonce := make([]byte, 32)
	if _, err := io.ReadFull(rand.Reader, nonce); err != nil {
		return err
	}
	fmt.Fprintf(h, "unidentified %s %x\n", what, nonce)
	return nil
}
