package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/courier-go/courier/discovery"
	"github.com/courier-go/courier/discovery/registryurl"
	"github.com/courier-go/courier/internal/testcert"
)

// commands runs commands until the test ends, and then checks that each
// stopped without an error.
type commands struct {
	t    *testing.T
	ctx  context.Context
	errs []chan error
}

func newCommands(t *testing.T) *commands {
	ctx, cancel := context.WithCancel(context.Background())
	c := &commands{t: t, ctx: ctx}
	t.Cleanup(func() {
		cancel()
		for _, e := range c.errs {
			if err := <-e; err != nil {
				t.Errorf("command: %v", err)
			}
		}
	})
	return c
}

func (c *commands) start(f func(ctx context.Context) error) {
	e := make(chan error, 1)
	c.errs = append(c.errs, e)
	go func() { e <- f(c.ctx) }()
}

// registry starts courier registry with args and returns the endpoint it
// prints.
func (c *commands) registry(args ...string) string {
	c.t.Helper()
	pr, pw := io.Pipe()
	c.start(func(ctx context.Context) error {
		defer pw.Close()
		return run(ctx, append([]string{"registry", "-dir", c.t.TempDir(), "-listen", "127.0.0.1:0", "-peer", "127.0.0.1:0",
			"-etcd-log-level", "fatal", "-log-level", "error"}, args...), pw, io.Discard)
	})
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		c.t.Fatalf("registry: %v", err)
	}
	go io.Copy(io.Discard, pr)
	return strings.TrimSpace(line)
}

