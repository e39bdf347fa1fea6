package registrar_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/courier-go/courier/discovery"
	"github.com/courier-go/courier/discovery/memory"
	"github.com/courier-go/courier/discovery/registrar"
	"github.com/courier-go/courier/internal/testlog"
	"github.com/courier-go/courier/internal/testnet"
)

func writeTargets(t *testing.T, path string, ts []registrar.Target) {
	t.Helper()
	data, _ := json.Marshal(ts)
	if err := os.WriteFile(path+".tmp", data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, reg discovery.Registry, what string, cond func(map[string]discovery.Instance) bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		insts, _ := reg.Instances(context.Background(), "legacy")
		m := map[string]discovery.Instance{}
		for _, i := range insts {
			m[i.ID] = i
		}
		if cond(m) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s: %+v", what, insts)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRegistersChecksAndDeregisters(t *testing.T) {
	healthy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer healthy.Close()
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := l.Addr().String()
	l.Close()
	addr := strings.TrimPrefix(healthy.URL, "http://")
	path := filepath.Join(t.TempDir(), "targets.json")
	writeTargets(t, path, []registrar.Target{
		{Instance: discovery.Instance{Service: "legacy", ID: "web", Address: addr}, Check: healthy.URL + "/health"},
		{Instance: discovery.Instance{Service: "legacy", ID: "down", Address: deadAddr}},
		{Instance: discovery.Instance{Service: "legacy", ID: "bad", Address: "nowhere"}},
	})
	reg := memory.New()
	defer reg.Close()
	r, err := registrar.New(reg, registrar.FileSource(path), registrar.WithInterval(20*time.Millisecond),
		registrar.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	waitFor(t, reg, "web healthy and down unhealthy", func(m map[string]discovery.Instance) bool {
		return len(m) == 2 && m["web"].Healthy() && m["down"].Unhealthy
	})
	writeTargets(t, path, []registrar.Target{{Instance: discovery.Instance{Service: "legacy", ID: "web", Address: addr}, Check: healthy.URL + "/health"}})
	waitFor(t, reg, "down deregistered", func(m map[string]discovery.Instance) bool { return len(m) == 1 })
	healthy.Close()
	waitFor(t, reg, "web unhealthy once its check fails", func(m map[string]discovery.Instance) bool { return m["web"].Unhealthy })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Instances(context.Background(), "legacy"); !errors.Is(err, discovery.ErrUnknownService) {
		t.Fatalf("after shutdown: %v", err)
	}
	if _, err := registrar.New(reg, nil); err == nil {
		t.Fatal("nil source accepted")
	}
}

// TestLogShowsNoPassword registers targets whose health-check URLs hold a
// password (plain, percent-encoded otherwise than net/url would, in a
// malformed URL) and fail, and checks that the registrar's log, at debug
// level, names the failures without the password.
func TestLogShowsNoPassword(t *testing.T) {
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer failing.Close()
	closed := testnet.ClosedPort(t)
	addr := strings.TrimPrefix(failing.URL, "http://")
	path := filepath.Join(t.TempDir(), "targets.json")
	writeTargets(t, path, []registrar.Target{
		{Instance: discovery.Instance{Service: "legacy", ID: "failing", Address: addr}, Check: "http://courier:s3cret@" + addr + "/health"},
		{Instance: discovery.Instance{Service: "legacy", ID: "closed", Address: closed}, Check: "http://courier:s3cr%65t@" + closed + "/health"},
		{Instance: discovery.Instance{Service: "legacy", ID: "malformed", Address: addr}, Check: "http://courier:s3cret@" + addr + ":bad/health"},
	})
	var log testlog.Buffer
	reg := memory.New()
	defer reg.Close()
	r, err := registrar.New(reg, registrar.FileSource(path), registrar.WithInterval(20*time.Millisecond),
		registrar.WithLogger(slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	waitFor(t, reg, "every target unhealthy", func(m map[string]discovery.Instance) bool {
		return len(m) == 3 && m["failing"].Unhealthy && m["closed"].Unhealthy && m["malformed"].Unhealthy
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	out := log.String()
	if !strings.Contains(out, "health check") {
		t.Fatalf("the log names no failed check:\n%s", out)
	}
	if strings.Contains(out, "s3cret") || strings.Contains(out, "s3cr%65t") {
		t.Errorf("the log shows the password:\n%s", out)
	}
}
