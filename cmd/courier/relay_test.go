package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	mysqldriver "github.com/go-sql-driver/mysql"
	_ "modernc.org/sqlite"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/memory"
	"github.com/courier-go/courier/internal/testdb"
	"github.com/courier-go/courier/internal/testlog"
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
	db, dbURL, _ := mysqlOutbox(t)
	testRelayCommand(t, db.DB, db.Dialect, dbURL, "-mode", "tail")
}

// mysqlOutbox returns a new MySQL/MariaDB database with the Courier
// schema, its mysql:// URL and its name.
func mysqlOutbox(t *testing.T) (*testdb.DB, string, string) {
	db := testdb.MySQL(t)
	cfg, err := mysqldriver.ParseDSN(db.DSN)
	if err != nil {
		t.Fatal(err)
	}
	u := url.URL{Scheme: "mysql", User: url.UserPassword(cfg.User, cfg.Passwd), Host: cfg.Addr, Path: "/" + cfg.DBName}
	return db, u.String(), cfg.DBName
}

// relayRun is a `courier relay` a test started.
type relayRun struct {
	addr string      // of the HTTP endpoint
	logs *syncBuffer // what it printed
	done chan error
	stop context.CancelFunc
}

// startRelay runs cmd with args (-listen 127.0.0.1:0 is added) until the
// test ends or wait is called, and returns once it listens.
func startRelay(t *testing.T, cmd *relayCommand, args ...string) *relayRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan string, 1)
	cmd.onListen = func(a string) { addrs <- a }
	r := &relayRun{logs: &syncBuffer{}, done: make(chan error, 1), stop: cancel}
	go func() { r.done <- cmd.run(ctx, append(args, "-listen", "127.0.0.1:0"), r.logs) }()
	t.Cleanup(func() { r.wait(t) })
	select {
	case r.addr = <-addrs:
	case err := <-r.done:
		r.done <- err
		t.Fatalf("relay exited: %v\n%s", err, r.logs.String())
	case <-time.After(20 * time.Second):
		t.Fatal("relay did not start")
	}
	return r
}

// wait stops the relay and fails the test if it does not stop within 10
// seconds or stops with an error.
func (r *relayRun) wait(t *testing.T) {
	t.Helper()
	r.stop()
	select {
	case err := <-r.done:
		r.done <- err // for a second call
		if err != nil {
			t.Fatalf("relay: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("relay did not stop on cancellation")
	}
}

// metric reads a metric's value from the relay's /metrics.
func (r *relayRun) metric(t *testing.T, name string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + name + `(?:\{[^}]*\})? (\S+)$`).FindStringSubmatch(get(t, "http://"+r.addr+"/metrics"))
	if m == nil {
		t.Fatalf("no metric %s", name)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// eventually fails the test if cond is not true within 20 seconds.
func (r *relayRun) eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; logs:\n%s", what, r.logs.String())
		}
	}
}

