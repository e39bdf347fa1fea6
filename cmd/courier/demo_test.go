package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
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
	for _, want := range []string{"POST /v1/orders o-1 → 202 APPROVAL_PENDING", "fallback: cached menu", "15 orders: 12 approved, 2 rejected, 1 cancelled"} {
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

// TestDemoContractsFollowTheBaseline is the food-delivery example's API
// check, as CI runs it: the documents its services generate, compared
// with the released ones committed under examples/fooddelivery/api, follow
// semantic versioning; and a change that breaks a client without a new
// major version fails the check.
func TestDemoContractsFollowTheBaseline(t *testing.T) {
	const baseline = "../../examples/fooddelivery/api"
	current := t.TempDir()
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"demo", "-write-contracts", current}, &out, &errOut); err != nil {
		t.Fatalf("courier demo -write-contracts: %v\n%s", err, errOut.String())
	}
	check := func() (string, error) {
		out.Reset()
		errOut.Reset()
		err := run(context.Background(), []string{"api", "check", "-baseline", baseline, current}, &out, &errOut)
		return out.String() + errOut.String(), err
	}
	if report, err := check(); err != nil {
		t.Fatalf("courier api check -baseline %s: %v\n%s", baseline, err, report)
	}

	// The restaurant service renames a field of its gRPC API: protojson
	// and the generated code name it differently, which breaks clients.
	proto := filepath.Join(current, "restaurant-service", "restaurant.proto")
	idl, err := os.ReadFile(proto)
	if err != nil {
		t.Fatal(err)
	}
	renamed := strings.Replace(string(idl), "int64 price = 3;", "int64 price_cents = 3;", 1)
	if renamed == string(idl) {
		t.Fatal("restaurant.proto has no field price = 3")
	}
	if err := os.WriteFile(proto, []byte(renamed), 0o644); err != nil {
		t.Fatal(err)
	}
	report, err := check()
	if err == nil {
		t.Fatalf("courier api check passed a renamed field without a new major version:\n%s", report)
	}
	for _, want := range []string{"restaurant-service/restaurant.proto", "field-renamed", "a breaking change needs a new major version"} {
		if !strings.Contains(report, want) {
			t.Errorf("the report lacks %q:\n%s", want, report)
		}
	}
}
