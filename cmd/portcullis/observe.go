package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/internal/sqldb"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/policy/contract"
	"github.com/portcullis-dev/portcullis/registry"
	"github.com/portcullis-dev/portcullis/registry/blobstore"
	"github.com/portcullis-dev/portcullis/webhook"
)

// readiness answers /readyz: 200 only when the metadata database and the
// blob storage answer within 2 s and every policy set has a compiled
// engine; otherwise 503 with what failed, so a load balancer sends no
// traffic to a replica that would fail it.
func readiness(db *sqldb.DB, blobs *blobstore.Store, ps *policy.Set) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		ctx, cancel := context.WithTimeout(req.Context(), 2*time.Second)
		defer cancel()
		var failed []string
		if err := db.Ping(ctx); err != nil {
			failed = append(failed, fmt.Sprintf("metadata database: %v", err))
		}
		if err := blobs.Ready(ctx); err != nil {
			failed = append(failed, err.Error())
		}
		if b, ok := ps.Lookup(policy.DefaultSetName); !ok || b.Engine() == nil {
			failed = append(failed, "policies: no compiled default policy")
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if len(failed) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, strings.Join(failed, "\n")+"\n")
			return
		}
		_, _ = io.WriteString(w, "ready\n")
	})
}

// decisionMetrics counts and times the gate's decisions as they are
// recorded (every decision is, before it is returned).
type decisionMetrics struct {
	next      gate.Recorder
	decisions *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	policy    prometheus.Histogram
	evidence  *prometheus.CounterVec
}

func newDecisionMetrics(reg prometheus.Registerer, next gate.Recorder) (*decisionMetrics, error) {
	m := &decisionMetrics{
		next: next,
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_decisions_total", Help: "Gate decisions by action (promote, push, admit) and verdict (allow, deny, error).",
		}, []string{"action", "verdict"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "portcullis_decision_duration_seconds", Help: "Time to decide: evidence, scan and policy.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 14),
		}, []string{"action"}),
		policy: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "portcullis_policy_eval_duration_seconds", Help: "Rego policy evaluation latency.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 14),
		}),
		evidence: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_evidence_cache_total", Help: "Verified-evidence lookups by result (hit, miss); hit / (hit + miss) is the cache hit ratio.",
		}, []string{"result"}),
	}
	if err := register(reg, m.decisions, m.latency, m.policy, m.evidence); err != nil {
		return nil, err
	}
	return m, nil
}

// Record implements gate.Recorder.
func (m *decisionMetrics) Record(ctx context.Context, d *contract.Decision) error {
	err := m.next.Record(ctx, d)
	verdict := "allow"
	switch {
	case err != nil || d.Error != "":
		verdict = "error"
	case !d.Allow:
		verdict = "deny"
	}
	action := string(d.Request.Action)
	if !d.Request.Action.Valid() {
		action = "invalid"
	}
	m.decisions.WithLabelValues(action, verdict).Inc()
	m.latency.WithLabelValues(action).Observe(d.Duration.Seconds())
	if d.Input != nil { // decided by policy (also on a VSA)
		m.policy.Observe(d.PolicyDuration.Seconds())
		switch {
		case d.VSA != nil:
			// The evidence came from a verification summary: the
			// verified-evidence cache was not asked.
		case d.CachedEvidence:
			m.evidence.WithLabelValues("hit").Inc()
		default:
			m.evidence.WithLabelValues("miss").Inc()
		}
	}
	return err
}

// uploadMetrics time blob uploads from session start to the stored blob.
func newUploadMetrics(reg prometheus.Registerer) (registry.Option, error) {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "portcullis_blob_upload_duration_seconds", Help: "Blob uploads, from the session's start to the stored blob.",
		Buckets: prometheus.ExponentialBuckets(0.001, 3, 14),
	})
	if err := register(reg, h); err != nil {
		return nil, err
	}
	return registry.WithUploadFinished(func(_ context.Context, _ string, _ digest.Digest, _ int64, took time.Duration) {
		h.Observe(took.Seconds())
	}), nil
}

// registerCacheStats exports the webhook's decision cache counters.
func registerCacheStats(reg prometheus.Registerer, stats func() webhook.CacheStats) error {
	return register(reg,
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "portcullis_admission_cache_hits_total", Help: "Admission decisions answered from the webhook's decision cache.",
		}, func() float64 { return float64(stats().Hits) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "portcullis_admission_cache_misses_total", Help: "Admission decisions the webhook's decision cache did not have.",
		}, func() float64 { return float64(stats().Misses) }),
	)
}

// register registers every collector, stopping at the first error.
func register(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
