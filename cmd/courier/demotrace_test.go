package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/courier-go/courier/examples/fooddelivery"
)

// exportedSpan is a span as `courier demo -trace file:PATH` writes it
// (OpenTelemetry's stdout exporter).
type exportedSpan struct {
	Name        string
	SpanContext struct{ TraceID, SpanID string }
	Parent      struct{ SpanID string }
	Attributes  []keyValue
	Resource    []keyValue
}

type keyValue struct {
	Key   string
	Value struct{ Value any }
}

func value(kvs []keyValue, key string) string {
	for _, kv := range kvs {
		if kv.Key == key {
			s, _ := kv.Value.Value.(string)
			return s
		}
	}
	return ""
}

// TestDemoExportsTraces runs `courier demo -trace file:PATH` and reads the
// spans it exported. The spans of order o-1's messages are in two traces:
// the order's, which the scenario's POST started and which holds spans of
// the six services the order goes through, and the courier quotes', which
// the scenario's request started and which holds every fleet's answer
// from the delivery service.
func TestDemoExportsTraces(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	path := filepath.Join(t.TempDir(), "spans.json")
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"demo", "-bulk", "1", "-trace", "file:" + path}, &out, &errOut); err != nil {
		t.Fatalf("courier demo -trace: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errOut.String())
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var spans []exportedSpan
	for dec := json.NewDecoder(f); ; {
		var s exportedSpan
		if err := dec.Decode(&s); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		spans = append(spans, s)
	}
	// Each trace of o-1, by its root span: its services, and how many
	// spans of the delivery service it has.
	type summary struct {
		services []string
		delivery int
	}
	traces := map[string]*summary{}
	for _, s := range spans {
		if value(s.Attributes, "messaging.courier.partition_key") == "o-1" {
			traces[s.SpanContext.TraceID] = &summary{}
		}
	}
	byRoot := map[string]*summary{}
	for _, s := range spans {
		sum := traces[s.SpanContext.TraceID]
		if sum == nil {
			continue
		}
		svc := value(s.Resource, "service.name")
		if !slices.Contains(sum.services, svc) {
			sum.services = append(sum.services, svc)
		}
		if svc == fooddelivery.DeliveryService && s.Name == "process "+fooddelivery.CourierQuotes {
			sum.delivery++
		}
		if strings.Trim(s.Parent.SpanID, "0") == "" {
			byRoot[svc+" "+s.Name] = sum
		}
	}
	order, quotes := byRoot[fooddelivery.ScenarioClient+" HTTP POST"], byRoot[fooddelivery.ScenarioClient+" send "+fooddelivery.CourierQuotes]
	if len(traces) != 2 || len(byRoot) != 2 || order == nil || quotes == nil {
		t.Fatalf("o-1's messages are in %d traces with roots %v; want the scenario's POST and its quote request (%d spans exported)", len(traces), slices.Collect(maps.Keys(byRoot)), len(spans))
	}
	for _, want := range []string{fooddelivery.ScenarioClient, fooddelivery.OrderService, fooddelivery.ConsumerService, fooddelivery.RestaurantService,
		fooddelivery.KitchenService, fooddelivery.AccountingService, fooddelivery.NotificationService} {
		if !slices.Contains(order.services, want) {
			t.Errorf("the trace of o-1 has no span of %s; it has %q", want, order.services)
		}
	}
	if quotes.delivery != 3 {
		t.Errorf("the quote request's trace has %d of the delivery service's fleets answering, want 3 (services %q)", quotes.delivery, quotes.services)
	}
}

func TestDemoRefusesBadTraceTargets(t *testing.T) {
	for _, target := range []string{"jaeger", "file:", "otlp://collector", "otlp://collector:4317/v1/traces", "http://127.0.0.1:4318"} {
		var out, errOut bytes.Buffer
		err := run(context.Background(), []string{"demo", "-trace", target}, &out, &errOut)
		if code := exitCode(err); code != 2 || !strings.Contains(err.Error(), "-trace") {
			t.Errorf("courier demo -trace %s: %v, exit status %d; want a -trace error and 2", target, err, code)
		}
	}
}
