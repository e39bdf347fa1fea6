package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

func TestDemoRunsTheScenario(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"demo", "-bulk", "4"}, &out, &errOut); err != nil {
		t.Fatalf("courier demo: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errOut.String())
	}
	for _, want := range []string{"POST /v1/orders o-1 → 202 APPROVAL_PENDING", "fallback: cached menu", "12 orders: 10 approved, 2 rejected"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestDemoRefusesBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"demo", "-bulk", "0"},
		{"demo", "-service", "all"},
		{"demo", "-service", "all", "-scenario", "-db", "sqlite:///tmp/x", "-broker", "nats://127.0.0.1:1", "-registry", "etcd://127.0.0.1:1"},
		{"demo", "extra"},
	} {
		var out, errOut bytes.Buffer
		if err := run(context.Background(), args, &out, &errOut); err == nil {
			t.Errorf("courier %v: no error", args)
		}
	}
}
