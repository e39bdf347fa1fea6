package fooddelivery_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/courier-go/courier/apispec"
	"github.com/courier-go/courier/discovery"
	"github.com/courier-go/courier/discovery/router"
	"github.com/courier-go/courier/examples/fooddelivery"
	"github.com/courier-go/courier/internal/testlog"
)

// versionClient calls one version of the orders API through the router,
// each call checked against the version's OpenAPI document.
type versionClient struct {
	t    *testing.T
	base string
	http *http.Client
}

func newVersionClient(t *testing.T, base string, doc []byte) *versionClient {
	t.Helper()
	d, err := apispec.Parse("openapi.yaml", doc)
	if err != nil {
		t.Fatal(err)
	}
	v, err := apispec.NewValidator(d)
	if err != nil {
		t.Fatal(err)
	}
	return &versionClient{t: t, base: base, http: &http.Client{Transport: v.RoundTripper(http.DefaultTransport), Timeout: 10 * time.Second}}
}

// try makes a request and decodes a success's body into out; it returns
// the status, or the error, which may be the validator's verdict.
func (c *versionClient) try(method, path, body string, out any) (int, error) {
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode < 300 && out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return 0, fmt.Errorf("%s %s: %w: %s", method, path, err, data)
		}
	}
	return resp.StatusCode, nil
}

// call is try that fails the test on an error.
func (c *versionClient) call(method, path, body string, out any) int {
	c.t.Helper()
	code, err := c.try(method, path, body, out)
	if err != nil {
		c.t.Fatal(err)
	}
	return code
}

