package policy

import (
	"slices"
	"time"

	"github.com/portcullis-dev/portcullis/attest"
	"github.com/portcullis-dev/portcullis/policy/contract"
	"github.com/portcullis-dev/portcullis/scanner"
	"github.com/portcullis-dev/portcullis/verifier"
)

// InputOption adds to a [contract.Input] what [NewInput]'s arguments do not carry.
type InputOption func(*contract.Input)

// WithCheckError records that check (e.g. "scan") could not be made, and
// why. The library's errors policy denies for it: the gate fails closed.
func WithCheckError(check string, err error) InputOption {
	return func(in *contract.Input) {
		if err != nil {
			in.Evidence.Errors = append(in.Evidence.Errors, contract.CheckError{Check: check, Message: err.Error()})
		}
	}
}

// NewInput builds the policy input for one request from the verified
// evidence ev and the registry's scan report (nil when there is none). now
// is the decision time. A nil ev is recorded as an "evidence" check error.
// Without a verified SBOM attestation, the scan's package inventory (if
// any) is the SBOM, with source "scanner".
// NewInput does not modify ev or scan; the input shares their values.
func NewInput(action contract.Action, subject contract.Subject, target contract.Target, request contract.Actor, ev *verifier.Evidence, scan *scanner.Report, now time.Time, opts ...InputOption) *contract.Input {
	in := &contract.Input{
		APIVersion: contract.APIVersion,
		Action:     action,
		Time:       now.UTC(),
		Subject:    subject,
		Target:     target,
		Request:    request,
		Evidence:   emptyEvidence(),
	}
	if ev != nil {
		if in.Subject.Digest == "" {
			in.Subject.Digest = ev.Subject.Digest.String()
		}
		if in.Subject.Repository == "" {
			in.Subject.Repository = ev.Subject.Repository
		}
		inputAddSignatures(in, ev.Signatures)
		inputAddAttestations(in, ev.Attestations)
	}
	inputFinish(in, scan, opts)
	if ev == nil && !slices.ContainsFunc(in.Evidence.Errors, func(e contract.CheckError) bool { return e.Check == contract.CheckEvidence }) {
		in.Evidence.Errors = append(in.Evidence.Errors, contract.CheckError{Check: contract.CheckEvidence, Message: "no evidence was gathered"})
	}
	return in
}

// VerifiedEvidence is the verified part of the evidence NewInput makes of
// ev: the signatures and attestations and what they say (provenance, an
// attested SBOM, attested vulnerability reports), without a scan or check
// errors. The gate's verification summaries carry it, and
// [NewInputWithEvidence] completes it into the input NewInput would give.
func VerifiedEvidence(ev *verifier.Evidence) contract.Evidence {
	in := contract.Input{Evidence: emptyEvidence()}
	if ev != nil {
		inputAddSignatures(&in, ev.Signatures)
		inputAddAttestations(&in, ev.Attestations)
	}
	return in.Evidence
}

// NewInputWithEvidence builds the input for one request from verified
// evidence ([VerifiedEvidence]) gathered before and the scan report now:
// for the same verifier evidence, the same input as [NewInput].
// NewInputWithEvidence does not modify verified's slices and maps.
func NewInputWithEvidence(action contract.Action, subject contract.Subject, target contract.Target, request contract.Actor, verified contract.Evidence, scan *scanner.Report, now time.Time, opts ...InputOption) *contract.Input {
	in := &contract.Input{
		APIVersion: contract.APIVersion,
		Action:     action,
		Time:       now.UTC(),
		Subject:    subject,
		Target:     target,
		Request:    request,
		Evidence:   verified,
	}
	e := &in.Evidence
	e.Errors = []contract.CheckError{}
	e.Vulnerabilities.Scan = nil
	e.Vulnerabilities.Attested = nonNil(slices.Clip(e.Vulnerabilities.Attested))
	e.Provenance = nonNil(slices.Clip(e.Provenance))
	if e.SBOM != nil && e.SBOM.Source != contract.SBOMFromAttestation {
		e.SBOM = nil
	}
	if e.Signatures.ByAuthority == nil {
		e.Signatures.ByAuthority = map[string][]contract.VerifiedSignature{}
	}
	if e.Attestations.ByPredicateType == nil {
		e.Attestations.ByPredicateType = map[string][]contract.VerifiedAttestation{}
	}
	e.Signatures.Unverified = nonNil(e.Signatures.Unverified)
	e.Attestations.Unverified = nonNil(e.Attestations.Unverified)
	inputFinish(in, scan, opts)
	return in
}

func emptyEvidence() contract.Evidence {
	return contract.Evidence{
		Signatures:      contract.Signatures{ByAuthority: map[string][]contract.VerifiedSignature{}, Unverified: []contract.UnverifiedSignature{}},
		Attestations:    contract.Attestations{ByPredicateType: map[string][]contract.VerifiedAttestation{}, Unverified: []contract.UnverifiedAttestation{}},
		Provenance:      []contract.Provenance{},
		Vulnerabilities: contract.Vulnerabilities{Attested: []contract.AttestedVulnReport{}},
		Errors:          []contract.CheckError{},
	}
}

