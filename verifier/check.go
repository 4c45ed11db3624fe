package verifier

import (
	"errors"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/portcullis-dev/portcullis/attest"
	"github.com/portcullis-dev/portcullis/policy/contract"
)

// check runs fn for every authority: the evidence is verified if any
// authority verifies it. It returns the authorities that did, the first
// one's signer, or the reasons each gave.
func (c *collection) check(fn func(*authority) (*contract.Signer, error)) (verified bool, authorities []string, signer *contract.Signer, reason string) {
	if len(c.v.authorities) == 0 {
		return false, nil, nil, "no authority is configured"
	}
	var reasons []string
	for _, a := range c.v.authorities {
		s, err := fn(a)
		if err != nil {
			reasons = append(reasons, fmt.Sprintf("authority %q: %v", a.name, err))
			continue
		}
		authorities = append(authorities, a.name)
		if signer == nil {
			signer = s
		}
	}
	if len(authorities) > 0 {
		return true, authorities, signer, ""
	}
	return false, nil, nil, strings.Join(reasons, "; ")
}

// hash is the subject digest in go-containerregistry's form, as the cosign
// library wants it.
func (c *collection) hash() v1.Hash { return c.h }

// readStatement fills in a verified attestation's predicate from its DSSE
// envelope. Anything that makes the content unusable un-verifies it, with
// the reason: a policy must not see half-understood claims as verified.
func (c *collection) readStatement(at *Attestation, envelope []byte) {
	env, err := attest.ParseEnvelope(envelope)
	if err != nil {
		c.internal(err)
		unverify(at, "%v", err)
		return
	}
	c.readPayload(at, env.PayloadType, env.Payload)
}

// internal keeps an attest parser's recovered panic: Collect then fails,
// so that the gate denies (I3) instead of deciding without the document.
func (c *collection) internal(err error) {
	if errors.Is(err, attest.ErrInternal) {
		c.failed = errors.Join(c.failed, err)
	}
}

// unverify marks an attestation whose signature verified as unusable.
func unverify(at *Attestation, format string, args ...any) {
	at.Verified, at.Predicate = false, nil
	at.Reason = "signature verified, but " + fmt.Sprintf(format, args...)
}

// readPayload is readStatement for a payload already taken out of its
// envelope (as in a Sigstore bundle).
func (c *collection) readPayload(at *Attestation, payloadType string, payload []byte) {
	fail := func(format string, args ...any) { unverify(at, format, args...) }
	if payloadType != attest.PayloadTypeInToto {
		fail("the DSSE payload type is %q, not %q", payloadType, attest.PayloadTypeInToto)
		return
	}
	st, err := attest.ParseStatement(payload)
	if err != nil {
		c.internal(err)
		fail("%v", err)
		return
	}
	at.PredicateType = st.PredicateType
	if !st.HasSubjectDigest(c.subj.Digest.String()) {
		fail("the statement is about another artifact, not %s", c.subj.Digest)
		return
	}
	p, err := attest.ParsePredicate(st.PredicateType, st.Predicate)
	if err != nil {
		c.internal(err)
		fail("the %s predicate is malformed: %v", st.PredicateType, err)
		return
	}
	at.Predicate = p
}
