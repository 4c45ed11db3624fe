package gate

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/policy/contract"
)

// AuditRecorder records decisions in the tamper-evident audit log.
type AuditRecorder struct{ Log *audit.Log }

// Record implements Recorder.
func (r AuditRecorder) Record(ctx context.Context, d *contract.Decision) error {
	if _, err := r.Log.Append(ctx, AuditRecord(d)); err != nil {
		return fmt.Errorf("record decision: %w", err)
	}
	return nil
}

// AuditRecord summarises a decision for the audit log: who asked what,
// on which evidence, under which policy revision, and the verdict.
func AuditRecord(d *contract.Decision) audit.Record {
	rec := audit.Record{
		Time:   d.Time,
		Action: string(d.Request.Action),
		Subject: audit.Subject{Repository: d.Request.FullRepository(), Digest: d.Request.Digest.String(),
			Tag: d.Request.Tag},
		PolicyRevision: d.Revision,
		Verdict:        audit.VerdictDeny,
		Reasons:        d.Reasons(),
		Error:          d.Error,
		Cached:         d.Cached,
		Enforcement:    d.Request.Enforcement,
	}
	for _, l := range d.Request.LeftBehind {
		rec.LeftBehind = append(rec.LeftBehind, l.String())
	}
	switch {
	case d.Allow:
		rec.Verdict = audit.VerdictAllow
		if d.Note != "" {
			rec.Reasons = append(rec.Reasons, d.Note)
		}
	case d.Error != "":
		rec.Verdict = audit.VerdictError
	}
	for _, w := range d.Warn {
		rec.Warnings = append(rec.Warnings, w.Msg)
	}
	if t := d.Request.Target.Registry; t != nil {
		rec.Target = audit.Target{Repository: t.Repository, Namespace: t.Namespace}
	}
	if t := d.Request.Target.Kubernetes; t != nil {
		rec.Target = audit.Target{Namespace: t.Namespace, Kind: t.Workload.Kind, Name: t.Workload.Name}
	}
	// At admission the identity is the Kubernetes user who asked the API
	// server; elsewhere it is the registry's authenticated identity.
	if id := d.Request.Actor.Identity; id != nil {
		if d.Request.Target.Kubernetes != nil {
			rec.Actor.KubernetesUser = id.Name
		} else {
			rec.Actor.Identity = id.Name
		}
	}
	rec.Actor.ServiceAccount = d.Request.Actor.ServiceAccount
	if d.Input != nil {
		rec.Evidence = evidenceSummary(&d.Input.Evidence)
	}
	if d.VSA != nil {
		rec.Evidence.VSADigest = d.VSA.Manifest.String()
	}
	return rec
}

func evidenceSummary(ev *contract.Evidence) audit.Evidence {
	var out audit.Evidence
	for _, name := range sortedKeys(ev.Signatures.ByAuthority) {
		for _, s := range ev.Signatures.ByAuthority[name] {
			es := audit.EvidenceSigner{Authority: name}
			if s.Signer != nil {
				es.KeyID, es.Subject, es.Issuer = s.Signer.KeyID, s.Signer.Subject, s.Signer.Issuer
			}
			out.Signers = append(out.Signers, es)
		}
	}
	for _, pt := range sortedKeys(ev.Attestations.ByPredicateType) {
		for _, a := range ev.Attestations.ByPredicateType[pt] {
			out.Attestations = append(out.Attestations, audit.Attestation{PredicateType: pt, Digest: a.Manifest})
			if a.Kind == "vsa" && out.VSADigest == "" {
				out.VSADigest = a.Manifest
			}
		}
	}
	if s := ev.Vulnerabilities.Scan; s != nil {
		out.Scan = &audit.Scan{DBVersion: strconv.Itoa(s.DB.Version) + "@" + s.DB.Digest, DBBuiltAt: s.DB.BuiltAt, Counts: s.Counts}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
