// Package contract holds the types the decision engine and its callers
// share: what is asked (Request, with its Target, Identity and Workload),
// what is answered (Decision, Refusal, DeniedError) and the policy Input
// document of docs/policy-input.md.
//
// It is a leaf: it imports no engine (OPA, sigstore, cosign, Trivy), so
// the registry and the admission webhook can speak to the gate without
// linking the engines behind it. depcheck_test.go keeps it so.
package contract
