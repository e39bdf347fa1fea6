package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/courier-go/courier/discovery"
	"github.com/courier-go/courier/discovery/dnssrv"
	"github.com/courier-go/courier/discovery/etcd"
)

// discoveryFlags are the flags shared by the registrar and the router.
type discoveryFlags struct {
	registry  string
	logFormat string
	logLevel  string
}

func (f *discoveryFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.registry, "registry", "etcd://127.0.0.1:2379",
		"registry URL: etcd://host:port[,host:port...][?prefix=/courier/services/] or dns://[server:port][?domain=svc.cluster.local&interval=1s]")
	fs.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
}

// openRegistry opens the registry a -registry URL names; close releases it.
func openRegistry(ctx context.Context, raw string, log *slog.Logger) (reg discovery.Registry, close func(), err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("registry URL %q: %w", raw, err)
	}
	switch u.Scheme {
	case "etcd":
		if u.Host == "" {
			return nil, nil, fmt.Errorf("registry URL %q: no etcd endpoint", raw)
		}
		var endpoints []string
		for _, h := range strings.Split(u.Host, ",") {
			endpoints = append(endpoints, "http://"+h)
		}
		cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Context: ctx})
		if err != nil {
			return nil, nil, fmt.Errorf("registry %q: %w", raw, err)
		}
		opts := []etcd.Option{etcd.WithLogger(log)}
		if p := u.Query().Get("prefix"); p != "" {
			opts = append(opts, etcd.WithPrefix(p))
		}
		r, err := etcd.New(cli, opts...)
		if err != nil {
			cli.Close()
			return nil, nil, fmt.Errorf("registry %q: %w", raw, err)
		}
		return r, func() { r.Close(); cli.Close() }, nil
	case "dns":
		var opts []dnssrv.Option
		if u.Host != "" {
			opts = append(opts, dnssrv.WithServer(u.Host))
		}
		if d := u.Query().Get("domain"); d != "" {
			opts = append(opts, dnssrv.WithDomain(d))
		}
		if s := u.Query().Get("interval"); s != "" {
			d, err := time.ParseDuration(s)
			if err != nil {
				return nil, nil, fmt.Errorf("registry URL %q: interval: %w", raw, err)
			}
			opts = append(opts, dnssrv.WithInterval(d))
		}
		r, err := dnssrv.New(opts...)
		if err != nil {
			return nil, nil, fmt.Errorf("registry %q: %w", raw, err)
		}
		return r, func() {}, nil
	}
	return nil, nil, fmt.Errorf("registry URL %q: unknown scheme %q (want etcd or dns)", raw, u.Scheme)
}

func (f *discoveryFlags) logger(stderr io.Writer) (*slog.Logger, error) {
	return newLogger(f.logFormat, f.logLevel, stderr)
}
