// Package attest parses supply-chain attestations into the typed values a
// security policy needs, and builds SLSA verification summary attestations.
//
// The layers, outermost first:
//
//   - [ParseEnvelope]: a DSSE envelope (payload type, base64 payload,
//     signatures). Checking the signatures is the verifier's job; this
//     package only decodes.
//   - [ParseStatement]: an in-toto Statement v0.1 or v1 (subjects, predicate
//     type, predicate kept as raw JSON).
//   - [ParsePredicate]: the predicate, decoded once into a typed value:
//     [*Provenance] (SLSA v0.2 and v1), [*SBOM] (SPDX 2.2/2.3 JSON and
//     CycloneDX 1.2-1.7 JSON), [*VulnReport] (cosign vulnerability
//     attestations, and Trivy JSON reports through [ParseTrivyReport]),
//     [*VSA] (SLSA verification summary v1), or [*Unknown] with the raw JSON
//     for any other predicate type: nothing is dropped.
//
// [NewVSA] builds the in-toto v1 Statement of a verification summary, ready
// to be signed into a DSSE envelope with payload type [PayloadTypeInToto].
//
// Every result type carries JSON tags, so it can be handed to OPA as is.
// The package does no I/O and imports nothing from the rest of the project.
// All inputs are treated as untrusted: malformed documents are errors, never
// panics (see the fuzz targets).
package attest
