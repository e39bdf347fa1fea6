package fooddelivery_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/courier-go/courier/apispec"
	"github.com/courier-go/courier/examples/fooddelivery"
	"github.com/courier-go/courier/internal/apitools"
)

// contracts returns the generated documents by their baseline paths.
func contracts(t *testing.T) map[string][]byte {
	t.Helper()
	docs, err := fooddelivery.Contracts()
	if err != nil {
		t.Fatal(err)
	}
	return docs
}

// TestContractsPassTheOfficialTools checks every generated document with
// the AsyncAPI project's parser and Redocly's OpenAPI linter.
func TestContractsPassTheOfficialTools(t *testing.T) {
	tools := apitools.Require(t, apitools.AsyncAPIParser, apitools.Redocly)
	async, rest := map[string][]byte{}, map[string][]byte{}
	for name, data := range contracts(t) {
		switch filepath.Base(name) {
		case "asyncapi.yaml":
			async[name] = data
		case "openapi.yaml":
			rest[name] = data
		}
	}
	if len(async) != len(fooddelivery.Services) || len(rest) <= len(fooddelivery.Services) {
		t.Fatalf("%d AsyncAPI and %d OpenAPI documents for %d services", len(async), len(rest), len(fooddelivery.Services))
	}
	for file, diagnostics := range tools.ValidateAsyncAPI(t, apitools.WriteFiles(t, async)...) {
		for _, d := range diagnostics {
			if d.Severity <= 1 { // errors and warnings; information and hints say 3.1.0 exists
				t.Errorf("%s: %s %s at %v", file, d.Code, d.Message, d.Path)
			}
		}
	}
	for _, p := range tools.LintOpenAPI(t, apitools.WriteFiles(t, rest)...) {
		// Health probes have no client error to answer with.
		if p.RuleID == "operation-4xx-response" && len(p.Location) == 1 &&
			(strings.HasPrefix(p.Location[0].Pointer, "#/paths/~1healthz/") || strings.HasPrefix(p.Location[0].Pointer, "#/paths/~1readyz/")) {
			continue
		}
		t.Errorf("redocly %s %s: %s %+v", p.Severity, p.RuleID, p.Message, p.Location)
	}
}

// system starts the named services (every one without names) on embedded
// defaults for the test, tracing to trace (nil for none).
func system(t *testing.T, trace io.Writer, names ...string) (*fooddelivery.Env, *fooddelivery.System) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	env, closeEnv, err := fooddelivery.EmbeddedEnv(ctx, t.TempDir(), -1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = closeEnv(ctx)
	})
	if trace != nil {
		env.Trace = fooddelivery.NewTrace(trace)
	}
	sys, err := fooddelivery.Start(ctx, env, names...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := sys.Stop(ctx); err != nil {
			t.Error(err)
		}
	})
	return env, sys
}

// httpAddress returns the address of the service's HTTP endpoint in the
// registry.
func httpAddress(t *testing.T, env *fooddelivery.Env, service string) string {
	t.Helper()
	insts, err := env.Registry.Instances(context.Background(), service)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range insts {
		if i.Metadata["protocol"] == "http" {
			return i.Address
		}
	}
	t.Fatalf("%s registered no HTTP endpoint: %v", service, insts)
	return ""
}

func get(t *testing.T, url string) (int, string, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), body
}

// TestServicesServeTheirContracts: each running service serves the
// documents Contracts generates (which courier api check compares with
// the baseline) under /api/, beside /healthz and /readyz, in YAML and
// JSON; and the order service's REST API answers as its document says,
// errors included, checked by apispec's Validator on every call.
func TestServicesServeTheirContracts(t *testing.T) {
	env, _ := system(t, nil)
	docs := contracts(t)
	for _, service := range fooddelivery.Services {
		base := "http://" + httpAddress(t, env, service)
		for _, path := range []string{"/healthz", "/readyz"} {
			if code, _, body := get(t, base+path); code != http.StatusOK {
				t.Errorf("%s %s: %d %s", service, path, code, body)
			}
		}
		served := 0
		for name, want := range docs {
			file, ok := strings.CutPrefix(name, service+"/")
			if !ok {
				continue
			}
			served++
			code, _, body := get(t, base+"/api/"+file)
			if code != http.StatusOK || !bytes.Equal(body, want) {
				t.Errorf("%s /api/%s: %d, the generated document differs:\n%s", service, file, code, body)
			}
			if file, ok := strings.CutSuffix(file, ".yaml"); ok {
				code, ct, body := get(t, base+"/api/"+file+".json")
				if code != http.StatusOK || ct != "application/json" || !json.Valid(body) {
					t.Errorf("%s /api/%s.json: %d %s %.100s", service, file, code, ct, body)
				}
			}
		}
		if served < 2 {
			t.Errorf("%s: %d documents", service, served)
		}
	}
	// A version's API is REST alone.
	if code, _, _ := get(t, "http://"+httpAddress(t, env, fooddelivery.OrderService)+"/api/v1/asyncapi.json"); code != http.StatusNotFound {
		t.Errorf("/api/v1/asyncapi.json: %d, want 404", code)
	}

	t.Run("order API v1", func(t *testing.T) {
		doc, err := apispec.Parse("openapi.yaml", docs["order-service/v1/openapi.yaml"])
		if err != nil {
			t.Fatal(err)
		}
		v, err := apispec.NewValidator(doc)
		if err != nil {
			t.Fatal(err)
		}
		client := &http.Client{Transport: v.RoundTripper(http.DefaultTransport), Timeout: 10 * time.Second}
		base := "http://" + httpAddress(t, env, fooddelivery.OrderService)
		call := func(method, path, body string, want int) []byte {
			t.Helper()
			req, err := http.NewRequest(method, base+path, strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			if body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err) // the validator's verdict, among others
			}
			defer resp.Body.Close()
			got, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != want {
				t.Errorf("%s %s: %d %s, want %d", method, path, resp.StatusCode, got, want)
			}
			if want >= 400 && !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
				t.Errorf("%s %s: %s, want a problem", method, path, resp.Header.Get("Content-Type"))
			}
			return got
		}
		order := `{"id":"t-1","consumerId":"c-ada","restaurantId":"r-ajanta","items":[{"menuItem":"samosa","quantity":2}]}`
		call(http.MethodPost, "/v1/orders", order, http.StatusAccepted)
		call(http.MethodPost, "/v1/orders", order, http.StatusAccepted) // retried: the same order
		call(http.MethodPost, "/v1/orders", `{"consumerId":"c-ada","restaurantId":"r-ajanta","items":[]}`, http.StatusBadRequest)
		call(http.MethodPost, "/v1/orders", `{"consumerId":"c-ada","restaurantId":"r-ajanta","items":[{"menuItem":"sushi","quantity":1}]}`, http.StatusUnprocessableEntity)
		call(http.MethodGet, "/v1/orders/t-404", "", http.StatusNotFound)
		call(http.MethodGet, "/v1/orders/t-1?expand=menu", "", http.StatusBadRequest)
		var o fooddelivery.OrderView
		if err := json.Unmarshal(call(http.MethodGet, "/v1/orders/t-1?expand=consumer,restaurant", "", http.StatusOK), &o); err != nil {
			t.Fatal(err)
		}
		if o.Total != 900 || o.Consumer == nil || o.Consumer.Name != "Ada" || o.Restaurant == nil || o.Restaurant.Name != "Ajanta" {
			t.Errorf("GET /v1/orders/t-1?expand=consumer,restaurant = %+v", o)
		}
	})
}
