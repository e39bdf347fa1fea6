package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/courier-go/courier/discovery/registryurl"
	"github.com/courier-go/courier/examples/fooddelivery"
	"github.com/courier-go/courier/internal/console"
	"github.com/courier-go/courier/internal/testcert"
	"github.com/courier-go/courier/message"
)

// startConsole runs courier console with args on a free port until the
// test ends and returns its address.
func startConsole(t *testing.T, c *commands, args ...string) string {
	t.Helper()
	ready := make(chan string, 1)
	c.start(func(ctx context.Context) error {
		return (&consoleCommand{ready: ready}).run(ctx, append([]string{"-listen", "127.0.0.1:0", "-log-level", "error"}, args...), io.Discard)
	})
	select {
	case addr := <-ready:
		return addr
	case <-time.After(30 * time.Second):
		t.Fatal("the console did not start")
		return ""
	}
}

// chromium returns the path of the headless browser: COURIER_CHROMIUM,
// or the first of the usual names on PATH. Without one the test skips,
// except in CI (CI=true), where it fails.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("COURIER_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no Chromium: run scripts/services/chromium.sh as root (apt-get install chromium), or set COURIER_CHROMIUM"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// TestConsoleShowsTheDemoInChromium runs the food-delivery system on an
// etcd registry (courier registry), its scenario, and a poison command
// that the kitchen dead-letters; serves courier console, behind a bearer
// token, on that registry; and checks in headless Chromium what the page
// shows as it refreshes itself: the seven services and their healthy
// instances, the order service's breakers, each service's relay leading,
// the kitchen's consumers and its dead letter with the replay command. It
// saves a screenshot of the page in the test's artifact directory (go
// test -artifacts keeps it).
func TestConsoleShowsTheDemoInChromium(t *testing.T) {
	browser := chromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c := newCommands(t)
	etcdURL := "etcd://" + strings.TrimPrefix(c.registry(), "http://")

	env, closeEnv, err := fooddelivery.EmbeddedEnv(ctx, t.TempDir(), -1)
	if err != nil {
		t.Fatal(err)
	}
	defer closeEnv(context.Background())
	reg, err := registryurl.Open(ctx, etcdURL)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	env.Registry = reg
	sys, err := fooddelivery.Start(ctx, env)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := sys.Stop(sctx); err != nil {
			t.Error(err)
		}
	}()
	// The scenario opens the order service's breakers (it stops the
	// consumer and restaurant services' servers) and closes them again.
	if _, err := (&fooddelivery.Scenario{Env: env, System: sys, Bulk: 4}).Run(ctx); err != nil {
		t.Fatalf("scenario: %v", err)
	}
	b, err := env.OpenBroker(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(context.Background())
	poison := message.New([]byte(`{}`))
	poison.SetHeader(message.HeaderCommandType, "fooddelivery.NoSuchCommand")
	poison.SetHeader(message.HeaderPartitionID, "o-poison")
	if err := b.Send(ctx, fooddelivery.KitchenCommands, poison); err != nil {
		t.Fatal(err)
	}

	token := "c0nsole-t0ken"
	addr := startConsole(t, c, "-registry", etcdURL, "-interval", "300ms", "-auth-token-file", writeFile(t, "token", token+"\n"),
		"-broker", "nats://ops:s3cret@nats.internal:4222")

	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]), chromedp.ExecPath(browser), chromedp.NoSandbox,
		chromedp.WindowSize(1400, 1600))
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	if _, err := chromedp.Call(bctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	headers := network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Authorization": "Bearer " + token}}
	if _, err := chromedp.Call(bctx, network.SetExtraHTTPHeaders, headers); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	if err := chromedp.Do(bctx, chromedp.Navigate("http://"+addr+"/")); err != nil {
		t.Fatalf("chromium: %v", err)
	}

	// The page's tables as the browser renders them, cell by cell.
	type page struct {
		Updated                                            string
		Services, Breakers, Relays, Consumers, DeadLetters [][]string
	}
	const read = `(() => {
		const rows = id => Array.from(document.querySelectorAll("#" + id + " tr")).slice(1).map(r => Array.from(r.cells).map(c => c.innerText.trim()));
		return {Updated: document.getElementById("console").dataset.updated, Services: rows("services"), Breakers: rows("breakers"),
			Relays: rows("relays"), Consumers: rows("consumers"), DeadLetters: rows("dead-letters")};
	})()`
	var first, p page
	var problems []string
	deadline := time.Now().Add(30 * time.Second)
	for {
		p, err = chromedp.Run(bctx, chromedp.Evaluate[page](read))
		if err != nil {
			t.Fatalf("chromium: %v", err)
		}
		if first.Updated == "" {
			first = p
		}
		if problems = checkPage(p.Services, p.Breakers, p.Relays, p.Consumers, p.DeadLetters); len(problems) == 0 && p.Updated != first.Updated {
			break
		}
		if p.Updated == first.Updated {
			problems = append(problems, "the page did not refresh itself")
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if shot, err := chromedp.Run(bctx, chromedp.FullScreenshot(100)); err != nil {
		t.Errorf("screenshot: %v", err)
	} else {
		path := filepath.Join(t.ArtifactDir(), "console.png")
		if err := os.WriteFile(path, shot, 0o644); err != nil {
			t.Error(err)
		}
		t.Logf("screenshot of the console: %s", path)
	}
	if len(problems) > 0 {
		js, _ := json.MarshalIndent(p, "", "  ")
		t.Fatalf("the page does not show what it should:\n  %s\npage:\n%s", strings.Join(problems, "\n  "), js)
	}

	// Without the token the console answers nothing but 401.
	for _, path := range []string{"/", "/api/state"} {
		if resp, err := http.Get("http://" + addr + path); err != nil || resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s without the token: %v %v; want 401", path, resp.Status, err)
		}
	}
}

// checkPage says what the console's tables lack of the demo's state.
func checkPage(services, breakers, relays, consumers, dead [][]string) []string {
	var problems []string
	shown := map[string]int{} // healthy instances by service
	var service string
	for _, r := range services {
		if len(r) < 5 {
			continue
		}
		if r[0] != "" {
			service = r[0]
		}
		if r[4] == "healthy" {
			shown[service]++
		}
	}
	for _, s := range fooddelivery.Services {
		if shown[s] == 0 {
			problems = append(problems, "no healthy instance of "+s)
		}
	}
	has := func(rows [][]string, what string, match func(r []string) bool) {
		for _, r := range rows {
			if match(r) {
				return
			}
		}
		problems = append(problems, "no "+what)
	}
	has(breakers, "closed consumer-service breaker in the order service", func(r []string) bool {
		return len(r) == 6 && strings.HasPrefix(r[0], "order-service/") && r[1] == "consumer-service" && r[3] == "closed"
	})
	has(breakers, "closed restaurant-service breaker that rejected calls", func(r []string) bool {
		return len(r) == 6 && r[1] == "restaurant-service" && r[3] == "closed" && r[4] != "0"
	})
	for _, s := range fooddelivery.Services {
		has(relays, "relay "+s+" leading", func(r []string) bool {
			return len(r) == 9 && r[0] == s && strings.HasPrefix(r[1], s+"/") && r[2] == "poll" && r[3] == "leader"
		})
	}
	has(consumers, "kitchen consumer of its commands that handled some", func(r []string) bool {
		return len(r) == 9 && r[0] == fooddelivery.KitchenService && r[1] == fooddelivery.KitchenCommands && r[3] != "0"
	})
	has(dead, "dead letter of the kitchen with its replay command", func(r []string) bool {
		return len(r) == 4 && r[0] == fooddelivery.KitchenService && r[1] == fooddelivery.KitchenCommands && r[2] == "1" &&
			r[3] == "courier deadletter replay -broker nats://ops:xxxxx@nats.internal:4222 -subscriber kitchen-service"
	})
	return problems
}

// TestConsoleRequiresTLSAndAuthentication serves the console as courier
// relay's endpoints are served in TestRelayEndpointsRequireTLSAndAuthentication:
// TLS only, client certificates of the CA, and basic authentication; and
// has it scrape an endpoint over TLS with a client certificate and a
// bearer token.
func TestConsoleRequiresTLSAndAuthentication(t *testing.T) {
	ca := testcert.NewCA(t)
	server := ca.Server(t, "console")
	users := writeFile(t, "users", "ops:c0nsole-pw\n")

	// A relay's metrics endpoint, locked down the same way with a token.
	token := writeFile(t, "token", "scr4pe-t0ken\n")
	relayServer := ca.Server(t, "relay")
	_, dbURL := sqliteOutbox(t)
	r := startRelay(t, &relayCommand{}, "-db", dbURL, "-broker", "memory://", "-log-level", "error",
		"-tls-cert", relayServer.CertFile, "-tls-key", relayServer.KeyFile, "-tls-client-ca", ca.CertFile, "-auth-token-file", token)
	scraper := ca.Client(t, "scraper", "console")

	c := newCommands(t)
	addr := startConsole(t, c, "-registry", "", "-interval", "200ms", "-metrics", "orders-relay=https://"+r.addr+"/metrics",
		"-scrape-ca", ca.CertFile, "-scrape-cert", scraper.CertFile, "-scrape-key", scraper.KeyFile, "-scrape-token-file", token,
		"-tls-cert", server.CertFile, "-tls-key", server.KeyFile, "-tls-client-ca", ca.CertFile, "-auth-basic-file", users)
	operator := ca.Client(t, "operator", "ops")
	get := func(client *http.Client, path, user, pass string) (int, string, error) {
		return request(client, "https://"+addr+path, func(r *http.Request) {
			if user != "" {
				r.SetBasicAuth(user, pass)
			}
		})
	}
	var st console.State
	r.eventually(t, "the console to show the relay leading", func() bool {
		code, body, err := get(httpsClient(ca, &operator), "/api/state", "ops", "c0nsole-pw")
		if err != nil || code != http.StatusOK || json.Unmarshal([]byte(body), &st) != nil {
			return false
		}
		return len(st.Relays) == 1 && st.Relays[0].Role == "leader" && st.Relays[0].Endpoint == "orders-relay"
	})
	if code, body, err := get(httpsClient(ca, &operator), "/", "ops", "c0nsole-pw"); err != nil || code != http.StatusOK ||
		!strings.Contains(body, "orders-relay") {
		t.Errorf("/ = %d %v", code, err)
	}
	for why, c := range map[string]struct {
		client     *http.Client
		user, pass string
	}{
		"no password":    {httpsClient(ca, &operator), "", ""},
		"wrong password": {httpsClient(ca, &operator), "ops", "guessed"},
	} {
		if code, _, err := get(c.client, "/api/state", c.user, c.pass); err != nil || code != http.StatusUnauthorized {
			t.Errorf("with %s: %d %v, want 401", why, code, err)
		}
	}
	if _, _, err := get(httpsClient(ca, nil), "/api/state", "ops", "c0nsole-pw"); err == nil {
		t.Error("the console answered a client without a certificate")
	}
	if resp, err := http.Get("http://" + addr + "/api/state"); err == nil && resp.StatusCode == http.StatusOK {
		t.Error("the console answered plain HTTP")
	}
}

// TestConsoleFlags checks the flags the console refuses, with exit
// status 2, and that it binds to localhost by default.
func TestConsoleFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-metrics", "nourl"},
		{"-metrics", "a=ftp://x/metrics"},
		{"-metrics", "a=http://x/m,a=http://y/m"},
		{"-registry", "", "-metrics", "a=http://x/m", "-interval", "1ms"},
		{"-registry", "dns://127.0.0.1:1"},
		{"-registry", "", "-services", "a b", "-metrics", "a=http://x/m"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := run(ctx, append([]string{"console", "-listen", "127.0.0.1:0"}, args...), io.Discard, io.Discard)
		cancel()
		if exitCode(err) != 2 {
			t.Errorf("courier console %v: %v (exit %d); want a usage error", args, err, exitCode(err))
		}
	}
	var help strings.Builder
	if err := run(context.Background(), []string{"console", "-h"}, io.Discard, &help); exitCode(err) != 0 {
		t.Fatalf("courier console -h: %v", err)
	}
	if !strings.Contains(help.String(), `(default "127.0.0.1:9470")`) {
		t.Errorf("-listen does not default to localhost:\n%s", help.String())
	}
}