// writeFile writes data to a new file of the test and returns its path.
func writeFile(t *testing.T, name, data string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// httpsClient trusts ca and presents client, if given.
func httpsClient(ca *testcert.CA, client *testcert.Pair) *http.Client {
	tc := &tls.Config{RootCAs: ca.Pool()}
	if client != nil {
		cert, _ := tls.X509KeyPair(client.CertPEM, client.KeyPEM)
		tc.Certificates = []tls.Certificate{cert}
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
}

// TestSecureRegistryRegistrarRouter runs the discovery commands locked
// down: a registry serving TLS only, requiring client certificates and
// authentication (users orders, who may register, and router, who may
// only read); a registrar registering a TLS backend as orders; a router
// reading as router, verifying the backend's certificate with the CA, and
// itself requiring a client certificate and a bearer token. A rogue
// registration, by a client that is no user or is the read-only router,
// is refused, so the router only ever sends traffic to the backend.
func TestSecureRegistryRegistrarRouter(t *testing.T) {
	ca := testcert.NewCA(t)
	server := ca.Server(t, "server")
	users := writeFile(t, "users.json", `[{"name":"root","password":"r00t-pw"},{"name":"orders","password":"wr1ter-pw"},
		{"name":"router","password":"r3ader-pw","read_only":true}]`)
	c := newCommands(t)
	endpoint := c.registry("-users", users, "-tls-cert", server.CertFile, "-tls-key", server.KeyFile, "-tls-client-ca", ca.CertFile)
	host, ok := strings.CutPrefix(endpoint, "https://")
	if !ok {
		t.Fatalf("the registry serves %s, not https", endpoint)
	}
	files := func(cn string) string {
		p := ca.Client(t, "client-"+cn, cn)
		return url.Values{"cacertfile": {ca.CertFile}, "certfile": {p.CertFile}, "keyfile": {p.KeyFile}}.Encode()
	}

	// The attack of the issue: a rogue instance registered as orders.
	for who, raw := range map[string]string{
		"no user":           "etcd://" + host + "?" + files("rogue"),
		"the router":        "etcd://" + host + "?" + files("router"),
		"a wrong password":  "etcd://orders:guessed@" + host + "?" + files("rogue"),
		"no TLS":            "etcd://" + host,
		"no client cert":    "etcd://" + host + "?cacertfile=" + url.QueryEscape(ca.CertFile),
		"another CA's cert": "etcd://" + host + "?" + strings.Replace(files("orders"), url.QueryEscape(ca.CertFile), url.QueryEscape(testcert.NewCA(t).CertFile), 1),
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		r, err := registryurl.Open(ctx, raw, registryurl.WithTimeout(time.Second))
		if err == nil {
			_, err = r.Register(ctx, discovery.Instance{Service: "orders", ID: "rogue", Address: "127.0.0.1:1"})
			r.Close()
		}
		cancel()
		if err == nil {
			t.Fatalf("%s registered a rogue instance", who)
		}
	}

	backend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "orders "+r.URL.Path)
	}))
	bp := ca.Server(t, "backend")
	backendCert, err := tls.X509KeyPair(bp.CertPEM, bp.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	backend.TLS = &tls.Config{Certificates: []tls.Certificate{backendCert}}
	backend.Config.ErrorLog = log.New(io.Discard, "", 0) // the registrar's TCP checks
	backend.StartTLS()
	defer backend.Close()
	targets := writeFile(t, "targets.json", mustJSON(t, []map[string]string{{"service": "orders", "id": "o1",
		"address": strings.TrimPrefix(backend.URL, "https://")}}))
	c.start(func(ctx context.Context) error {
		return run(ctx, []string{"registrar", "-registry", "etcd://orders:wr1ter-pw@" + host + "?" + files("registrar"),
			"-targets", targets, "-interval", "100ms", "-log-level", "error"}, io.Discard, io.Discard)
	})

	token := writeFile(t, "token", "t0ken-for-the-router\n")
	ready := make(chan string, 1)
	c.start(func(ctx context.Context) error {
		return (&routerCommand{ready: ready}).run(ctx, []string{"-registry", "etcd://" + host + "?" + files("router"),
			"-listen", "127.0.0.1:0", "-routes", "/orders/=orders:https:strip", "-upstream-ca", ca.CertFile,
			"-tls-cert", server.CertFile, "-tls-key", server.KeyFile, "-tls-client-ca", ca.CertFile, "-auth-token-file", token,
			"-log-level", "error"}, io.Discard)
	})
	var addr string
	select {
	case addr = <-ready:
	case <-time.After(30 * time.Second):
		t.Fatal("router did not start")
	}
	caller := ca.Client(t, "caller", "caller")
	get := func(client *http.Client, token string) (int, string, error) {
		return request(client, "https://"+addr+"/orders/1", func(r *http.Request) {
			if token != "" {
				r.Header.Set("Authorization", "Bearer "+token)
			}
		})
	}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		code, body, err := get(httpsClient(ca, &caller), "t0ken-for-the-router")
		if err == nil && code == http.StatusOK && body == "orders /1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the router never reached the backend: %d %q %v", code, body, err)
		}
	}
	if code, _, err := get(httpsClient(ca, &caller), ""); err != nil || code != http.StatusUnauthorized {
		t.Errorf("without the token: %d %v, want 401", code, err)
	}
	if code, _, err := get(httpsClient(ca, &caller), "wrong"); err != nil || code != http.StatusUnauthorized {
		t.Errorf("with a wrong token: %d %v, want 401", code, err)
	}
	if _, _, err := get(httpsClient(ca, nil), "t0ken-for-the-router"); err == nil {
		t.Error("the router answered a client without a certificate")
	}
	if resp, err := http.Get("http://" + addr + "/orders/1"); err == nil && resp.StatusCode == http.StatusOK {
		t.Error("the router answered plain HTTP")
	}
}