// commitMessages commits n outbox messages to the channel "orders".
func commitMessages(t *testing.T, db *sql.DB, d *sqldb.Dialect, n int) {
	t.Helper()
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := outbox.NewWriter(d)
	for i := range n {
		if err := w.Send(ctx, tx, "orders", message.NewBuilder([]byte(strconv.Itoa(i))).Build()); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// testRelayCommand runs `courier relay` on dbURL with args, commits 25
// outbox messages and waits for the metrics to count them published, then
// checks readiness, the metrics' labels and latencies, the progress
// lines, the structured logs and the shutdown.
func testRelayCommand(t *testing.T, db *sql.DB, d *sqldb.Dialect, dbURL string, args ...string) {
	source := "poll"
	if slices.Contains(args, "tail") {
		source = map[*sqldb.Dialect]string{sqldb.Postgres: "pgcdc", sqldb.MySQL: "mysqlcdc"}[d]
	}
	r := startRelay(t, &relayCommand{}, append([]string{"-db", dbURL, "-broker", "memory://", "-log-format", "json", "-progress", "100ms"}, args...)...)
	// The tailing relays publish what commits after they start reading.
	waitFor(t, r.addr, "/readyz", "ready, leader")
	commitMessages(t, db, d, 25)
	r.eventually(t, "the published counter to reach 25", func() bool { return r.metric(t, "courier_relay_published_total") == 25 })
	if r.metric(t, "courier_relay_leader") != 1 {
		t.Fatal("the relay that published is not the leader")
	}
	labels := `{relay="outbox",source="` + source + `"}`
	metrics := get(t, "http://"+r.addr+"/metrics")
	for _, want := range []string{"courier_relay_published_total" + labels + " 25", "courier_relay_publish_latency_seconds_count" + labels + " 25",
		"courier_relay_batch_rows_count" + labels} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s:\n%s", want, metrics)
		}
	}
	r.eventually(t, "a progress line counting the messages", func() bool {
		return strings.Contains(r.logs.String(), `"msg":"courier: outbox relay progress","relay":"outbox"`) &&
			strings.Contains(r.logs.String(), `"published_total":25`)
	})
	r.wait(t)
	if !strings.Contains(r.logs.String(), `"msg":"courier: relay stopped"`) {
		t.Fatalf("logs are not structured JSON:\n%s", r.logs.String())
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
type syncBuffer = testlog.Buffer

func get(t *testing.T, url string) string {
	t.Helper()
	_, body := getStatus(t, url)
	return body
}

// getStatus returns the status code and body of a GET of url.
func getStatus(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
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
		"eventuate ids only": {"-db", dbURL, "-broker", "memory://", "-eventuate-db-ids", "-listen", ""},
		"eventuate sqlite":   {"-db", dbURL, "-broker", "memory://", "-eventuate-schema", "eventuate", "-listen", ""},
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

// failingBroker refuses every Send while down is set.
type failingBroker struct {
	broker.Broker
	down atomic.Bool
}

func (b *failingBroker) Send(ctx context.Context, channel string, msgs ...*message.Message) error {
	if b.down.Load() {
		return errors.New("broker unavailable")
	}
	return b.Broker.Send(ctx, channel, msgs...)
}

// sqliteOutbox returns a new SQLite database with the Courier schema and
// its URL.
func sqliteOutbox(t *testing.T) (*sql.DB, string) {
	path := filepath.Join(t.TempDir(), "svc.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := sqldb.Migrate(context.Background(), db, sqldb.SQLite); err != nil {
		t.Fatal(err)
	}
	return db, "sqlite://" + path
}

// While the broker refuses, /readyz answers 503 with the failure and the
// publish-errors counter moves; once the broker is back, the relay
// publishes what waited and is ready again.
func TestRelayReadinessFollowsTheBroker(t *testing.T) {
	db, dbURL := sqliteOutbox(t)
	mem, err := memory.New()
	if err != nil {
		t.Fatal(err)
	}
	b := &failingBroker{Broker: mem}
	cmd := &relayCommand{openBroker: func(context.Context, string) (broker.Broker, error) { return b, nil }}
	r := startRelay(t, cmd, "-db", dbURL, "-broker", "memory://", "-poll-interval", "10ms", "-log-level", "error")
	readyz := "http://" + r.addr + "/readyz"
	waitFor(t, r.addr, "/readyz", "ready, leader")
	commitMessages(t, db, sqldb.SQLite, 1)
	r.eventually(t, "the first message", func() bool { return r.metric(t, "courier_relay_published_total") == 1 })

	b.down.Store(true)
	commitMessages(t, db, sqldb.SQLite, 1)
	r.eventually(t, "/readyz to report the outage", func() bool {
		code, body := getStatus(t, readyz)
		return code == http.StatusServiceUnavailable && strings.Contains(body, "publishing fails since") && strings.Contains(body, "broker unavailable")
	})
	r.eventually(t, "the publish errors to be counted", func() bool { return r.metric(t, "courier_relay_publish_errors_total") >= 2 })
	if r.metric(t, "courier_relay_publish_failing") != 1 || r.metric(t, "courier_relay_published_total") != 1 {
		t.Fatal("the metrics do not show the outage")
	}
	errs := r.metric(t, "courier_relay_publish_errors_total")

	b.down.Store(false)
	r.eventually(t, "the relay to publish again", func() bool { return r.metric(t, "courier_relay_published_total") == 2 })
	if code, body := getStatus(t, readyz); code != http.StatusOK || !strings.Contains(body, "ready, leader") {
		t.Fatalf("/readyz = %d %q after the outage", code, body)
	}
	if r.metric(t, "courier_relay_publish_failing") != 0 || r.metric(t, "courier_relay_publish_errors_total") < errs {
		t.Fatal("the metrics did not recover")
	}
}

// checkLogLines fails the test unless every line of logs is a JSON object
// at level min or above, and returns the messages.
func checkLogLines(t *testing.T, logs string, min slog.Level) []string {
	t.Helper()
	var msgs []string
	for line := range strings.Lines(strings.TrimSpace(logs)) {
		var rec struct {
			Level slog.Level
			Msg   string
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("a log line is not JSON (%v): %s", err, line)
		}
		if rec.Level < min {
			t.Fatalf("a line below level %v: %s", min, line)
		}
		msgs = append(msgs, rec.Msg)
	}
	return msgs
}

// -log-format and -log-level shape every line the relay prints, also those
// of libraries that log to slog.Default or the standard log package.
func TestRelayLogsFollowTheFlags(t *testing.T) {
	for _, c := range []struct {
		level      slog.Level
		want, skip []string
	}{
		{slog.LevelWarn, []string{"library warning"}, []string{"library info", "standard log line", "courier: relay starting"}},
		{slog.LevelDebug, []string{"library debug", "library warning", "standard log line", "courier: relay starting", "courier: relay stopped"}, nil},
	} {
		t.Run(c.level.String(), func(t *testing.T) {
			_, dbURL := sqliteOutbox(t)
			r := startRelay(t, &relayCommand{}, "-db", dbURL, "-broker", "memory://", "-log-format", "json", "-log-level", c.level.String())
			waitFor(t, r.addr, "/readyz", "ready, leader")
			slog.Default().Debug("library debug")
			slog.Default().Info("library info")
			slog.Default().Warn("library warning")
			log.Print("standard log line")
			r.wait(t)
			msgs := checkLogLines(t, r.logs.String(), c.level)
			for _, m := range c.want {
				if !slices.Contains(msgs, m) {
					t.Errorf("no line %q in:\n%s", m, r.logs.String())
				}
			}
			for _, m := range c.skip {
				if slices.Contains(msgs, m) {
					t.Errorf("a line %q below level %v", m, c.level)
				}
			}
		})
	}
	// The command gives the default loggers back when it ends.
	if h := slog.Default().Handler(); slog.Default().Enabled(context.Background(), slog.LevelDebug) || strings.Contains(fmt.Sprintf("%T", h), "JSON") {
		t.Fatalf("the default logger still is the relay's: %T", h)
	}
}

// The MySQL driver's own log lines, about connections the server closed,
// print through the relay's logger too.
func TestRelayLogsTheMySQLDriverThroughTheFlags(t *testing.T) {
	db, dbURL, name := mysqlOutbox(t)
	r := startRelay(t, &relayCommand{}, "-db", dbURL, "-broker", "memory://", "-poll-interval", "10ms", "-log-format", "json")
	waitFor(t, r.addr, "/readyz", "ready, leader")

	// The server closes the relay's connections, as wait_timeout or a
	// restart would: the driver notices, and says so, at its next use.
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r.eventually(t, "a line of the MySQL driver", func() bool {
		rows, err := conn.QueryContext(ctx, "SELECT id FROM information_schema.processlist WHERE db = ? AND id <> CONNECTION_ID()", name)
		if err != nil {
			t.Fatal(err)
		}
		var ids []int64
		for rows.Next() {
			var id int64
			rows.Scan(&id)
			ids = append(ids, id)
		}
		rows.Close()
		for _, id := range ids {
			conn.ExecContext(ctx, fmt.Sprintf("KILL %d", id)) // may be gone already
		}
		return strings.Contains(r.logs.String(), `"driver":"mysql"`)
	})
	r.wait(t)
	checkLogLines(t, r.logs.String(), slog.LevelInfo)
	t.Logf("driver lines:\n%s", grepLines(r.logs.String(), `"driver":"mysql"`))
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out strings.Builder
	for line := range strings.Lines(s) {
		if strings.Contains(line, sub) {
			out.WriteString(line)
		}
	}
	return out.String()
}
