package main

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"time"

	"github.com/courier-go/courier/discovery/registryurl"
)

// discoveryFlags are the flags shared by the registrar and the router.
type discoveryFlags struct {
	registry  string
	timeout   time.Duration
	logFormat string
	logLevel  string
}

func (f *discoveryFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.registry, "registry", "etcd://127.0.0.1:2379",
		"registry URL: etcd://[user:pass@]host:port[,host:port...][?prefix=/courier/services/&cacertfile=F&certfile=F&keyfile=F] or dns://[server:port][?domain=svc.cluster.local&interval=1s]")
	fs.DurationVar(&f.timeout, "registry-timeout", registryurl.DefaultTimeout,
		"how long a request to the registry may take; a registry that does not answer within it at start stops the command")
	fs.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
}

// open opens the registry a registry URL names, each request to it bounded
// by -registry-timeout; Close releases it.
func (f *discoveryFlags) open(ctx context.Context, raw string, log *slog.Logger) (registryurl.Registry, error) {
	return registryurl.Open(ctx, raw, registryurl.WithTimeout(f.timeout), registryurl.WithLogger(log))
}

func (f *discoveryFlags) logger(stderr io.Writer) (*slog.Logger, error) {
	return newLogger(f.logFormat, f.logLevel, stderr)
}
