package fooddelivery

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
)

func TestParseTraceTarget(t *testing.T) {
	for raw, want := range map[string]traceTarget{
		"stdout":                   {kind: "stdout"},
		"file:spans.json":          {kind: "file", arg: "spans.json"},
		"otlp://127.0.0.1:4317":    {kind: "otlp", arg: "127.0.0.1:4317"},
		"otlp://collector:4317/":   {kind: "otlp", arg: "collector:4317"},
		"otlp://[::1]:4317":        {kind: "otlp", arg: "[::1]:4317"},
		"file:/tmp/dir/spans.json": {kind: "file", arg: "/tmp/dir/spans.json"},
	} {
		if got, err := parseTraceTarget(raw); err != nil || got != want {
			t.Errorf("parseTraceTarget(%q) = %+v, %v; want %+v", raw, got, err, want)
		}
	}
	for _, raw := range []string{"", "STDOUT", "jaeger", "file:", "otlp://", "otlp://collector", "otlp://:4317",
		"otlp://collector:4317/v1/traces", "otlp://collector:4317?x=1", "otlp://u:p@collector:4317", "http://collector:4318"} {
		if got, err := parseTraceTarget(raw); err == nil {
			t.Errorf("parseTraceTarget(%q) = %+v, want an error", raw, got)
		}
	}
}

// exportOne exports one span of service through a traceExport to t.
func exportOne(t *testing.T, target traceTarget, stdout io.Writer, service, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e, err := newTraceExport(ctx, target, stdout)
	if err != nil {
		t.Fatal(err)
	}
	_, span := e.provider(service).Tracer("test").Start(ctx, name)
	span.End()
	if err := e.shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestTraceExportToStdout(t *testing.T) {
	var out bytes.Buffer
	exportOne(t, traceTarget{kind: "stdout"}, &out, KitchenService, "process kitchen-service.commands")
	var span struct {
		Name     string
		Resource []struct {
			Key   string
			Value struct{ Value any }
		}
	}
	if err := json.Unmarshal(out.Bytes(), &span); err != nil {
		t.Fatalf("%v:\n%s", err, out.String())
	}
	service := ""
	for _, kv := range span.Resource {
		if kv.Key == "service.name" {
			service, _ = kv.Value.Value.(string)
		}
	}
	if span.Name != "process kitchen-service.commands" || service != KitchenService || !strings.Contains(out.String(), "\n\t\"Name\": ") {
		t.Errorf("exported span %q of %q, want it pretty-printed with its service:\n%s", span.Name, service, out.String())
	}
}

// collector is an OTLP trace collector that keeps what it receives.
type collector struct {
	collectortrace.UnimplementedTraceServiceServer
	mu  sync.Mutex
	got []*collectortrace.ExportTraceServiceRequest
}

func (c *collector) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got = append(c.got, req)
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

func TestTraceExportToOTLPCollector(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &collector{}
	srv := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(srv, c)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	defer func() {
		srv.Stop()
		if err := <-done; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			t.Error(err)
		}
	}()
	target, err := parseTraceTarget("otlp://" + l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	exportOne(t, target, io.Discard, AccountingService, "process accounting-service.commands")
	c.mu.Lock()
	defer c.mu.Unlock()
	var found []string
	for _, req := range c.got {
		for _, rs := range req.ResourceSpans {
			service := ""
			for _, kv := range rs.Resource.GetAttributes() {
				if kv.Key == "service.name" {
					service = kv.Value.GetStringValue()
				}
			}
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					found = append(found, service+" "+s.Name)
				}
			}
		}
	}
	if len(found) != 1 || found[0] != AccountingService+" process accounting-service.commands" {
		t.Errorf("the collector received %q, want the accounting service's span", found)
	}
}
