package main

import (
	"flag"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/courier-go/courier/discovery"
	"github.com/courier-go/courier/discovery/memory"
	"github.com/courier-go/courier/discovery/router"
)

// FuzzRoutes parses -routes of any content and routes a request of any
// host and path through the router they make: parsing must accept or
// refuse, never panic, and accept only routes to a service, by host or by
// a path prefix; routing must answer, with no instance registered, with
// an error status, never panic.
//
//	go test -fuzz FuzzRoutes ./cmd/courier/
func FuzzRoutes(f *testing.F) {
	f.Add("/orders/=orders,/orders.v1.Orders/=orders-grpc:h2c,kitchen.example=kitchen", "kitchen.example", "/tickets/1")
	f.Add("api.example/v1/=orders:https:strip", "api.example", "/v1/orders/%2e%2e/x")
	f.Add("/=orders:strip,/a/=b:strip", "", "//a/")
	f.Add("=x,y=,/a=:z", "h", "")
	reg := memory.New()
	f.Cleanup(func() { reg.Close() })
	res, err := discovery.NewResolver(reg)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { res.Close() })
	f.Fuzz(func(t *testing.T, spec, host, path string) {
		routes, err := parseRoutes(spec)
		if err != nil {
			return
		}
		for _, r := range routes {
			if r.Service == "" || r.Host == "" && !strings.HasPrefix(r.Prefix, "/") {
				t.Fatalf("route %+v from %q", r, spec)
			}
		}
		rt, err := router.New(res, routes, router.WithEjection(1, time.Second))
		if err != nil {
			return
		}
		req := httptest.NewRequest(http.MethodGet, "http://placeholder/", nil)
		req.Host, req.URL.Path = host, path
		rec := httptest.NewRecorder()
		rt.ServeHTTP(rec, req)
		if rec.Code < 400 {
			t.Fatalf("%s %s routed with nothing registered: %d", host, path, rec.Code)
		}
	})
}

// FuzzConfigFile reads -config files of any content for a command with
// flags of every kind: reading must accept or refuse, never panic, accept
// only the flags' names with strings, numbers and booleans, and a value it
// accepts reaches the flag as its text.
//
//	go test -fuzz FuzzConfigFile ./cmd/courier/
func FuzzConfigFile(f *testing.F) {
	f.Add([]byte(`{"db": "postgres://u:p@h/db", "batch-size": 42, "notify": true, "poll-interval": "10ms"}`))
	f.Add([]byte(`{"db": {"nested": 1}}`))
	f.Add([]byte(`{"batch-size": 1e400, "config": "x"} {}`))
	f.Add([]byte(`[1, 2]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fs := flag.NewFlagSet("fuzz", flag.ContinueOnError)
		fs.String("config", "", "")
		db := fs.String("db", "", "")
		fs.Int("batch-size", 100, "")
		fs.Bool("notify", false, "")
		fs.Duration("poll-interval", time.Second, "")
		values, err := readConfig(fs, data)
		if err != nil {
			return
		}
		for k, v := range values {
			if fs.Lookup(k) == nil || k == "config" {
				t.Fatalf("setting %q accepted", k)
			}
			if err := fs.Set(k, v); err == nil && k == "db" && *db != v {
				t.Fatalf("db = %q, the file says %q", *db, v)
			}
		}
	})
}

// FuzzUsersFiles reads the registry's -users file and the endpoints'
// -auth-basic-file of any content: reading must accept or refuse, never
// panic; an accepted file has a root user and no user twice, and an error
// never quotes a line, which may hold a password.
//
//	go test -fuzz FuzzUsersFiles ./cmd/courier/
func FuzzUsersFiles(f *testing.F) {
	f.Add([]byte(`[{"name":"root","password":"s3cret"},{"name":"router","password":"r3ader","read_only":true}]`))
	f.Add([]byte("# users\nprometheus:s3cret\nops:an0ther:with:colons\n"))
	f.Add([]byte(`[{"name":"root","password":"s3cret","role":"admin"}]`))
	f.Add([]byte("s3cret\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if users, err := parseUsers(data); err == nil {
			seen := map[string]bool{}
			for _, u := range users {
				if u.Name == "" || u.Password == "" || seen[u.Name] {
					t.Fatalf("users %+v accepted", users)
				}
				seen[u.Name] = true
			}
			if !seen["root"] {
				t.Fatalf("users without root accepted: %+v", users)
			}
		}
		basic, err := parseBasicUsers(data)
		if err == nil && len(basic) == 0 {
			t.Fatal("a file of no user accepted")
		}
		if err != nil {
			for line := range strings.Lines(string(data)) {
				if _, pass, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && len(pass) >= 4 && strings.Contains(err.Error(), pass) {
					t.Fatalf("error %q quotes a password", err)
				}
			}
		}
	})
}

// A config file's values are strings, numbers or booleans, as flags take
// them; an object or an array is refused rather than set as its Go
// rendering.
func TestConfigFileValues(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.String("db", "", "")
	fs.Int("batch-size", 1, "")
	values, err := readConfig(fs, []byte(`{"db": "sqlite:///x", "batch-size": 42}`))
	if err != nil || values["db"] != "sqlite:///x" || values["batch-size"] != "42" {
		t.Fatalf("readConfig = %v, %v", values, err)
	}
	for _, bad := range []string{`{"db": {"url": "x"}}`, `{"db": ["x"]}`, `{"db": null}`, `{"typo": 1}`, `{} {}`} {
		if _, err := readConfig(fs, []byte(bad)); err == nil {
			t.Errorf("readConfig(%s) accepted", bad)
		}
	}
}
