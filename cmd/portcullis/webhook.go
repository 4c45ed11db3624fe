package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/registry"
	"github.com/portcullis-dev/portcullis/webhook"
)

// WebhookConfig is the "webhook" section of portcullis.yaml: the
// Kubernetes admission webhook, served over TLS beside the registry.
type WebhookConfig struct {
	// Addr is the HTTPS listen address, e.g. ":8443"; empty: no webhook.
	// Flag: --webhook-addr.
	Addr string `json:"addr,omitempty"`
	// CertFile and KeyFile are the serving certificate, reloaded when they
	// change. Without them a self-signed CA and certificate are written to
	// <data>/webhook (give ca.crt to the API server as caBundle).
	CertFile string `json:"certFile,omitempty"`
	KeyFile  string `json:"keyFile,omitempty"`
	// Timeout is the deadline for one review (default 8s, below the API
	// server's 10s).
	Timeout Duration `json:"timeout,omitempty"`
	// DefaultMode is enforce (default), warn or off; Namespaces sets modes
	// per namespace; Exempt namespaces are never checked (default
	// kube-system).
	DefaultMode webhook.Mode            `json:"defaultMode,omitempty"`
	Namespaces  map[string]webhook.Mode `json:"namespaces,omitempty"`
	Exempt      []string                `json:"exempt,omitempty"`
	// BreakGlass lists the namespaces where the break-glass annotation is
	// honoured, each until a time.
	BreakGlass []webhook.BreakGlassWindow `json:"breakGlass,omitempty"`
}

// localResolver resolves image references of this registry in-process.
// Images of other registries are refused (fail closed): the gate reads
// evidence from this registry only.
type localResolver struct {
	reg   *registry.Registry
	hosts map[string]bool
}

func (r localResolver) Resolve(ctx context.Context, image string) (string, digest.Digest, error) {
	ref, err := name.ParseReference(image)
	if err != nil {
		return "", "", fmt.Errorf("image %q: %w", image, err)
	}
	if !r.hosts[ref.Context().RegistryStr()] {
		return "", "", fmt.Errorf("image %s is not in this registry: only images promoted through Portcullis can be admitted", image)
	}
	repo := ref.Context().RepositoryStr()
	if d, ok := ref.(name.Digest); ok {
		return repo, digest.Digest(d.DigestStr()), nil
	}
	d, err := r.reg.Source().Resolve(ctx, repo, ref.Identifier())
	if err != nil {
		return "", "", fmt.Errorf("resolve %s: %w", image, err)
	}
	return repo, d, nil
}

// startWebhook serves the admission webhook over TLS until ctx ends; the
// returned function shuts it down.
func startWebhook(ctx context.Context, cfg *Config, registryAddr string, reg *registry.Registry, g *gate.Gate, decisions *audit.Log, log *slog.Logger) (func(context.Context) error, error) {
	wc := cfg.Webhook
	hosts := map[string]bool{registryAddr: true}
	if host, port, err := net.SplitHostPort(registryAddr); err == nil {
		for _, h := range []string{"localhost", "127.0.0.1", host} {
			hosts[net.JoinHostPort(h, port)] = true
		}
	}
	h, err := webhook.New(webhook.Config{
		Timeout: time.Duration(wc.Timeout), DefaultMode: wc.DefaultMode, Namespaces: wc.Namespaces, Exempt: wc.Exempt,
		BreakGlass: wc.BreakGlass, Logger: log,
		OnBreakGlass: func(ctx context.Context, bg webhook.BreakGlass) {
			rec := audit.Record{Action: audit.ActionBreakGlass, Verdict: audit.VerdictAllow, BreakGlassJustification: bg.Justification,
				Target: audit.Target{Namespace: bg.Namespace, Kind: bg.Kind, Name: bg.Name}, Actor: audit.Actor{KubernetesUser: bg.User}}
			for _, o := range bg.Overridden {
				rec.Subject = audit.Subject{Repository: o.Repository, Digest: o.Digest.String()}
				rec.Reasons = o.Reasons
				if _, err := decisions.Append(ctx, rec); err != nil {
					log.ErrorContext(ctx, "recording a break-glass admission failed", "err", err)
				}
			}
		},
	}, g, localResolver{reg: reg, hosts: hosts})
	if err != nil {
		return nil, err
	}
	certFile, keyFile := wc.CertFile, wc.KeyFile
	if certFile == "" && keyFile == "" {
		host, _, _ := net.SplitHostPort(wc.Addr)
		f, err := webhook.SelfSigned(filepath.Join(cfg.Data, "webhook"), []string{"localhost", "127.0.0.1", host}, time.Now())
		if err != nil {
			return nil, err
		}
		certFile, keyFile = f.Cert, f.Key
		log.Info("webhook: self-signed certificate", "caBundle", f.CA)
	}
	certs, err := webhook.NewCertReloader(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", wc.Addr)
	if err != nil {
		return nil, fmt.Errorf("webhook: %w", err)
	}
	srv := &http.Server{Handler: h, TLSConfig: certs.TLSConfig(), ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) }}
	go func() {
		if err := srv.Serve(tls.NewListener(ln, srv.TLSConfig)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("webhook stopped", "err", err)
		}
	}()
	log.Info("webhook serving", "addr", ln.Addr().String())
	return srv.Shutdown, nil
}
