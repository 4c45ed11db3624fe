package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/audit/httpapi"
	auditui "github.com/portcullis-dev/portcullis/audit/ui"
	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/internal/httpmetrics"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/registry"
	"github.com/portcullis-dev/portcullis/registry/store"
	"github.com/portcullis-dev/portcullis/webhook"
)

const serveUsage = `usage: portcullis serve [--config FILE] [--addr ADDR] [--data DIR] [--webhook-addr ADDR] [--insecure-no-auth] [--webhook-insecure-no-auth]

Runs the registry, the gate and (with --webhook-addr or webhook.addr) the
Kubernetes admission webhook until SIGINT or SIGTERM (docs/configuration.md).
`

func serveCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newCommand("serve", serveUsage, stdout, stderr)
	fs := c.fs
	configPath := fs.String("config", "", "path to portcullis.yaml (optional)")
	addr := fs.String("addr", "", "listen address (default 127.0.0.1:5000)")
	data := fs.String("data", "", "data directory (default ./portcullis-data)")
	webhookAddr := fs.String("webhook-addr", "", "serve the Kubernetes admission webhook over HTTPS here (e.g. :8443)")
	insecureNoAuth := fs.Bool("insecure-no-auth", false, "serve a non-loopback address without authentication (anyone may push and delete)")
	webhookNoAuth := fs.Bool("webhook-insecure-no-auth", false, "answer anyone on the webhook port (local use only; sets webhook.auth.insecureUnauthenticated)")
	if _, code, ok := c.parse(args, 0, 0); !ok {
		return code
	}
	return c.exit(serve(ctx, stderr, serveFlags{*configPath, *addr, *data, *webhookAddr, *insecureNoAuth, *webhookNoAuth}))
}

// serveFlags are the command line of serve; they override portcullis.yaml.
type serveFlags struct {
	configPath, addr, data, webhookAddr string
	insecureNoAuth, webhookNoAuth       bool
}