// finish adds the scan (and the SBOM of its inventory when no SBOM is
// attested) and the options.
func inputFinish(in *contract.Input, scan *scanner.Report, opts []InputOption) {
	in.Evidence.Vulnerabilities.Scan = scanOf(scan)
	if in.Evidence.SBOM == nil && scan != nil && len(scan.Inventory) > 0 {
		in.Evidence.SBOM = inventorySBOM(scan.Inventory)
	}
	for _, o := range opts {
		o(in)
	}
}

func inputAddSignatures(in *contract.Input, sigs []verifier.Signature) {
	s := &in.Evidence.Signatures
	for _, sig := range sigs {
		if !sig.Verified || len(sig.Authorities) == 0 {
			s.Unverified = append(s.Unverified, contract.UnverifiedSignature{Source: sig.Source, Manifest: sig.Manifest.String(), Reason: sig.Reason})
			continue
		}
		v := contract.VerifiedSignature{Source: sig.Source, Manifest: sig.Manifest.String(), Signer: sig.Signer}
		for _, a := range sig.Authorities {
			s.ByAuthority[a] = append(s.ByAuthority[a], v)
		}
	}
}

func inputAddAttestations(in *contract.Input, atts []verifier.Attestation) {
	ev := &in.Evidence
	for _, a := range atts {
		if !a.Verified || a.Predicate == nil {
			reason := a.Reason
			if a.Verified && reason == "" {
				reason = "verified, but its predicate could not be parsed"
			}
			ev.Attestations.Unverified = append(ev.Attestations.Unverified, contract.UnverifiedAttestation{
				Source: a.Source, Manifest: a.Manifest.String(), PredicateType: a.PredicateType, Reason: reason,
			})
			continue
		}
		authorities := a.Authorities
		if authorities == nil {
			authorities = []string{}
		}
		ev.Attestations.ByPredicateType[a.PredicateType] = append(ev.Attestations.ByPredicateType[a.PredicateType], contract.VerifiedAttestation{
			Source: a.Source, Manifest: a.Manifest.String(), Authorities: authorities, Signer: a.Signer,
			Kind: a.Predicate.Kind(), Predicate: a.Predicate,
		})
		switch p := a.Predicate.(type) {
		case *attest.Provenance:
			ev.Provenance = append(ev.Provenance, contract.Provenance{
				PredicateType: a.PredicateType, Authorities: authorities,
				SLSAVersion: p.SLSAVersion, BuilderID: p.BuilderID, BuildType: p.BuildType,
				SourceRepository: p.SourceRepository, SourceRef: p.SourceRef, SourceRevision: p.SourceRevision,
			})
		case *attest.SBOM:
			// The first verified SBOM attestation is the image's SBOM.
			if ev.SBOM == nil {
				ev.SBOM = sbomOf(p, contract.SBOMFromAttestation, a.PredicateType, authorities)
			}
		case *attest.VulnReport:
			ev.Vulnerabilities.Attested = append(ev.Vulnerabilities.Attested, contract.AttestedVulnReport{
				PredicateType: a.PredicateType, Authorities: authorities, Report: p,
			})
		}
	}
}

func sbomOf(s *attest.SBOM, source, predicateType string, authorities []string) *contract.SBOM {
	return &contract.SBOM{
		Source: source, PredicateType: predicateType, Authorities: authorities,
		Format: s.Format, SpecVersion: s.SpecVersion,
		Components: nonNil(s.Components), Licenses: nonNil(s.Licenses), LicenseIDs: nonNil(s.LicenseIDs),
	}
}

// nonNil makes an absent list an empty JSON array, so policies can count it.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func scanOf(r *scanner.Report) *contract.Scan {
	if r == nil {
		return nil
	}
	return &contract.Scan{
		Digest: r.Digest, Scanner: r.Scanner, DB: r.DB, ScannedAt: r.ScannedAt, OS: r.OS, Packages: r.Packages,
		Vulnerabilities: nonNil(r.Vulnerabilities), Counts: r.Counts,
	}
}

// inventorySBOM is the SBOM the registry generates from a scan's inventory
// (scanner.CycloneDX writes the same packages as CycloneDX 1.6).
func inventorySBOM(pkgs []scanner.Package) *contract.SBOM {
	s := &contract.SBOM{Source: contract.SBOMFromScanner, Format: attest.FormatCycloneDX, SpecVersion: "1.6", Components: make([]attest.Component, 0, len(pkgs))}
	var exprs []string
	for _, p := range pkgs {
		s.Components = append(s.Components, attest.Component{Name: p.Name, Version: p.Version, PURL: p.PURL, Licenses: p.Licenses})
		exprs = append(exprs, p.Licenses...)
	}
	s.Licenses, s.LicenseIDs = licenseSummary(exprs)
	return s
}
