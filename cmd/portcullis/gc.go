package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/registry"
	"github.com/portcullis-dev/portcullis/registry/store"
)

// admittedSince answers the collector's keepAdmittedWithin rules from the
// decision log (nil: no log, no rule needs it).
func admittedSince(decisions *audit.Log) func(ctx context.Context, d digest.Digest, since time.Time) (bool, error) {
	if decisions == nil {
		return nil
	}
	return func(ctx context.Context, d digest.Digest, since time.Time) (bool, error) {
		return decisions.AdmittedSince(ctx, d.String(), since)
	}
}

// gcMetrics are the collector's Prometheus metrics.
type gcMetrics struct {
	duration prometheus.Histogram
	deleted  *prometheus.CounterVec
	bytes    prometheus.Counter
}

func newGCMetrics(reg prometheus.Registerer) (*gcMetrics, error) {
	m := &gcMetrics{
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "portcullis_gc_duration_seconds", Help: "Duration of garbage collections.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 10),
		}),
		deleted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_gc_deleted_total", Help: "Items garbage collection deleted, by kind.",
		}, []string{"kind"}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "portcullis_gc_reclaimed_bytes_total", Help: "Blob bytes garbage collection deleted.",
		}),
	}
	if err := register(reg, m.duration, m.deleted, m.bytes); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *gcMetrics) observe(rep *registry.GCReport) {
	m.duration.Observe(rep.Duration.Seconds())
	m.deleted.WithLabelValues("tag").Add(float64(len(rep.Tags)))
	m.deleted.WithLabelValues("manifest").Add(float64(len(rep.Manifests)))
	m.deleted.WithLabelValues("link").Add(float64(len(rep.Links)))
	m.deleted.WithLabelValues("blob").Add(float64(len(rep.Blobs)))
	m.deleted.WithLabelValues("upload").Add(float64(len(rep.Uploads)))
	m.bytes.Add(float64(rep.Bytes))
}

// runGC collects every interval while ctx lasts (serve runs it under the
// leader lock, so one replica collects).
func runGC(ctx context.Context, reg *registry.Registry, cfg registry.GCConfig, decisions *audit.Log, m *gcMetrics, log *slog.Logger) {
	t := time.NewTicker(cfg.Interval.D())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rep, err := reg.CollectGarbage(ctx, cfg.Options(admittedSince(decisions), false))
		if err != nil {
			log.Error("garbage collection", "err", err)
			continue
		}
		m.observe(rep)
		log.Info("garbage collected", "tags", len(rep.Tags), "manifests", len(rep.Manifests), "links", len(rep.Links),
			"blobs", len(rep.Blobs), "bytes", rep.Bytes, "uploads", len(rep.Uploads), "skipped", rep.Skipped, "duration", rep.Duration)
	}
}

const gcUsage = `usage: portcullis gc [--config FILE] [--data DIR] [--grace-period D] [--dry-run] [--json]

Deletes what nothing references, from the configured metadata database and
blob storage, while replicas keep serving: untagged manifests (kept while an
index or a live subject references them), blob links no manifest uses, blobs
no repository links, and abandoned uploads, all older than gc.gracePeriod;
and the tags gc.retention rules do not keep. --dry-run lists what would go
and how many bytes.

flags:
`

func gcCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newCommand("gc", gcUsage, stdout, stderr)
	configPath := c.fs.String("config", "", "path to portcullis.yaml (optional)")
	data := c.fs.String("data", "", "data directory (default ./portcullis-data)")
	dryRun := c.fs.Bool("dry-run", false, "list what would be deleted; delete nothing")
	asJSON := c.fs.Bool("json", false, "print the report as JSON")
	grace := c.fs.Duration("grace-period", 0, "override gc.gracePeriod (0s: protect nothing)")
	if _, code, ok := c.parse(args, 0, 0); !ok {
		return code
	}
	return c.exit(collectOnce(ctx, c, *configPath, *data, *dryRun, *asJSON, grace))
}

// collectOnce is gc once its flags are parsed; grace overrides gc.gracePeriod
// when the flag was given.
func collectOnce(ctx context.Context, c *command, configPath, data string, dryRun, asJSON bool, grace *time.Duration) error {
	stdout := c.stdout
	cfg, err := offlineConfig(configPath, data)
	if err != nil {
		return err
	}
	if c.set("grace-period") {
		if *grace < 0 {
			return fmt.Errorf("--grace-period %s is negative", *grace)
		}
		g := Duration(*grace)
		cfg.GC.GracePeriod = &g
	}
	if err := serverMetadata(cfg); err != nil {
		return err
	}
	meta, err := openMetadata(ctx, cfg)
	if err != nil {
		return err
	}
	defer meta.Close()
	blobs, err := openBlobs(ctx, cfg)
	if err != nil {
		return err
	}
	var decisions *audit.Log
	if cfg.GC.NeedsAdmissions() {
		key, err := audit.LoadOrCreateSigner(cfg.Data)
		if err != nil {
			return err
		}
		if decisions, err = openAudit(ctx, cfg, audit.WithSigner(key)); err != nil {
			return err
		}
		defer decisions.Close()
	}
	reg := registry.New(store.New(meta, blobs, nil))
	rep, err := reg.CollectGarbage(ctx, cfg.GC.Options(admittedSince(decisions), dryRun))
	if err != nil {
		return fmt.Errorf("gc: %w", err)
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	verb := "deleted"
	if rep.DryRun {
		verb = "would delete"
	}
	for _, l := range [][2]any{{"tag", rep.Tags}, {"manifest", rep.Manifests}, {"link", rep.Links}, {"blob", rep.Blobs}, {"upload", rep.Uploads}} {
		for _, x := range l[1].([]string) {
			fmt.Fprintf(stdout, "%s %s %s\n", verb, l[0], x)
		}
	}
	fmt.Fprintf(stdout, "%s %d tags, %d manifests, %d links, %d blobs (%d bytes), %d uploads; %d skipped; took %s\n",
		verb, len(rep.Tags), len(rep.Manifests), len(rep.Links), len(rep.Blobs), rep.Bytes, len(rep.Uploads), rep.Skipped, rep.Duration.Round(time.Millisecond))
	return nil
}
