package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/attest"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/policy/contract"
	"github.com/portcullis-dev/portcullis/verifier"
	"github.com/portcullis-dev/portcullis/verifier/source"
)

const verifyUsage = `usage: portcullis verify [flags] IMAGE

Prints the supply-chain evidence of IMAGE (a tag or a digest): every
signature and attestation found, verified against the trust given by
--config and by cosign's flags (which add an authority named "cli").

Exit status: 0 when at least one signature verifies, 1 when none does,
2 when the evidence could not be checked.

flags:
`

// verifyFlags are the flags of `portcullis verify`, named as cosign's.
type verifyFlags struct {
	config                                    string
	keys                                      stringList
	identity, identityRegexp                  string
	oidcIssuer, oidcIssuerRegexp, trustedRoot string
	insecure                                  bool
	output                                    string
	policyDir, action, target                 string
}

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func verifyCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var f verifyFlags
	c := newCommand("verify", verifyUsage, stdout, stderr)
	fs := c.fs
	fs.StringVar(&f.config, "config", "", "portcullis.yaml whose trust section gives the authorities")
	fs.Var(&f.keys, "key", "PEM public key file (repeatable)")
	fs.StringVar(&f.identity, "certificate-identity", "", "keyless: the certificate's subject (SAN), exactly")
	fs.StringVar(&f.identityRegexp, "certificate-identity-regexp", "", "keyless: a regular expression for the certificate's subject")
	fs.StringVar(&f.oidcIssuer, "certificate-oidc-issuer", "", "keyless: the OIDC issuer in the certificate, exactly")
	fs.StringVar(&f.oidcIssuerRegexp, "certificate-oidc-issuer-regexp", "", "keyless: a regular expression for the OIDC issuer")
	fs.StringVar(&f.trustedRoot, "trusted-root", "", "keyless: Sigstore trusted_root.json")
	fs.BoolVar(&f.insecure, "allow-insecure-registry", false, "reach the registry over plain HTTP")
	fs.StringVar(&f.output, "output", "table", "table or json")
	fs.StringVar(&f.policyDir, "policy", "", "also decide with this policy bundle (directory, .tar.gz or oci://REF, read over the network with --config's webhook.registries or the docker config's credentials), the library included")
	fs.StringVar(&f.action, "action", "promote", "with --policy: push, promote or admit")
	fs.StringVar(&f.target, "target", "", "with --policy: the target repository, e.g. prod/app (default: the image's own)")
	pos, code, ok := c.parse(args, 1, 1)
	if !ok {
		return code
	}
	res, err := f.run(ctx, pos[0])
	if err != nil {
		fmt.Fprintf(stderr, "portcullis verify: %v\n", err)
		return exitFailed
	}
	if f.output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(res)
	} else {
		err = printEvidence(stdout, res)
	}
	if err != nil {
		fmt.Fprintf(stderr, "portcullis verify: %v\n", err)
		return exitFailed
	}
	if res.Decision != nil {
		if res.Decision.Error != "" {
			fmt.Fprintf(stderr, "portcullis verify: policy: %s\n", res.Decision.Error)
			return exitFailed
		}
		if !res.Decision.Allow {
			fmt.Fprintf(stderr, "portcullis verify: %s is denied by policy\n", res.Image)
			return exitDenied
		}
		return exitOK
	}
	if !res.Verified {
		fmt.Fprintf(stderr, "portcullis verify: no signature of %s verified\n", res.Image)
		return exitDenied
	}
	return exitOK
}

// verifyResult is what `portcullis verify --output json` prints.
type verifyResult struct {
	Image string `json:"image"`
	// Verified is true when at least one signature verified.
	Verified bool `json:"verified"`
	*verifier.Evidence
	// Decision is the policy's, with --policy.
	Decision *contract.Verdict `json:"decision,omitempty"`
}