// serve runs the server with the flags' values.
func serve(ctx context.Context, stderr io.Writer, flags serveFlags) error {
	cfg, err := loadConfig(flags.configPath)
	if err != nil {
		return err
	}
	if flags.addr != "" {
		cfg.Addr = flags.addr
	}
	if flags.data != "" {
		cfg.Data = flags.data
	}
	if flags.webhookAddr != "" {
		cfg.Webhook.Addr = flags.webhookAddr
	}
	if flags.webhookNoAuth {
		cfg.Webhook.Auth.InsecureUnauthenticated = true
	}
	insecureNoAuth := flags.insecureNoAuth
	if err := cfg.defaults(); err != nil {
		return err
	}
	if err := cfg.checkEffective(); err != nil {
		return err
	}
	log, err := newLogger(cfg.Log, stderr)
	if err != nil {
		return err
	}
	// Install our logger process-wide: libraries that log through the
	// default must not buffer or print elsewhere.
	slog.SetDefault(log)

	if err := dataDir(cfg.Data, true); err != nil {
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
	metrics := prometheus.NewRegistry()
	uploadMetrics, err := newUploadMetrics(metrics)
	if err != nil {
		return err
	}
	// The storage core first; the scanner and the gate are built on it,
	// and the HTTP API last, with them passed in.
	core := store.New(meta, blobs, log)
	scans, err := startScanning(cfg.Scanner, core, log, metrics)
	if err != nil {
		return err
	}
	verifier, err := cfg.Trust.newVerifier(ctx)
	if err != nil {
		return err
	}
	var gateScans gate.Scanner
	if scans.q != nil {
		gateScans = scans.q
	}
	auditKey, err := audit.LoadOrCreateSigner(cfg.Data)
	if err != nil {
		return err
	}
	decisions, err := openAudit(ctx, cfg, append(cfg.Audit.Options(), audit.WithSigner(auditKey))...)
	if err != nil {
		return err
	}
	// Background work that must run once for the whole deployment runs on
	// the replica that leads it (always this one on SQLite).
	gcMetrics, err := newGCMetrics(metrics)
	if err != nil {
		return err
	}
	bgCtx, stopBackground := context.WithCancel(context.Background())
	var background sync.WaitGroup
	background.Go(func() {
		leaderDB(meta).Lead(bgCtx, "audit checkpoints", 5*time.Second, log, func(ctx context.Context) { _ = decisions.Run(ctx) })
	})
	defer func() {
		stopBackground()
		background.Wait()
		if err := decisions.Close(); err != nil {
			log.Error("closing the audit log", "err", err)
		}
	}()
	tr, err := newTracer(ctx, cfg.Tracing)
	if err != nil {
		return err
	}
	defer func() {
		// Flush the spans still queued (after the servers have stopped).
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tr.shutdown(sctx); err != nil {
			log.Warn("tracing: flushing spans", "err", err)
		}
	}()
	remotes, err := webhook.OpenRegistries(cfg.Webhook.Registries)
	if err != nil {
		return err
	}
	recorder, err := newDecisionMetrics(metrics, gate.AuditRecorder{Log: decisions})
	if err != nil {
		return err
	}
	// oci:// bundles of this registry are read from its store, others
	// over the network (docs/policies.md).
	gc := gate.Config{Staging: cfg.Gate.Staging, Protected: cfg.Gate.Protected}
	images := &bundleImages{local: localHosts(cfg.Addr), store: core.Source(), protected: gc.IsProtected, remotes: remotes}
	g, policies, err := newGate(ctx, cfg, core, verifier, gateScans, recorder, remotes.Source, images, log)
	if err != nil {
		return err
	}
	regOpts := []registry.Option{registry.WithLogger(log), registry.WithManifestPushed(scans.pushed), uploadMetrics,
		registry.WithGate(g), registry.WithPromoted(g.Promoted)}
	quotas, err := cfg.Quotas.Open(meta)
	if err != nil {
		return err
	}
	if quotas != nil {
		regOpts = append(regOpts, registry.WithQuota(quotas))
	}
	reg := registry.New(core, regOpts...)
	if cfg.GC.Interval > 0 {
		background.Go(func() {
			leaderDB(meta).Lead(bgCtx, "gc", 5*time.Second, log, func(ctx context.Context) { runGC(ctx, reg, cfg.GC, decisions, gcMetrics, log) })
		})
	}
	if cfg.Webhook.Addr != "" {
		stopWebhook, err := startWebhook(ctx, cfg, cfg.Addr, core, remotes, g, decisions, tr, metrics, log)
		if err != nil {
			return err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = stopWebhook(sctx)
		}()
	}
	if len(cfg.Trust.Authorities) == 0 {
		log.Warn("no trust authorities are configured: nothing can be promoted to protected namespaces until trust.authorities lists a key (docs/configuration.md)")
	}

	mux := http.NewServeMux()
	mux.Handle("/v2/", reg)
	mux.Handle("/v2", reg)
	mux.Handle("POST "+registry.PromotionsPath, reg.PromotionsHandler())
	auditAPI := httpapi.Handler(decisions, log)
	for _, p := range []string{"/portcullis/v1/decisions", "/portcullis/v1/decisions/", "/portcullis/v1/checkpoints", "/portcullis/v1/checkpoints/", "/portcullis/v1/proofs/", "/portcullis/v1/running"} {
		mux.Handle(p, auditAPI)
	}
	auditUI := auditui.Handler(decisions, log)
	mux.Handle(auditui.PathDecisions, auditUI)
	mux.Handle(auditui.PathDecisions+"/", auditUI)
	reloadFailures := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "portcullis_policy_reload_failures_total", Help: "Policy reloads refused (a bundle that could not be fetched or compiled); the previous bundles kept serving.",
	})
	if err := register(metrics, reloadFailures); err != nil {
		return err
	}
	policiesAPI := policy.Handler(policies, policy.HandlerOptions{Caller: callerName, ReloadFailed: reloadFailures.Inc, Logger: log})
	mux.Handle(policy.HandlerPath+"/", policiesAPI)
	mux.Handle(policy.HandlerPath, policiesAPI)
	mux.Handle("GET /metrics", promhttp.HandlerFor(metrics, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.Handle("GET /readyz", readiness(meta.DB(), blobs, policies))
	httpMetrics, err := httpmetrics.New(metrics, registry.RouteLabel)
	if err != nil {
		return err
	}

	access, closeAccess, err := accessControl(ctx, cfg, insecureNoAuth, g, log)
	if err != nil {
		return err
	}
	defer closeAccess()
	ln, err := listen(cfg)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           tr.handler(httpMetrics.Middleware(access.Middleware(mux), log), "registry"),
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       120 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	log.Info("portcullis serving", "addr", ln.Addr().String(), "data", cfg.Data, "storage", cfg.Storage.Driver, "metadata", cfg.Metadata.Driver, "version", strings.TrimPrefix(versionString(), "portcullis "))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing in-flight requests", "timeout", time.Duration(cfg.ShutdownTimeout).String())
	sctx, cancel := context.WithTimeout(context.Background(), time.Duration(cfg.ShutdownTimeout))
	defer cancel()
	defer scans.stop(sctx) // after Shutdown: drain background scans in what is left of the timeout
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("stopped")
	return nil
}

// logLevel is the slog level log.level names.
func logLevel(s string) (slog.Level, error) {
	var level slog.Level
	err := level.UnmarshalText([]byte(s))
	return level, err
}

func newLogger(c LogConfig, w io.Writer) (*slog.Logger, error) {
	level, err := logLevel(c.Level)
	if err != nil {
		return nil, fmt.Errorf("config: log.level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(httpmetrics.LogHandler(slog.NewJSONHandler(w, opts))), nil
	}
	return slog.New(httpmetrics.LogHandler(slog.NewTextHandler(w, opts))), nil
}
