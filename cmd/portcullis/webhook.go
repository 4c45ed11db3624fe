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
	"reflect"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/registry/store"
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
	CertFile string `json:"certFile,omitempty" yamlconf:"path"`
	KeyFile  string `json:"keyFile,omitempty" yamlconf:"path"`
	// Auth says who may call the webhook: the API server only, by its
	// client certificate (clientCAFile, clientNames) or a bearer token
	// (tokenFile). Required; insecureUnauthenticated (flag
	// --webhook-insecure-no-auth) is for local use (docs/webhook.md).
	Auth webhook.AuthConfig `json:"auth,omitempty"`
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
	// FailureMode is deny (default) or allow-unsafe: what happens to an
	// image whose check did not finish within Timeout.
	FailureMode webhook.FailureMode `json:"failureMode,omitempty"`
	// CacheSize bounds the decision cache (default 10000; negative: no
	// cache); CacheAllowTTL and CacheDenyTTL bound how long an allow and a
	// denial are reused (defaults 5m and 30s).
	CacheSize     int      `json:"cacheSize,omitempty"`
	CacheAllowTTL Duration `json:"cacheAllowTTL,omitempty"`
	CacheDenyTTL  Duration `json:"cacheDenyTTL,omitempty"`
	// Kubernetes is the API server the namespaces' labels are read from
	// (the portcullis.dev/mode label, policy sets' namespaceSelector);
	// nil: labels are not read.
	Kubernetes *KubernetesConfig `json:"kubernetes,omitempty"`
	// ModeLabelRelaxes lets the portcullis.dev/mode label make a namespace
	// less strict than defaultMode; by default it only tightens
	// (docs/webhook.md).
	ModeLabelRelaxes bool `json:"modeLabelRelaxes,omitempty"`
	// Registries are the other registries whose images may be admitted:
	// their tags are resolved, and their signatures and attestations read,
	// over the network with go-containerregistry. Images of any other
	// registry are denied.
	Registries []webhook.RemoteRegistry `json:"registries,omitempty"`
}

// KubernetesConfig says how the webhook reaches the API server.
// Exactly one of Kubeconfig and InCluster.
type KubernetesConfig struct {
	// Kubeconfig is a kubeconfig file (its current context); a relative
	// path is relative to portcullis.yaml's directory.
	Kubeconfig string `json:"kubeconfig,omitempty" yamlconf:"path"`
	// InCluster uses the pod's service account.
	InCluster bool `json:"inCluster,omitempty"`
	// SyncTimeout bounds the wait, at start, for the namespace informer's
	// first list (default 30s): a server that cannot read namespaces does
	// not start.
	SyncTimeout Duration `json:"syncTimeout,omitempty"`
}

// restConfig is the client configuration k names.
func (k *KubernetesConfig) restConfig() (*rest.Config, error) {
	switch {
	case k.Kubeconfig != "" && k.InCluster:
		return nil, errors.New("webhook.kubernetes: set kubeconfig or inCluster, not both")
	case k.Kubeconfig != "":
		c, err := clientcmd.BuildConfigFromFlags("", k.Kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("webhook.kubernetes.kubeconfig: %w", err)
		}
		return c, nil
	case k.InCluster:
		c, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("webhook.kubernetes.inCluster: %w", err)
		}
		return c, nil
	}
	return nil, errors.New("webhook.kubernetes: set kubeconfig or inCluster: true")
}

// startNamespaces starts the namespace informer and waits for its first
// sync.
func startNamespaces(ctx context.Context, k *KubernetesConfig, log *slog.Logger) (*webhook.Namespaces, error) {
	rc, err := k.restConfig()
	if err != nil {
		return nil, err
	}
	n, err := webhook.NewNamespaces(rc, log)
	if err != nil {
		return nil, err
	}
	n.Start(ctx)
	timeout := time.Duration(k.SyncTimeout)
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	if err := n.WaitForSync(ctx, timeout); err != nil {
		return nil, fmt.Errorf("webhook.kubernetes (%s): %w", rc.Host, err)
	}
	log.Info("webhook: reading namespace labels", "apiServer", rc.Host)
	return n, nil
}

// handlerConfig is the part of webhook.Config that portcullis.yaml sets.
func (wc *WebhookConfig) handlerConfig() webhook.Config {
	return webhook.Config{
		Timeout: time.Duration(wc.Timeout), FailureMode: wc.FailureMode, DefaultMode: wc.DefaultMode,
		Namespaces: wc.Namespaces, Exempt: wc.Exempt, BreakGlass: wc.BreakGlass, ModeLabelRelaxes: wc.ModeLabelRelaxes,
		CacheSize: wc.CacheSize, CacheAllowTTL: time.Duration(wc.CacheAllowTTL), CacheDenyTTL: time.Duration(wc.CacheDenyTTL),
	}
}