func (f *verifyFlags) run(ctx context.Context, image string) (*verifyResult, error) {
	if f.output != "table" && f.output != "json" {
		return nil, fmt.Errorf("--output %q: want table or json", f.output)
	}
	trust, err := f.trust()
	if err != nil {
		return nil, err
	}
	v, err := trust.newVerifier(ctx)
	if err != nil {
		return nil, err
	}
	var nameOpts []name.Option
	var srcOpts []source.RemoteOption
	if f.insecure {
		nameOpts = append(nameOpts, name.Insecure)
		srcOpts = append(srcOpts, source.WithInsecure())
	}
	ref, err := name.ParseReference(image, nameOpts...)
	if err != nil {
		return nil, fmt.Errorf("image %q: %w", image, err)
	}
	src := source.NewRemote(ref.Context().RegistryStr(), srcOpts...)
	repo := ref.Context().RepositoryStr()
	var d digest.Digest
	if dr, ok := ref.(name.Digest); ok {
		d = digest.Digest(dr.DigestStr())
	} else if d, err = src.Resolve(ctx, repo, ref.Identifier()); err != nil {
		return nil, fmt.Errorf("resolve %s: %w", ref, err)
	}
	ev, err := v.Collect(ctx, src, verifier.Subject{Repository: repo, Digest: d})
	if err != nil {
		return nil, err
	}
	res := &verifyResult{Image: ref.Context().String() + "@" + d.String(), Evidence: ev}
	for _, s := range ev.Signatures {
		res.Verified = res.Verified || s.Verified
	}
	if f.policyDir != "" {
		if res.Decision, err = f.decide(ctx, repo, d, ref, ev); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// decide evaluates the --policy bundle on the evidence, as the gate would
// (without the registry's own scan: give the policy a scan through a
// running server's gate for that).
func (f *verifyFlags) decide(ctx context.Context, repo string, d digest.Digest, ref name.Reference, ev *verifier.Evidence) (*contract.Verdict, error) {
	action := contract.Action(f.action)
	if !action.Valid() {
		return nil, fmt.Errorf("--action %q: want push, promote or admit", f.action)
	}
	images, err := cliBundleImages(f.config, f.insecure)
	if err != nil {
		return nil, err
	}
	eng, err := loadPolicyEngine(ctx, f.policyDir, images, true)
	if err != nil {
		return nil, err
	}
	target := f.target
	if target == "" {
		target = repo
	}
	ns, _, _ := strings.Cut(target, "/")
	subj := contract.Subject{Repository: repo, Digest: d.String(), Reference: ref.String()}
	if _, ok := ref.(name.Tag); ok {
		subj.Tag = ref.Identifier()
	}
	var t contract.Target
	if action == contract.ActionAdmit {
		t.Kubernetes = &contract.KubernetesTarget{Namespace: target, Workload: contract.Workload{Kind: "Pod", Name: "portcullis-verify"}}
	} else {
		t.Registry = &contract.RegistryTarget{Namespace: ns, Repository: target}
	}
	in := policy.NewInput(action, subj, t, contract.Actor{}, ev, nil, time.Now())
	dec, err := eng.Eval(ctx, in)
	if err != nil && dec.Error == "" {
		dec.Error = err.Error()
	}
	return &dec, nil
}

// trust is the --config file's trust plus an authority "cli" from the
// cosign-style flags.
func (f *verifyFlags) trust() (*TrustConfig, error) {
	t := &TrustConfig{}
	if f.config != "" {
		c, err := loadConfig(f.config)
		if err != nil {
			return nil, err
		}
		t = &c.Trust
	}
	cli := AuthorityConfig{Name: "cli", Keys: f.keys}
	keyless := f.identity != "" || f.identityRegexp != "" || f.oidcIssuer != "" || f.oidcIssuerRegexp != ""
	if keyless {
		cli.Keyless = &KeylessConfig{TrustedRoot: f.trustedRoot, Identities: []verifier.Identity{{
			Subject: f.identity, SubjectRegExp: f.identityRegexp, Issuer: f.oidcIssuer, IssuerRegExp: f.oidcIssuerRegexp}}}
	} else if f.trustedRoot != "" && len(f.keys) == 0 {
		return nil, errors.New("--trusted-root needs --certificate-identity and --certificate-oidc-issuer (or their -regexp forms)")
	}
	if len(cli.Keys) > 0 || cli.Keyless != nil {
		t.Authorities = append(t.Authorities, cli)
	}
	if len(t.Authorities) == 0 {
		return nil, errors.New("no trust given: use --key, --certificate-identity/--certificate-oidc-issuer with --trusted-root, or --config")
	}
	return t, nil
}

// printEvidence writes the evidence as tables a person can read.
func printEvidence(w io.Writer, r *verifyResult) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "IMAGE\t%s\n\n", r.Image)
	fmt.Fprintf(tw, "SIGNATURES (%d)\n", len(r.Signatures))
	if len(r.Signatures) > 0 {
		fmt.Fprintln(tw, "  VERIFIED\tSOURCE\tAUTHORITIES\tSIGNER\tDETAIL")
	}
	for _, s := range r.Signatures {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", yesNo(s.Verified), s.Source, orDash(strings.Join(s.Authorities, ",")),
			signerString(s.Signer), orDash(s.Reason))
	}
	fmt.Fprintf(tw, "\nATTESTATIONS (%d)\n", len(r.Attestations))
	if len(r.Attestations) > 0 {
		fmt.Fprintln(tw, "  VERIFIED\tSOURCE\tPREDICATE TYPE\tAUTHORITIES\tSIGNER\tDETAIL")
	}
	for _, a := range r.Attestations {
		detail := a.Reason
		if a.Verified {
			detail = predicateSummary(a.Predicate)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", yesNo(a.Verified), a.Source, orDash(a.PredicateType),
			orDash(strings.Join(a.Authorities, ",")), signerString(a.Signer), orDash(detail))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.Decision != nil {
		fmt.Fprintln(w)
		printPolicyDecision(w, *r.Decision, false, policy.Explanation{})
	}
	return nil
}

func predicateSummary(p attest.Predicate) string {
	switch p := p.(type) {
	case *attest.Provenance:
		s := "builder " + p.BuilderID
		if p.SourceRepository != "" {
			s += ", source " + p.SourceRepository
		}
		return s
	case *attest.SBOM:
		return fmt.Sprintf("%s %s SBOM, %d components, %d licenses", p.Format, p.SpecVersion, len(p.Components), len(p.LicenseIDs))
	case *attest.VulnReport:
		return fmt.Sprintf("%s scan: %d critical, %d high, %d medium, %d low", p.Scanner.Name,
			p.Counts["CRITICAL"], p.Counts["HIGH"], p.Counts["MEDIUM"], p.Counts["LOW"])
	case *attest.VSA:
		return "verification summary: " + p.VerificationResult
	case *attest.Unknown:
		return "predicate kept as raw JSON"
	}
	return ""
}

func signerString(s *contract.Signer) string {
	switch {
	case s == nil:
		return "-"
	case s.KeyID != "":
		return "key " + s.KeyID[:min(12, len(s.KeyID))]
	default:
		return s.Subject + " (" + s.Issuer + ")"
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "NO"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
