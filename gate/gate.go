// Package gate is the single orchestrator of decisions: it collects and
// verifies the evidence for a digest, asks policy, records the decision
// (always, also on error), and plans what a write into a protected
// namespace may do. It fails closed: anything that cannot be checked is
// handed to policy as a check error, which the built-in policies deny.
package gate

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/opencontainers/go-digest"
	"go.opentelemetry.io/otel/attribute"

	"github.com/portcullis-dev/portcullis/attest"
	"github.com/portcullis-dev/portcullis/internal/panics"
	"github.com/portcullis-dev/portcullis/internal/tracing"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/policy/contract"
	"github.com/portcullis-dev/portcullis/scanner"
	"github.com/portcullis-dev/portcullis/verifier"
	"github.com/portcullis-dev/portcullis/verifier/source"
)

// Store is what the gate needs of the storage core it guards
// (*store.Store of package registry/store): reads, and its own artifacts.
// The gate never calls the HTTP API.
type Store interface {
	// Source reads manifests, referrers and blobs in-process.
	Source() source.Source
	// ManifestRepositories lists the repositories holding manifest d.
	ManifestRepositories(ctx context.Context, d digest.Digest) ([]string, error)
	// ManifestParents lists the indexes in repo that reference d.
	ManifestParents(ctx context.Context, repo string, d digest.Digest) ([]digest.Digest, error)
	// PutArtifact stores blobs and then a manifest (by digest) into repo.
	PutArtifact(ctx context.Context, repo, mediaType string, manifest []byte, blobs ...[]byte) (digest.Digest, error)
}

// Scanner gives the registry's own vulnerability scan of an image (from
// cache when fresh; its package inventory is the SBOM policy sees when no
// SBOM is attested). [scanner.Queue] is one.
type Scanner interface {
	Report(ctx context.Context, repo string, d digest.Digest) (*scanner.Report, error)
}

// Recorder keeps every decision. A decision that cannot be recorded is
// not acted upon.
type Recorder interface {
	Record(ctx context.Context, d *contract.Decision) error
}

