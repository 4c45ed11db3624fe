package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/portcullis-dev/portcullis/registry"
)

// TracingConfig is the "tracing" section of portcullis.yaml: OpenTelemetry
// traces of every request, exported over OTLP/HTTP. A push or promotion
// into a protected namespace traces registry -> gate -> verifier ->
// scanner -> policy; an admission review webhook -> gate -> ...
type TracingConfig struct {
	// Endpoint is the OTLP/HTTP collector's base URL, e.g.
	// http://otel-collector:4318 (traces go to <endpoint>/v1/traces).
	// Empty (the default) turns tracing off.
	Endpoint string `json:"endpoint,omitempty"`
	// SampleRatio is the share of new traces recorded, 0 to 1 (default 1).
	// A request whose traceparent says its caller samples is always traced.
	SampleRatio *float64 `json:"sampleRatio,omitempty"`
	// ServiceName is the service.name resource attribute (default portcullis).
	ServiceName string `json:"serviceName,omitempty"`
}

// defaults fills c in and checks it; errorf places an error at a
// setting's line (Config.errorf).
func (c *TracingConfig) defaults(errorf func(path, format string, args ...any) error) error {
	if c.ServiceName == "" {
		c.ServiceName = "portcullis"
	}
	if c.SampleRatio == nil {
		one := 1.0
		c.SampleRatio = &one
	}
	if r := *c.SampleRatio; r < 0 || r > 1 {
		return errorf("tracing.sampleRatio", "%v: want 0 to 1", r)
	}
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return errorf("tracing.endpoint", "%q: want an http(s) URL such as http://collector:4318", c.Endpoint)
		}
	}
	return nil
}

// tracer is the server's tracer provider and how it wraps handlers; tp is
// nil when tracing is off.
type tracer struct {
	tp       trace.TracerProvider
	shutdown func(context.Context) error
}

// newTracer exports to c.Endpoint, or traces nothing without one.
func newTracer(ctx context.Context, c TracingConfig) (*tracer, error) {
	if c.Endpoint == "" {
		return &tracer{shutdown: func(context.Context) error { return nil }}, nil
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(strings.TrimSuffix(c.Endpoint, "/")+"/v1/traces"))
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	res := resource.NewSchemaless(attribute.String("service.name", c.ServiceName), attribute.String("service.version", version))
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(*c.SampleRatio))),
	)
	return &tracer{tp: tp, shutdown: tp.Shutdown}, nil
}

// handler gives every request a server span named by method and route
// (never a repository name), continuing the caller's W3C traceparent.
// With tracing off it is next itself: nothing is added to a request.
func (t *tracer) handler(next http.Handler, server string) http.Handler {
	if t.tp == nil {
		return next
	}
	return otelhttp.NewHandler(next, server,
		otelhttp.WithTracerProvider(t.tp),
		otelhttp.WithPropagators(propagation.TraceContext{}),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method + " " + registry.RouteLabel(r.URL.Path) }),
	)
}
