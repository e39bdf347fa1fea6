package main

import (
	"bytes"
	"context"
	"database/sql"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/courier-go/courier/message"
	"github.com/courier-go/courier/outbox"
	"github.com/courier-go/courier/sqldb"
)

func TestRelayCommandPublishesAndServesMetrics(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "svc.db")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrs := make(chan string, 1)
	cmd := &relayCommand{onListen: func(a string) { addrs <- a }}
	var logs bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- cmd.run(ctx, []string{"-db", "sqlite://" + dbPath, "-broker", "memory://", "-migrate",
			"-listen", "127.0.0.1:0", "-poll-interval", "10ms", "-log-format", "json"}, &logs)
	}()
	var addr string
	select {
	case addr = <-addrs:
	case err := <-done:
		t.Fatalf("relay exited: %v\n%s", err, logs.String())
	case <-time.After(20 * time.Second):
		t.Fatal("relay did not start")
	}

	db, err := sql.Open("sqlite", "file:"+dbPath+"?_pragma=busy_timeout(10000)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tx, _ := db.Begin()
	w := outbox.NewWriter(sqldb.SQLite)
	for i := range 25 {
		if err := w.Send(ctx, tx, "orders", message.NewBuilder([]byte(strconv.Itoa(i))).Build()); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}

	published := regexp.MustCompile(`(?m)^courier_relay_published_total (\d+)`)
	deadline := time.Now().Add(20 * time.Second)
	for {
		body := get(t, "http://"+addr+"/metrics")
		if m := published.FindStringSubmatch(body); m != nil && m[1] == "25" {
			if !strings.Contains(body, "courier_relay_leader 1") || !strings.Contains(body, "courier_relay_lag_seconds 0") {
				t.Fatalf("metrics:\n%s", body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("published counter never reached 25:\n%s", body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if body := get(t, "http://"+addr+"/readyz"); !strings.Contains(body, "ready, leader") {
		t.Fatalf("readyz = %q", body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("relay: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("relay did not stop on cancellation")
	}
	if !strings.Contains(logs.String(), `"msg":"courier: relay stopped"`) {
		t.Fatalf("logs are not structured JSON:\n%s", logs.String())
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestRelayCommandRefusesBadInput(t *testing.T) {
	ctx := context.Background()
	dbURL := "sqlite://" + filepath.Join(t.TempDir(), "x.db")
	cases := map[string][]string{
		"missing flags":      {},
		"unknown mode":       {"-db", dbURL, "-broker", "memory://", "-mode", "fast", "-listen", ""},
		"unknown broker":     {"-db", dbURL, "-broker", "carrier-pigeon://", "-listen", ""},
		"unknown database":   {"-db", "oracle://x", "-broker", "memory://", "-listen", ""},
		"tail on sqlite":     {"-db", dbURL, "-broker", "memory://", "-mode", "tail", "-listen", ""},
		"no schema":          {"-db", dbURL, "-broker", "memory://", "-listen", ""},
		"bad log level":      {"-db", dbURL, "-broker", "memory://", "-log-level", "loud"},
		"stray argument":     {"-db", dbURL, "-broker", "memory://", "extra"},
		"unreachable server": {"-db", "mysql://u:p@127.0.0.1:1/db", "-broker", "memory://", "-listen", ""},
	}
	for name, args := range cases {
		start := time.Now()
		err := (&relayCommand{}).run(ctx, args, io.Discard)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if time.Since(start) > 10*time.Second {
			t.Errorf("%s: took %v to fail", name, time.Since(start))
		}
		t.Logf("%s: %v", name, err)
	}
}

func TestFlagsEnvironmentAndConfigFile(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "relay.json")
	os.WriteFile(cfg, []byte(`{"batch-size": 42, "name": "from-file", "mode": "tail"}`), 0o600)
	t.Setenv("COURIER_NAME", "from-env")
	t.Setenv("COURIER_CONFIG", cfg)
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	name := fs.String("name", "default", "")
	batch := fs.Int("batch-size", 1, "")
	mode := fs.String("mode", "poll", "")
	if err := parseFlags(fs, []string{"-mode", "from-flag"}); err != nil {
		t.Fatal(err)
	}
	if *name != "from-env" || *batch != 42 || *mode != "from-flag" {
		t.Fatalf("name=%q batch=%d mode=%q: want env over file, flag over all", *name, *batch, *mode)
	}
	os.WriteFile(cfg, []byte(`{"typo": 1}`), 0o600)
	if err := parseFlags(flag.NewFlagSet("t", flag.ContinueOnError), nil); err == nil {
		t.Fatal("an unknown config key was accepted")
	}
}

func TestTopLevelCommands(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"version"}, &out, io.Discard); err != nil || !strings.HasPrefix(out.String(), "courier ") {
		t.Fatalf("version: %q %v", out.String(), err)
	}
	if err := run(context.Background(), []string{"fly"}, io.Discard, io.Discard); err == nil {
		t.Fatal("unknown command accepted")
	}
	if err := run(context.Background(), nil, io.Discard, io.Discard); err == nil {
		t.Fatal("no command accepted")
	}
}
