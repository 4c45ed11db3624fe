// Package tracing starts OpenTelemetry spans as children of the span a
// context carries, with that span's tracer provider: packages trace
// without a global provider, and with no span in the context (tracing
// off, or a caller outside a request) every call is a no-op.
package tracing

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Instrumentation names the tracer of every Portcullis span.
const Instrumentation = "github.com/portcullis-dev/portcullis"

// Start starts the span name under the span in ctx.
func Start(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	return trace.SpanFromContext(ctx).TracerProvider().Tracer(Instrumentation).
		Start(ctx, name, trace.WithAttributes(attrs...))
}

// End marks span failed with err, if any, and ends it.
func End(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