// request GETs url with client, after auth sets the request's
// credentials, and returns the status and the body.
func request(client *http.Client, url string, auth func(*http.Request)) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	auth(req)
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestRelayEndpointsRequireTLSAndAuthentication runs the relay with its
// endpoints on TLS only, requiring client certificates and a password:
// a client with both reads /readyz and /metrics; without the password,
// with a wrong one, without a certificate, or over plain HTTP, it does
// not.
func TestRelayEndpointsRequireTLSAndAuthentication(t *testing.T) {
	ca := testcert.NewCA(t)
	server := ca.Server(t, "relay")
	users := writeFile(t, "users", "# who may read the relay's endpoints\nprometheus:scr4pe-pw\n")
	_, dbURL := sqliteOutbox(t)
	r := startRelay(t, &relayCommand{}, "-db", dbURL, "-broker", "memory://", "-log-level", "error",
		"-tls-cert", server.CertFile, "-tls-key", server.KeyFile, "-tls-client-ca", ca.CertFile, "-auth-basic-file", users)
	scraper := ca.Client(t, "scraper", "prometheus")
	get := func(client *http.Client, path, user, pass string) (int, string, error) {
		return request(client, "https://"+r.addr+path, func(r *http.Request) {
			if user != "" {
				r.SetBasicAuth(user, pass)
			}
		})
	}
	r.eventually(t, "/readyz over TLS", func() bool {
		code, body, _ := get(httpsClient(ca, &scraper), "/readyz", "prometheus", "scr4pe-pw")
		return code == http.StatusOK && strings.Contains(body, "ready")
	})
	if code, body, err := get(httpsClient(ca, &scraper), "/metrics", "prometheus", "scr4pe-pw"); err != nil || code != http.StatusOK ||
		!strings.Contains(body, "courier_relay_leader") {
		t.Errorf("/metrics = %d %v", code, err)
	}
	for why, c := range map[string]struct {
		client     *http.Client
		user, pass string
	}{
		"no password":    {httpsClient(ca, &scraper), "", ""},
		"wrong password": {httpsClient(ca, &scraper), "prometheus", "guessed"},
		"unknown user":   {httpsClient(ca, &scraper), "root", "scr4pe-pw"},
	} {
		if code, _, err := get(c.client, "/metrics", c.user, c.pass); err != nil || code != http.StatusUnauthorized {
			t.Errorf("with %s: %d %v, want 401", why, code, err)
		}
	}
	if _, _, err := get(httpsClient(ca, nil), "/metrics", "prometheus", "scr4pe-pw"); err == nil {
		t.Error("the relay answered a client without a certificate")
	}
	if resp, err := http.Get("http://" + r.addr + "/metrics"); err == nil && resp.StatusCode == http.StatusOK {
		t.Error("the relay answered plain HTTP")
	}
}

func TestParseUsersAndPasswords(t *testing.T) {
	users, err := parseUsers([]byte(`[{"name":"root","password":"a"},{"name":"router","password":"b","read_only":true}]`))
	if err != nil || len(users) != 2 || !users[1].ReadOnly || users[0].Password != "a" {
		t.Fatalf("parseUsers = %+v, %v", users, err)
	}
	for _, bad := range []string{``, `{}`, `[{"name":"orders","password":"a"}]`, `[{"name":"root","password":""}]`,
		`[{"name":"root","password":"a","role":"x"}]`, `[{"name":"root","password":"a"}] []`,
		`[{"name":"root","password":"a"},{"name":"root","password":"b"}]`, `[{"name":"root","password":"a","read_only":true}]`} {
		if _, err := parseUsers([]byte(bad)); err == nil {
			t.Errorf("parseUsers(%q) accepted", bad)
		}
	}
	if _, err := parseUsers([]byte(`[{"name":"root","password":12345678}]`)); err == nil || strings.Contains(err.Error(), "12345678") {
		t.Errorf("a password of the wrong type: %v", err)
	}
	basic, err := parseBasicUsers([]byte("# users\n\nprometheus:a:b\n  ops:c  \n"))
	if err != nil || len(basic) != 2 {
		t.Fatalf("parseBasicUsers = %v, %v", basic, err)
	}
	for _, bad := range []string{"", "# only a comment\n", "nocolon\n", ":pw\n", "user:\n", "a:1\na:2\n"} {
		if _, err := parseBasicUsers([]byte(bad)); err == nil {
			t.Errorf("parseBasicUsers(%q) accepted", bad)
		} else if strings.Contains(err.Error(), "pw") {
			t.Errorf("parseBasicUsers(%q): the error shows the line: %v", bad, err)
		}
	}
}
