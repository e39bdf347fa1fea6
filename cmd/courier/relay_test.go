package main

import (
	"bytes"
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mysqldriver "github.com/go-sql-driver/mysql"
	_ "modernc.org/sqlite"

	"github.com/courier-go/courier/internal/testdb"
	"github.com/courier-go/courier/message"
	"github.com/courier-go/courier/outbox"
	"github.com/courier-go/courier/outbox/pgnotify"
	"github.com/courier-go/courier/sqldb"
)

func TestRelayCommandPublishesAndServesMetrics(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "svc.db")
	db, err := sql.Open("sqlite", "file:"+dbPath+"?_pragma=busy_timeout(10000)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	testRelayCommand(t, db, sqldb.SQLite, "sqlite://"+dbPath, "-migrate", "-poll-interval", "10ms")
}

// The tailing relays on the real servers (internal/testdb: skipped with
// instructions outside CI when a server is missing).
func TestRelayCommandTailsPostgres(t *testing.T) {
	db := testdb.Postgres(t)
	slot := "courier_cmdtest_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	t.Cleanup(func() {
		// A slot outlives the schema and would hold WAL back for good;
		// a publication outlives it too.
		db.Exec("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", slot)
		db.Exec("DROP PUBLICATION IF EXISTS " + slot)
	})
	testRelayCommand(t, db.DB, db.Dialect, db.DSN, "-mode", "tail", "-slot", slot, "-publication", slot)
}

// The polling relay on PostgreSQL listens for NOTIFY only with -notify,
// which installs the trigger: with a poll interval of an hour, only a
// notification makes it publish.
func TestRelayCommandPollsPostgres(t *testing.T) {
	for _, notify := range []bool{false, true} {
		t.Run(fmt.Sprint("notify=", notify), func(t *testing.T) {
			db := testdb.Postgres(t)
			args := []string{"-mode", "poll"}
			if notify {
				args = append(args, "-notify", "-poll-interval", "1h")
			}
			testRelayCommand(t, db.DB, db.Dialect, db.DSN, args...)
			var triggers int
			if err := db.QueryRow("SELECT COUNT(*) FROM pg_trigger WHERE tgrelid = 'message'::regclass AND tgname = $1",
				pgnotify.TriggerName).Scan(&triggers); err != nil {
				t.Fatal(err)
			}
			if want := map[bool]int{false: 0, true: 1}[notify]; triggers != want {
				t.Fatalf("%d notify triggers on the outbox table, want %d", triggers, want)
			}
		})
	}
}

func TestRelayCommandTailsMySQL(t *testing.T) {
	db := testdb.MySQL(t)
	cfg, err := mysqldriver.ParseDSN(db.DSN)
	if err != nil {
		t.Fatal(err)
	}
	u := url.URL{Scheme: "mysql", User: url.UserPassword(cfg.User, cfg.Passwd), Host: cfg.Addr, Path: "/" + cfg.DBName}
	testRelayCommand(t, db.DB, db.Dialect, u.String(), "-mode", "tail")
}

// testRelayCommand runs `courier relay` on dbURL with args, commits 25
// outbox messages and waits for the metrics to count them published, then
// checks readiness, the structured logs and the shutdown.
func testRelayCommand(t *testing.T, db *sql.DB, d *sqldb.Dialect, dbURL string, args ...string) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrs := make(chan string, 1)
	cmd := &relayCommand{onListen: func(a string) { addrs <- a }}
	var logs syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- cmd.run(ctx, append([]string{"-db", dbURL, "-broker", "memory://",
			"-listen", "127.0.0.1:0", "-log-format", "json"}, args...), &logs)
	}()
	var addr string
	select {
	case addr = <-addrs:
	case err := <-done:
		t.Fatalf("relay exited: %v\n%s", err, logs.String())
	case <-time.After(20 * time.Second):
		t.Fatal("relay did not start")
	}
	// The tailing relays publish what commits after they start reading.
	waitFor(t, addr, "/readyz", "ready, leader")

	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := outbox.NewWriter(d)
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
			if !strings.Contains(body, "courier_relay_leader 1") {
				t.Fatalf("metrics:\n%s", body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("published counter never reached 25:\n%s\nlogs:\n%s", body, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
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

// waitFor polls path on addr until its body contains want.
func waitFor(t *testing.T, addr, path, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		body := get(t, "http://"+addr+path)
		if strings.Contains(body, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %q, want %q", path, body, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer safe for the relay's logger and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
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

// -notify (COURIER_NOTIFY) is refused before connecting where it cannot
// work: in tail mode, and on databases without LISTEN/NOTIFY.
func TestRelayCommandRefusesNotifyOutsidePostgresPolling(t *testing.T) {
	ctx := context.Background()
	sqliteURL := "sqlite://" + filepath.Join(t.TempDir(), "x.db")
	unreachable := "postgres://u:p@127.0.0.1:1/db"
	cases := map[string]struct {
		args []string
		env  bool
		want string
	}{
		"sqlite":          {[]string{"-db", sqliteURL}, false, "-notify needs PostgreSQL"},
		"mysql":           {[]string{"-db", "mysql://u:p@127.0.0.1:1/db"}, false, "-notify needs PostgreSQL"},
		"tail":            {[]string{"-db", unreachable, "-mode", "tail"}, false, "-notify is for -mode poll"},
		"sqlite from env": {[]string{"-db", sqliteURL}, true, "-notify needs PostgreSQL"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			args := append([]string{"-broker", "memory://", "-listen", ""}, c.args...)
			if c.env {
				t.Setenv("COURIER_NOTIFY", "true")
			} else {
				args = append(args, "-notify")
			}
			err := (&relayCommand{}).run(ctx, args, io.Discard)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one saying %q", err, c.want)
			}
		})
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
