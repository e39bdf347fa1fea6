package fooddelivery_test

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the pgx driver

	"github.com/courier-go/courier/broker/natsjs"
	"github.com/courier-go/courier/discovery/etcd/etcdserver"
	"github.com/courier-go/courier/examples/fooddelivery"
	"github.com/courier-go/courier/internal/testdb"
)

// childArgs, when set, makes the test binary run fooddelivery.Main with
// these arguments (separated by newlines) instead of the tests: one
// service per process.
const childArgs = "FOODDELIVERY_TEST_CHILD_ARGS"

func TestMain(m *testing.M) {
	if args := os.Getenv(childArgs); args != "" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
		err := fooddelivery.Main(ctx, strings.Split(args, "\n"), os.Stdout, os.Stderr)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// child is one service running in a process of its own.
type child struct {
	name string
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) WriteString(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.WriteString(s)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startChild starts the service in a new process and waits until it runs.
func startChild(t *testing.T, name string, args []string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childArgs+"="+strings.Join(append([]string{"-service", name}, args...), "\n"))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &child{name: name, cmd: cmd, out: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		defer close(c.done)
		sc := bufio.NewScanner(stdout)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			c.out.WriteString(line + "\n")
			if strings.Contains(line, "running "+name) {
				once.Do(func() { close(ready) })
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		_ = cmd.Wait()
	}()
	select {
	case <-ready:
	case <-c.done:
		t.Fatalf("%s exited before running:\n%s", name, c.out.String())
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("%s did not start within 60s:\n%s", name, c.out.String())
	}
	return c
}

// stop ends the process: SIGTERM, or SIGKILL when hard.
func (c *child) stop(hard bool) {
	sig := syscall.SIGTERM
	if hard {
		sig = syscall.SIGKILL
	}
	_ = c.cmd.Process.Signal(sig)
	select {
	case <-c.done:
	case <-time.After(20 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// TestOneProcessPerServiceOnPostgres runs every service in a process of
// its own, each with its own PostgreSQL schema and in-process outbox
// relay, over a NATS JetStream server and an etcd registry that the test
// serves on loopback ports; the scenario runs in the test's process. The
// kitchen is killed with SIGKILL while orders are in flight and started
// again: every order still reaches its final state, with nothing lost and
// nothing applied twice.
func TestOneProcessPerServiceOnPostgres(t *testing.T) {
	testdb.Postgres(t) // skips (or fails under CI) when the server is unreachable
	base := os.Getenv(testdb.PostgresEnv)
	if base == "" {
		base = testdb.PostgresDefault
	}
	prefix := fmt.Sprintf("fdt%06x_", rand.Uint32()&0xffffff)
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("schema_prefix", prefix)
	u.RawQuery = q.Encode()
	dbURL := u.String()
	t.Cleanup(func() {
		db, err := sql.Open("pgx", base)
		if err != nil {
			return
		}
		defer db.Close()
		for _, s := range fooddelivery.Services {
			db.Exec("DROP SCHEMA IF EXISTS " + prefix + strings.ReplaceAll(strings.TrimSuffix(s, "-service"), "-", "_") + " CASCADE")
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	nats, err := natsjs.StartEmbedded(ctx, t.TempDir(), natsjs.WithListenPort(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nats.Shutdown(context.Background()) })
	etcdSrv, err := etcdserver.Start(ctx, etcdserver.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { etcdSrv.Close() })
	registry := "etcd://" + strings.TrimPrefix(etcdSrv.Endpoint(), "http://")
	args := []string{"-db", dbURL, "-broker", nats.ClientURL(), "-registry", registry}

	children := map[string]*child{}
	var mu sync.Mutex
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range children {
			c.stop(false)
		}
	})
	for _, name := range fooddelivery.Services { // consumers before producers
		c := startChild(t, name, args)
		mu.Lock()
		children[name] = c
		mu.Unlock()
	}

	env, closeEnv, err := fooddelivery.URLEnv(ctx, dbURL, nats.ClientURL(), registry)
	if err != nil {
		t.Fatal(err)
	}
	defer closeEnv()
	var trace strings.Builder
	env.Trace = fooddelivery.NewTrace(&trace)
	const bulk = 10
	sc := &fooddelivery.Scenario{Env: env, Bulk: bulk, Midway: func(ctx context.Context) error {
		time.Sleep(50 * time.Millisecond)
		mu.Lock()
		kitchen := children[fooddelivery.KitchenService]
		mu.Unlock()
		kitchen.stop(true)
		restarted := startChild(t, fooddelivery.KitchenService, args)
		mu.Lock()
		children[fooddelivery.KitchenService] = restarted
		mu.Unlock()
		return nil
	}}
	rep, err := sc.Run(ctx)
	if err != nil {
		var logs strings.Builder
		mu.Lock()
		for name, c := range children {
			fmt.Fprintf(&logs, "--- %s\n%s", name, c.out.String())
		}
		mu.Unlock()
		t.Fatalf("%v\n--- scenario\n%s%s", err, trace.String(), logs.String())
	}
	// Without the in-process System the scenario skips phase 2 (menu
	// revision, stopped callees): o-5 is not placed.
	if err := rep.Check(); err != nil {
		t.Fatal(err)
	}
	if len(rep.Orders) != 4+bulk {
		t.Fatalf("%d orders, want %d", len(rep.Orders), 4+bulk)
	}
	for _, o := range rep.Orders {
		if want, ok := wantStates[o.ID]; ok && o.State != want || !ok && o.State != fooddelivery.Approved {
			t.Errorf("order %s is %s (%s)", o.ID, o.State, o.Reason)
		}
	}
}
