package fooddelivery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
)

// traceTarget is where -trace sends the spans.
type traceTarget struct {
	kind string // "stdout", "file" or "otlp"
	arg  string // the file's path, or the collector's host:port
}

// parseTraceTarget reads -trace's value: stdout, file:PATH or
// otlp://host:port.
func parseTraceTarget(raw string) (traceTarget, error) {
	switch {
	case raw == "stdout":
		return traceTarget{kind: "stdout"}, nil
	case strings.HasPrefix(raw, "file:"):
		if path := strings.TrimPrefix(raw, "file:"); path != "" {
			return traceTarget{kind: "file", arg: path}, nil
		}
	case strings.HasPrefix(raw, "otlp://"):
		u, err := url.Parse(raw)
		if err != nil {
			return traceTarget{}, fmt.Errorf("-trace %q: %w", raw, err)
		}
		host, port, err := net.SplitHostPort(u.Host)
		if err == nil && host != "" && port != "" && (u.Path == "" || u.Path == "/") && u.RawQuery == "" && u.User == nil {
			return traceTarget{kind: "otlp", arg: u.Host}, nil
		}
		return traceTarget{}, fmt.Errorf("-trace %q: want otlp://host:port", raw)
	}
	return traceTarget{}, fmt.Errorf("-trace %q: want stdout, file:PATH or otlp://host:port", raw)
}

// traceExport gives each service a TracerProvider of its own, with its
// name as service.name, all exporting through one exporter.
type traceExport struct {
	exp   sdktrace.SpanExporter
	close func() error // the file's, if any

	mu        sync.Mutex
	providers map[string]*sdktrace.TracerProvider
	done      bool
}

// newTraceExport opens the exporter for t: pretty-printed JSON spans to
// stdout or a file, or OTLP over gRPC (without TLS) to a collector. The
// OTLP exporter connects when it first exports.
func newTraceExport(ctx context.Context, t traceTarget, stdout io.Writer) (*traceExport, error) {
	e := &traceExport{providers: map[string]*sdktrace.TracerProvider{}, close: func() error { return nil }}
	var err error
	switch t.kind {
	case "stdout":
		e.exp, err = stdouttrace.New(stdouttrace.WithWriter(stdout), stdouttrace.WithPrettyPrint())
	case "file":
		f, ferr := os.Create(t.arg)
		if ferr != nil {
			return nil, fmt.Errorf("-trace: %w", ferr)
		}
		e.close = f.Close
		if e.exp, err = stdouttrace.New(stdouttrace.WithWriter(f), stdouttrace.WithPrettyPrint()); err != nil {
			f.Close()
		}
	case "otlp":
		e.exp, err = otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(t.arg), otlptracegrpc.WithInsecure(),
			otlptracegrpc.WithTimeout(5*time.Second))
	default:
		err = fmt.Errorf("unknown kind %q", t.kind)
	}
	if err != nil {
		return nil, fmt.Errorf("-trace: %w", err)
	}
	return e, nil
}

// provider returns the service's TracerProvider (Env.TracerProvider).
func (e *traceExport) provider(service string) trace.TracerProvider {
	e.mu.Lock()
	defer e.mu.Unlock()
	if tp := e.providers[service]; tp != nil {
		return tp
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(sharedExporter{e.exp}),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName(service))))
	if e.done {
		_ = tp.Shutdown(context.Background()) // too late: records nothing
	}
	e.providers[service] = tp
	return tp
}

// shutdown exports the spans not yet exported and closes the exporter.
func (e *traceExport) shutdown(ctx context.Context) error {
	e.mu.Lock()
	e.done = true
	providers := e.providers
	e.mu.Unlock()
	var errs []error
	for _, tp := range providers {
		errs = append(errs, tp.Shutdown(ctx))
	}
	errs = append(errs, e.exp.Shutdown(ctx), e.close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("-trace: %w", err)
	}
	return nil
}

// sharedExporter is the exporter as one of several providers sees it: its
// Shutdown leaves the exporter open for the others; traceExport.shutdown
// closes it after them.
type sharedExporter struct{ sdktrace.SpanExporter }

func (sharedExporter) Shutdown(context.Context) error { return nil }
