package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRegistryRegistrarRouter runs the three discovery commands together:
// an embedded registry, a registrar registering an HTTP server from a file,
// and a router proxying to it.
func TestRegistryRegistrarRouter(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var errs []chan error
	start := func(f func() error) {
		c := make(chan error, 1)
		errs = append(errs, c)
		go func() { c <- f() }()
	}
	defer func() {
		cancel()
		for _, c := range errs {
			if err := <-c; err != nil {
				t.Errorf("command: %v", err)
			}
		}
	}()

	pr, pw := io.Pipe()
	start(func() error {
		defer pw.Close()
		return run(ctx, []string{"registry", "-dir", t.TempDir(), "-listen", "127.0.0.1:0", "-peer", "127.0.0.1:0",
			"-etcd-log-level", "fatal", "-log-level", "error"}, pw, io.Discard)
	})
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("registry: %v", err)
	}
	go io.Copy(io.Discard, pr)
	registry := "etcd://" + strings.TrimPrefix(strings.TrimSpace(line), "http://")

	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "kitchen "+r.URL.Path)
	}))
	defer backend.Close()
	targets := filepath.Join(t.TempDir(), "targets.json")
	data, _ := json.Marshal([]map[string]string{{"service": "kitchen", "id": "k1",
		"address": strings.TrimPrefix(backend.URL, "http://"), "check": backend.URL + "/healthz"}})
	if err := os.WriteFile(targets, data, 0o600); err != nil {
		t.Fatal(err)
	}
	start(func() error {
		return run(ctx, []string{"registrar", "-registry", registry, "-targets", targets, "-interval", "100ms", "-log-level", "error"},
			io.Discard, io.Discard)
	})

	ready := make(chan string, 1)
	start(func() error {
		return (&routerCommand{ready: ready}).run(ctx, []string{"-registry", registry, "-listen", "127.0.0.1:0",
			"-routes", "/kitchen/=kitchen:strip", "-log-level", "error"}, io.Discard)
	})
	var addr string
	select {
	case addr = <-ready:
	case <-time.After(30 * time.Second):
		t.Fatal("router did not start")
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/kitchen/tickets")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && string(body) == "kitchen /tickets" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("router never reached the registered target: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestDiscoveryCommandsRefuseBadFlags(t *testing.T) {
	ctx := context.Background()
	for _, args := range [][]string{
		{"router"},
		{"router", "-routes", "orders"},
		{"router", "-routes", "/orders/=orders:ftp"},
		{"router", "-routes", "/orders/=orders", "-registry", "zk://x"},
		{"router", "-routes", "/orders/=orders", "-tls-cert", "c.pem"},
		{"router", "-routes", "/orders/=orders", "-balancer", "fastest", "-registry", "dns://"},
		{"router", "-routes", "/orders/=orders", "-tls-client-ca", "ca.pem"},
		{"router", "-routes", "/orders/=orders", "-upstream-cert", "c.pem"},
		{"registrar"},
		{"registrar", "-targets", "a.json", "-dns-services", "a"},
		{"registry", "-tls-client-ca", "ca.pem"},
		{"registry", "-tls-cert", "/nonexistent.pem", "-tls-key", "/nonexistent.pem"},
		{"registry", "-users", "/nonexistent.json"},
	} {
		if err := run(ctx, args, io.Discard, io.Discard); err == nil {
			t.Errorf("%v: accepted", args)
		}
	}
	routes, err := parseRoutes("/orders/=orders,kitchen.example=kitchen:https,api.example/v1/=orders-grpc:h2c:strip")
	if err != nil || len(routes) != 3 || routes[1].Host != "kitchen.example" || routes[1].Protocol != "https" ||
		routes[2].Host != "api.example" || routes[2].Prefix != "/v1/" || !routes[2].StripPrefix {
		t.Fatalf("parseRoutes = %+v, %v", routes, err)
	}
}