// checkEffective refuses settings that cannot take effect: webhook
// settings while the webhook is off, and policy sets that select
// namespaces by label while nothing reads labels.
func (c *Config) checkEffective() error {
	wc := c.Webhook
	if wc.Addr == "" {
		v := reflect.ValueOf(wc)
		for i := range v.NumField() {
			f := v.Type().Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			// registries also serve `portcullis verify` and the gate.
			if name == "addr" || name == "registries" || v.Field(i).IsZero() {
				continue
			}
			return c.at("webhook."+name, fmt.Errorf("webhook.%s is set but the webhook is off (set webhook.addr or --webhook-addr)", name))
		}
	}
	if d := c.Policies.Default; d.Registry != nil || d.Kubernetes != nil {
		return c.at("policies.default", errors.New("policies.default decides for every target no set matches: its registry and kubernetes matchers would be ignored (remove them, or make it a set)"))
	}
	for i, s := range c.Policies.Sets {
		if s.Kubernetes == nil || s.Kubernetes.NamespaceSelector == nil {
			continue
		}
		if len(s.Kubernetes.NamespaceSelector.MatchLabels) == 0 {
			return c.at(fmt.Sprintf("policies.sets[%d].kubernetes.namespaceSelector", i), fmt.Errorf("policies.sets[%d] (%s) has a kubernetes.namespaceSelector without matchLabels, which selects no namespace: give it labels or remove it", i, s.Name))
		}
		if wc.Addr == "" || wc.Kubernetes == nil {
			return c.at(fmt.Sprintf("policies.sets[%d].kubernetes.namespaceSelector", i), fmt.Errorf("policies.sets[%d] (%s) has a kubernetes.namespaceSelector, but no namespace labels are read: set webhook.kubernetes (kubeconfig or inCluster) and webhook.addr", i, s.Name))
		}
	}
	return nil
}

// startWebhook serves the admission webhook over TLS until ctx ends; the
// returned function shuts it down.
func startWebhook(ctx context.Context, cfg *Config, registryAddr string, core *store.Store, remotes webhook.Registries, g *gate.Gate, decisions *audit.Log, tr *tracer, metrics prometheus.Registerer, log *slog.Logger) (func(context.Context) error, error) {
	wc := cfg.Webhook
	resolver := &webhook.ImageResolver{Local: core.Source(), LocalHosts: localHosts(registryAddr), Remotes: remotes}
	auth, err := webhook.NewAuth(wc.Auth)
	if err != nil {
		return nil, err
	}
	if wc.Auth.ClientCAFile != "" && len(wc.Auth.ClientNames) == 0 {
		log.Warn("webhook.auth.clientNames is empty: every client certificate that webhook.auth.clientCAFile issued is accepted as the API server; with a CA that issues other certificates (the cluster CA), set clientNames (docs/webhook.md)")
	}
	if auth.Unauthenticated() {
		log.Warn("WEBHOOK IS UNAUTHENTICATED: anyone who reaches " + wc.Addr + " is answered and the users that reviews name are ignored (no break glass); for local use only: set webhook.auth.clientCAFile or webhook.auth.tokenFile in production (docs/webhook.md)")
	}
	hc := wc.handlerConfig()
	hc.Logger, hc.Authenticator = log, auth
	if wc.Kubernetes != nil {
		ns, err := startNamespaces(ctx, wc.Kubernetes, log)
		if err != nil {
			return nil, err
		}
		hc.NamespaceLabels = ns.Labels
	}
	hc.OnBreakGlass = func(ctx context.Context, bg webhook.BreakGlass) error {
		// One record per overridden image, written in one transaction:
		// all or none, and the workload is admitted only after (I6).
		recs := make([]audit.Record, 0, len(bg.Overridden))
		for _, o := range bg.Overridden {
			recs = append(recs, audit.Record{Action: audit.ActionBreakGlass, Verdict: audit.VerdictAllow, BreakGlassJustification: bg.Justification,
				Target: audit.Target{Namespace: bg.Namespace, Kind: bg.Kind, Name: bg.Name}, Actor: audit.Actor{KubernetesUser: bg.User},
				Subject: breakGlassSubject(o), Reasons: append([]string{"image as written: " + o.Image}, o.Reasons...)})
		}
		_, err := decisions.AppendAll(ctx, recs)
		return err
	}
	h, err := webhook.New(hc, g, resolver)
	if err != nil {
		return nil, err
	}
	if err := registerCacheStats(metrics, h.CacheStats); err != nil {
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
	// DisableGeneralOptionsHandler: net/http would answer "OPTIONS *"
	// itself, before authentication (I5: anyone else gets 401 only).
	srv := &http.Server{Handler: tr.handler(h, "webhook"), TLSConfig: auth.TLSConfig(certs.GetCertificate), ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout: 90 * time.Second, DisableGeneralOptionsHandler: true,
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) }}
	go func() {
		if err := srv.Serve(tls.NewListener(ln, srv.TLSConfig)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("webhook stopped", "err", err)
		}
	}()
	log.Info("webhook serving", "addr", ln.Addr().String())
	return srv.Shutdown, nil
}

// breakGlassSubject is the image a break glass overrode, as far as it was
// resolved; one that was not (it timed out, or its registry did not
// answer) is named by its reference as written, so that no record of an
// override lacks the image.
func breakGlassSubject(o webhook.ImageResult) audit.Subject {
	sub := audit.Subject{Repository: o.Repository, Digest: o.Digest.String()}
	if sub.Repository == "" {
		sub.Repository = o.Image
	}
	if ref, err := name.ParseReference(o.Image); err == nil {
		if tag, ok := ref.(name.Tag); ok {
			sub.Tag = tag.TagStr()
		}
	}
	return sub
}