// await polls path until the order's state is want; errors (the router
// not knowing an instance yet) are retried.
func (c *versionClient) await(path, want string) {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var o struct{ State, Reason string }
		code, err := c.try(http.MethodGet, path, "", &o)
		if err == nil && code == http.StatusOK && o.State == want {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("GET %s: %d %s (%s), %v; want %s", path, code, o.State, o.Reason, err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func order(id, consumer string) string {
	return `{"id":"` + id + `","consumerId":"` + consumer + `","restaurantId":"r-ajanta","items":[{"menuItem":"samosa","quantity":1}]}`
}

// TestVersionsSideBySide runs release 1 of the order service, then release
// 2 beside it, behind a router that sends each version of the orders API
// to the instances whose registrations say they serve it; a version 1
// client and a version 2 client work with the same orders, every call
// checked against its version's document, while the notification service
// handles NotifyConsumer from release 1 and NotifyConsumer.v2 from
// release 2; then release 1 is retired and release 2 serves version 1
// alone. Release 2 also finishes a saga that release 1 started before it
// crashed.
func TestVersionsSideBySide(t *testing.T) {
	trace := &testlog.Buffer{}
	names := make([]string, 0, len(fooddelivery.Services))
	for _, name := range fooddelivery.Services {
		if name == fooddelivery.OrderService {
			name = fooddelivery.LegacyOrderService
		}
		names = append(names, name)
	}
	env, sys := system(t, trace, names...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	res, err := discovery.NewResolver(env.Registry)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	rt, err := router.New(res, fooddelivery.OrderRoutes(), router.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rt)
	defer srv.Close()
	docs := contracts(t)
	v1 := newVersionClient(t, srv.URL, docs["order-service/v1/openapi.yaml"])
	v2 := newVersionClient(t, srv.URL, docs["order-service/v2/openapi.yaml"])
	raw := func(method, path string) int { // outside the documents
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	// Release 1 alone: version 1, and no instance serves version 2.
	if code := v1.call(http.MethodPost, "/v1/orders", order("t-1", "c-ada"), nil); code != http.StatusAccepted {
		t.Fatalf("POST /v1/orders: %d", code)
	}
	v1.await("/v1/orders/t-1", fooddelivery.Approved)
	if code := raw(http.MethodGet, "/v2/orders/t-1"); code != http.StatusServiceUnavailable {
		t.Errorf("GET /v2/orders/t-1 with release 1 alone: %d, want 503", code)
	}

	// Release 1 crashes mid-saga; release 2 takes the saga over: its relay
	// publishes what release 1 left in the outbox, and it reads the
	// replies to release 1's commands.
	if code := v1.call(http.MethodPost, "/v1/orders", order("t-0", "c-ada"), nil); code != http.StatusAccepted {
		t.Fatalf("POST /v1/orders: %d", code)
	}
	if err := sys.Kill(fooddelivery.LegacyOrderService); err != nil {
		t.Fatal(err)
	}
	if err := sys.Restart(ctx, fooddelivery.OrderService); err != nil {
		t.Fatal(err)
	}
	v2.await("/v2/orders/t-0", fooddelivery.Approved)
	if !strings.Contains(trace.String(), "order@2       TicketApproved t-0 → order APPROVED") {
		t.Errorf("release 2 did not finish release 1's saga of t-0:\n%s", trace)
	}

	// Release 1 again, beside release 2.
	if err := sys.Restart(ctx, fooddelivery.LegacyOrderService); err != nil {
		t.Fatal(err)
	}
	// The crashed instance's registration expires with its lease.
	var insts []discovery.Instance
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if insts, err = env.Registry.Instances(ctx, fooddelivery.OrderService); err != nil {
			t.Fatal(err)
		}
		if len(insts) == 2 || time.Now().After(deadline) {
			break
		}
	}
	var served [][]byte
	for _, i := range insts {
		_, v2 := i.Metadata["api.v2"]
		t.Logf("%s: version %s, v1 %q, v2 %q", i.Address, i.Version, i.Metadata["api.v1"], i.Metadata["api.v2"])
		if i.Metadata["api.v1"] != "1.0.0" || v2 != (i.Version == "2.0.0") {
			t.Errorf("instance %s: version %s, metadata %v", i.Address, i.Version, i.Metadata)
		}
		_, _, body := get(t, "http://"+i.Address+"/api/v1/openapi.yaml")
		served = append(served, body)
	}
	if len(served) != 2 || !bytes.Equal(served[0], served[1]) || !bytes.Equal(served[0], docs["order-service/v1/openapi.yaml"]) {
		t.Errorf("the two releases serve %d version 1 documents, not the same one", len(served))
	}
	v2.await("/v2/orders/t-1", fooddelivery.Approved) // once the router knows release 2

	var o fooddelivery.OrderV2
	if code := v2.call(http.MethodPost, "/v2/orders", order("t-2", "c-ada"), &o); code != http.StatusAccepted || o.State != fooddelivery.ApprovalPending {
		t.Fatalf("POST /v2/orders: %d %+v", code, o)
	}
	v2.await("/v2/orders/t-2", fooddelivery.Approved)
	v2.call(http.MethodPost, "/v2/orders", order("t-3", "c-zed"), nil) // an unknown consumer
	v2.await("/v2/orders/t-3", fooddelivery.Rejected)

	// Version 2 cancels the order a version 1 client placed with release 1.
	if code := v2.call(http.MethodGet, "/v2/orders/t-1", "", &o); code != http.StatusOK || !o.Cancellable {
		t.Fatalf("GET /v2/orders/t-1: %d %+v, want cancellable", code, o)
	}
	if code := v2.call(http.MethodPost, "/v2/orders/t-1/cancel", "", &o); code != http.StatusAccepted || o.State != fooddelivery.CancelPending {
		t.Fatalf("POST /v2/orders/t-1/cancel: %d %+v", code, o)
	}
	v2.await("/v2/orders/t-1", fooddelivery.Cancelled)
	var old fooddelivery.OrderView
	if code := v1.call(http.MethodGet, "/v1/orders/t-1", "", &old); code != http.StatusOK || old.State != fooddelivery.Rejected || old.Reason != "cancelled by the consumer" {
		t.Errorf("GET /v1/orders/t-1: %d %+v, want REJECTED (cancelled by the consumer)", code, old)
	}
	for _, c := range []struct {
		path string
		want int
	}{
		{"/v2/orders/t-1/cancel", http.StatusAccepted}, // again: the same answer
		{"/v2/orders/t-3/cancel", http.StatusConflict}, // rejected
		{"/v2/orders/t-404/cancel", http.StatusNotFound},
	} {
		if code := v2.call(http.MethodPost, c.path, "", nil); code != c.want {
			t.Errorf("POST %s: %d, want %d", c.path, code, c.want)
		}
	}
	if code := raw(http.MethodPost, "/v1/orders/t-2/cancel"); code != http.StatusNotFound {
		t.Errorf("POST /v1/orders/t-2/cancel: %d, want 404: version 1 has no cancellation", code)
	}

	// Release 1 retired: release 2 serves version 1 alone.
	if err := sys.StopService(ctx, fooddelivery.LegacyOrderService); err != nil {
		t.Fatal(err)
	}
	// The router may learn that release 1 left after a request went to it:
	// a POST is idempotent by order id, and is retried.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		code, err := v1.try(http.MethodPost, "/v1/orders", order("t-4", "c-ada"), nil)
		if err == nil && code == http.StatusAccepted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("POST /v1/orders after release 1: %d %v", code, err)
		}
	}
	v1.await("/v1/orders/t-4", fooddelivery.Approved)

	for _, want := range []string{
		`NotifyConsumer t-1 → c-ada: "order t-1 is APPROVED"`,                                // from release 1
		`NotifyConsumer.v2 t-1 → c-ada: "order t-1 is CANCELLED: cancelled by the consumer"`, // from release 2
		`NotifyConsumer.v2 t-4 → c-ada: "order t-4 is APPROVED"`,
		"accounting    ReverseAuthorization t-1 → AuthorizationReversed ($4.50 released)",
	} {
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(trace.String(), want) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if !strings.Contains(trace.String(), want) {
			t.Errorf("the trace lacks %q:\n%s", want, trace)
		}
	}
}