// Options are the gate's collaborators.
type Options struct {
	Store    Store
	Verifier *verifier.Verifier
	Policies *policy.Set
	// Scanner is optional: without it policy sees no scan report.
	Scanner Scanner
	// Remote gives a source for another registry's images at admission;
	// nil, or an error, and such images cannot be checked (a check error,
	// which the built-in policies deny).
	Remote func(registry string) (source.Source, error)
	// Recorder is optional in tests; a server always has one.
	Recorder Recorder
	// VSAKey signs verification summary attestations on promotion; nil:
	// none are written.
	VSAKey crypto.Signer
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Gate decides. It is safe for concurrent use.
type Gate struct {
	cfg   Config
	o     Options
	log   *slog.Logger
	cache *evidenceCache
	vsa   *vsaSigner
}

// New returns a gate over cfg.
func New(cfg Config, o Options) (*Gate, error) {
	cfg.bounds()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("gate: %w", err)
	}
	if o.Store == nil || o.Verifier == nil || o.Policies == nil {
		return nil, errors.New("gate: a store, a verifier and policies are required")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	g := &Gate{cfg: cfg, o: o, log: o.Logger, cache: newEvidenceCache(cfg.CacheSize, cfg.CacheTTL.D(), o.Now)}
	if o.VSAKey != nil {
		v, err := newVSASigner(o.VSAKey)
		if err != nil {
			return nil, fmt.Errorf("gate: %w", err)
		}
		g.vsa = v
	}
	return g, nil
}

// Evaluate decides on req. The decision is recorded before it is
// returned; if recording fails the decision is returned as a denial with
// the error. Allow is true only when everything succeeded and policy
// allowed. A panic while deciding is a recorded denial whose error says so
// (I3, docs/gate.md), never a crash.
func (g *Gate) Evaluate(ctx context.Context, req contract.Request) (d *contract.Decision) {
	ctx, span := tracing.Start(ctx, "gate.Evaluate", attribute.String("portcullis.action", string(req.Action)),
		attribute.String("portcullis.repository", req.FullRepository()), attribute.String("portcullis.digest", req.Digest.String()))
	start := g.o.Now()
	if err := panics.Do(ctx, g.log, "gate.Evaluate", func() error { d = g.decide(ctx, req, start); return nil }); err != nil {
		d = g.internalDenial(req, start, err)
	}
	defer func() {
		span.SetAttributes(attribute.Bool("portcullis.allow", d.Allow), attribute.Int("portcullis.deny", len(d.Deny)),
			attribute.String("portcullis.policy_set", d.PolicySet), attribute.String("portcullis.policy_revision", d.Revision),
			attribute.Bool("portcullis.cached_evidence", d.CachedEvidence))
		var err error
		if d.Error != "" {
			err = errors.New(d.Error)
		}
		tracing.End(span, err)
	}()
	g.record(ctx, d, start)
	return d
}

// RecordFailure records, and returns, the denial of req because deciding
// it failed with err outside Evaluate (a panic in the webhook or in a write
// the gate plans): every denial has its record (I3).
func (g *Gate) RecordFailure(ctx context.Context, req contract.Request, err error) *contract.Decision {
	start := g.o.Now()
	d := g.internalDenial(req, start, err)
	g.record(ctx, d, start)
	return d
}

// RecordCached records, and returns, the decision on req that an earlier
// decision (from a decision cache) answers: its verdict, evidence and
// revisions, with req's time, target, actor and enforcement. Every admission is a
// record, cached or not; one that cannot be recorded is a denial.
func (g *Gate) RecordCached(ctx context.Context, req contract.Request, earlier *contract.Decision) *contract.Decision {
	start := g.o.Now()
	d := *earlier
	d.Time, d.Request, d.Cached = start.UTC(), req, true
	g.record(ctx, &d, start)
	return &d
}

// RecordUnchecked records, and returns, the admission of req without a
// decision, for why (the webhook's allow-unsafe failure mode): an allow
// whose warning says it was not checked.
func (g *Gate) RecordUnchecked(ctx context.Context, req contract.Request, why string) *contract.Decision {
	start := g.o.Now()
	d := &contract.Decision{Time: start.UTC(), Request: req, TrustRevision: g.o.Verifier.Revision(),
		Verdict: contract.Verdict{Allow: true, Deny: []contract.Message{}, Warn: []contract.Message{{Msg: why}}}}
	g.record(ctx, d, start)
	return d
}

// internalDenial is the decision on req when deciding failed with err.
func (g *Gate) internalDenial(req contract.Request, start time.Time, err error) *contract.Decision {
	msg := err.Error()
	if pe := (*panics.Error)(nil); errors.As(err, &pe) {
		msg = "the request is denied: " + msg
	}
	return &contract.Decision{Time: start.UTC(), Request: req, TrustRevision: g.o.Verifier.Revision(),
		Verdict: contract.Verdict{Deny: []contract.Message{}, Warn: []contract.Message{}, Error: msg}}
}

// record sets d's duration, records it (a decision that cannot be recorded
// is a denial) and logs it.
func (g *Gate) record(ctx context.Context, d *contract.Decision, start time.Time) {
	d.Duration = g.o.Now().Sub(start)
	if g.o.Recorder != nil {
		if err := panics.Do(ctx, g.log, "gate.Record", func() error { return g.o.Recorder.Record(ctx, d) }); err != nil {
			d.Allow = false
			d.Error = joinErr(d.Error, fmt.Sprintf("the decision could not be recorded: %v", err))
		}
	}
	g.log.LogAttrs(ctx, slog.LevelInfo, "gate decision",
		slog.String("action", string(d.Request.Action)), slog.String("repository", d.Request.Repository),
		slog.String("digest", d.Request.Digest.String()), slog.Bool("allow", d.Allow),
		slog.Int("deny", len(d.Deny)), slog.String("policySet", d.PolicySet), slog.String("revision", d.Revision),
		slog.Duration("duration", d.Duration), slog.String("error", d.Error))
}

func joinErr(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

func (g *Gate) decide(ctx context.Context, req contract.Request, now time.Time) *contract.Decision {
	d := &contract.Decision{Time: now.UTC(), Request: req, TrustRevision: g.o.Verifier.Revision()}
	if !req.Action.Valid() || req.Digest.Validate() != nil || req.Repository == "" || (req.Registry != "" && req.Action != contract.ActionAdmit) {
		d.Error = fmt.Sprintf("invalid request: action %q, %s@%s", req.Action, req.Repository, req.Digest)
		return d
	}
	// A check that panicked denies whatever the policy makes of a check
	// error (I3).
	var internal error
	defer func() {
		if internal != nil {
			d.Allow = false
			d.Error = joinErr(d.Error, "the request is denied: "+internal.Error())
		}
	}()
	ectx, cancel := context.WithTimeout(ctx, g.cfg.EvidenceTimeout.D())
	defer cancel()
	subject := contract.Subject{Repository: req.FullRepository(), Digest: req.Digest.String(), Tag: req.Tag, Reference: req.Reference}
	// The verification summary stands in for collecting and verifying the
	// signatures and attestations, never for the scan or policy: those
	// are taken now, on this request's own input, either way (I4).
	if proof, verified, why := g.fastPath(ectx, req, now); proof != nil {
		d.VSA = proof
		report, opts, serr := g.scan(ectx, req.Registry, req.Repository, req.Digest)
		internal = panicked(internal, serr)
		d.Input = policy.NewInputWithEvidence(req.Action, subject, req.Target, req.Actor, *verified, report, now, opts...)
	} else {
		if why != "" {
			g.log.DebugContext(ctx, "gate: no fast path", "repository", req.Repository, "digest", req.Digest, "why", why)
		}
		var opts []policy.InputOption
		ev, cached, err := g.evidence(ectx, req.Registry, req.Repository, req.Digest)
		d.CachedEvidence = cached
		internal = panicked(internal, err)
		if err != nil {
			// NewInput records a nil evidence as a check error.
			ev = nil
			opts = append(opts, policy.WithCheckError("evidence", err))
		}
		report, scanOpts, serr := g.scan(ectx, req.Registry, req.Repository, req.Digest)
		internal = panicked(internal, serr)
		d.Input = policy.NewInput(req.Action, subject, req.Target, req.Actor, ev, report, now, append(opts, scanOpts...)...)
	}
	pstart := g.o.Now()
	pd, err := g.o.Policies.Eval(ctx, d.Input)
	d.PolicyDuration = g.o.Now().Sub(pstart)
	d.Verdict = pd
	if err != nil {
		d.Allow = false
		if d.Error == "" {
			d.Error = err.Error()
		}
	}
	return d
}

// scan asks the scanner for the report of an image; a scan that could not
// be made is a check error in opts, and err is the scanner's error.
func (g *Gate) scan(ctx context.Context, registry, repo string, dg digest.Digest) (report *scanner.Report, opts []policy.InputOption, err error) {
	switch {
	case g.o.Scanner == nil:
	case registry != "":
		opts = append(opts, policy.WithCheckError("scan", fmt.Errorf("%s/%s@%s: images of other registries are not scanned", registry, repo, dg)))
	default:
		sctx, span := tracing.Start(ctx, "gate.Scan")
		var rep *scanner.Report
		err = panics.Do(sctx, g.log, "gate.Scan", func() (err error) { rep, err = g.o.Scanner.Report(sctx, repo, dg); return err })
		tracing.End(span, err)
		if err != nil {
			opts = append(opts, policy.WithCheckError("scan", err))
		}
		report = rep
	}
	return report, opts, err
}

// panicked adds err to internal if it is a recovered panic (here or in an
// attest parser).
func panicked(internal, err error) error {
	if pe := (*panics.Error)(nil); errors.As(err, &pe) || errors.Is(err, attest.ErrInternal) {
		return errors.Join(internal, err)
	}
	return internal
}

// evidence collects the verified evidence of repo@d, reusing a cached
// result while the stored evidence and the trust configuration are
// unchanged. Errors are never cached.
func (g *Gate) evidence(ctx context.Context, registry, repo string, d digest.Digest) (*verifier.Evidence, bool, error) {
	src := g.o.Store.Source()
	key := repo
	if registry != "" {
		if g.o.Remote == nil {
			return nil, false, fmt.Errorf("%s/%s@%s: images of other registries cannot be checked here", registry, repo, d)
		}
		var err error
		if src, err = g.o.Remote(registry); err != nil {
			return nil, false, fmt.Errorf("%s/%s@%s: %w", registry, repo, d, err)
		}
		key = registry + "/" + repo
	}
	fp, err := fingerprint(ctx, src, repo, d)
	if err != nil {
		return nil, false, fmt.Errorf("evidence of %s@%s: %w", key, d, err)
	}
	trust := g.o.Verifier.Revision()
	if ev, ok := g.cache.get(trust, key, d, fp); ok {
		return ev, true, nil
	}
	ev, err := g.o.Verifier.Collect(ctx, src, verifier.Subject{Repository: repo, Digest: d})
	if err != nil {
		return nil, false, err
	}
	g.cache.put(trust, key, d, fp, ev)
	return ev, false, nil
}

// RevisionFor returns the revision of the policy that decides for t now
// (the webhook's decision cache keys decisions by it).
func (g *Gate) RevisionFor(t contract.Target) string {
	return g.o.Policies.For(t).Engine().Revision()
}

// TrustRevision returns the revision of the trust configuration evidence
// is verified under ([verifier.Verifier.Revision]); the webhook's decision
// cache keys decisions by it.
func (g *Gate) TrustRevision() string { return g.o.Verifier.Revision() }
