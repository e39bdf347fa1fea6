package httpx_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/courier-go/courier/rpc/httpx"
)

func decodeProblem(t *testing.T, resp *http.Response) httpx.Problem {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q", ct)
	}
	var p httpx.Problem
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestServerConcurrencyLimit(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 2)
	h, err := httpx.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
	}), httpx.WithMaxConcurrent(2), httpx.WithLogger(quiet()))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if resp, err := http.Get(srv.URL); err == nil {
				resp.Body.Close()
			}
		})
	}
	<-entered
	<-entered
	resp, err := http.Get(srv.URL + "/orders")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("status %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if p := decodeProblem(t, resp); p.Type != httpx.ProblemOverloaded || p.Status != 503 || p.Instance != "/orders" {
		t.Fatalf("problem %+v", p)
	}
	close(release)
	wg.Wait()
}

func TestServerRequestTimeout(t *testing.T) {
	sawCancel := make(chan error, 1)
	h, err := httpx.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
		sawCancel <- r.Context().Err()
	}), httpx.WithRequestTimeout(30*time.Millisecond), httpx.WithLogger(quiet()))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if p := decodeProblem(t, resp); p.Type != httpx.ProblemTimeout {
		t.Fatalf("problem %+v", p)
	}
	if err := <-sawCancel; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("handler saw %v", err)
	}
}

func TestServerOptionsAreValidated(t *testing.T) {
	ok := http.NotFoundHandler()
	for name, opt := range map[string]httpx.ServerOption{
		"zero timeout":      httpx.WithRequestTimeout(0),
		"negative limit":    httpx.WithMaxConcurrent(-1),
		"zero retry-after":  httpx.WithOverloadRetryAfter(0),
		"nil logger":        httpx.WithLogger(nil),
		"nil server option": nil,
	} {
		if _, err := httpx.Handler(ok, opt); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := httpx.Handler(nil); err == nil {
		t.Error("nil handler accepted")
	}
	if _, err := httpx.NewHealth(0); err == nil {
		t.Error("zero check timeout accepted")
	}
}

func TestHealth(t *testing.T) {
	h, err := httpx.NewHealth(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	status := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := status("/readyz"); code != 200 {
		t.Fatalf("readyz %d", code)
	}
	dbDown := errors.New("connection refused")
	var mu sync.Mutex
	var dbErr error
	if err := h.AddCheck("db", func(context.Context) error { mu.Lock(); defer mu.Unlock(); return dbErr }); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	dbErr = dbDown
	mu.Unlock()
	if code, body := status("/readyz"); code != 503 || !strings.Contains(body, "db: connection refused") {
		t.Fatalf("readyz with a failing check: %d %s", code, body)
	}
	if code, _ := status("/healthz"); code != 200 {
		t.Fatalf("healthz %d while not ready", code)
	}
	mu.Lock()
	dbErr = nil
	mu.Unlock()
	h.SetReady(false)
	if code, body := status("/readyz"); code != 503 || !strings.Contains(body, "not ready") {
		t.Fatalf("readyz while draining: %d %s", code, body)
	}
	h.SetReady(true)
	if code, _ := status("/readyz"); code != 200 {
		t.Fatalf("readyz %d", code)
	}
}
