// Package registrar is third-party registration: a registrar health-checks
// targets it reads from a source (a static file, DNS, another registry) and
// registers them on their behalf, marks them unhealthy while their check
// fails, and deregisters them when they leave the source or the registrar
// shuts down. `courier registrar` runs it.
package registrar

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/courier-go/courier/discovery"
)

// Target is an instance to register and how to check it.
type Target struct {
	discovery.Instance
	// Check is an http(s) URL that must answer 2xx; empty means a TCP
	// connection to the instance's address.
	Check string `json:"check,omitempty"`
}

// Source lists the targets; it is called every interval.
type Source func(ctx context.Context) ([]Target, error)

// FileSource reads targets from a JSON file: an array of objects with
// service, id, address, version, metadata and check. The file is read again
// at every interval, so editing it adds and removes targets.
func FileSource(path string) Source {
	return func(context.Context) ([]Target, error) {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("registrar: targets file: %w", err)
		}
		var ts []Target
		if err := json.Unmarshal(data, &ts); err != nil {
			return nil, fmt.Errorf("registrar: targets file %s: %w", path, err)
		}
		return ts, nil
	}
}

// RegistrySource lists the instances of services in another registry, e.g.
// DNS SRV records (discovery/dnssrv), as TCP-checked targets. A service
// without records contributes no target.
func RegistrySource(reg discovery.Registry, services ...string) Source {
	return func(ctx context.Context) ([]Target, error) {
		var ts []Target
		for _, s := range services {
			insts, err := reg.Instances(ctx, s)
			if errors.Is(err, discovery.ErrUnknownService) {
				continue
			}
			if err != nil {
				return nil, err
			}
			for _, inst := range insts {
				ts = append(ts, Target{Instance: inst})
			}
		}
		return ts, nil
	}
}

// Registrar registers targets from a source. Run it once.
type Registrar struct {
	reg      discovery.Registry
	source   Source
	interval time.Duration
	regOpts  []discovery.RegisterOption
	log      *slog.Logger
	client   *http.Client
}

// Option configures a Registrar.
type Option func(*Registrar) error

// WithInterval sets how often the source is read and targets checked
// (default 2s).
func WithInterval(d time.Duration) Option {
	return func(r *Registrar) error {
		if d <= 0 {
			return fmt.Errorf("registrar: interval %v must be positive", d)
		}
		r.interval = d
		return nil
	}
}

// WithRegisterOptions sets the TTL and heartbeat of the registrations.
func WithRegisterOptions(opts ...discovery.RegisterOption) Option {
	return func(r *Registrar) error {
		if _, err := discovery.RegisterSettings(opts...); err != nil {
			return fmt.Errorf("registrar: %w", err)
		}
		r.regOpts = opts
		return nil
	}
}

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(r *Registrar) error {
		if l == nil {
			return errors.New("registrar: nil logger")
		}
		r.log = l
		return nil
	}
}

// New returns a Registrar registering the source's targets in reg.
func New(reg discovery.Registry, source Source, opts ...Option) (*Registrar, error) {
	if reg == nil || source == nil {
		return nil, errors.New("registrar: needs a registry and a source")
	}
	r := &Registrar{reg: reg, source: source, interval: 2 * time.Second, log: slog.Default(),
		client: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}}
	for _, o := range opts {
		if err := o(r); err != nil {
			return nil, err
		}
	}
	return r, nil
}

type running struct {
	target Target
	cancel context.CancelFunc
	done   chan struct{}
}

// Run keeps the registry in step with the source until ctx ends, then
// deregisters every target it registered. A source that fails keeps the
// current targets registered.
func (r *Registrar) Run(ctx context.Context) error {
	targets := map[string]*running{}
	var wg sync.WaitGroup
	stop := func(key string) {
		t := targets[key]
		t.cancel()
		<-t.done
		delete(targets, key)
	}
	defer func() {
		for key := range maps.Clone(targets) {
			stop(key)
		}
		wg.Wait()
	}()
	tick := time.NewTicker(r.interval)
	defer tick.Stop()
	for {
		ts, err := r.source(ctx)
		if err != nil && ctx.Err() == nil {
			r.log.Warn("registrar: reading targets failed; keeping the current ones", "error", err)
		}
		if err == nil {
			want := map[string]Target{}
			for _, t := range ts {
				if verr := t.Validate(); verr != nil {
					r.log.Warn("registrar: skipping an invalid target", "error", verr)
					continue
				}
				want[t.Service+"/"+t.ID] = t
			}
			for key, cur := range targets {
				if t, ok := want[key]; !ok || !discovery.Equal(t.Instance, cur.target.Instance) || t.Check != cur.target.Check {
					stop(key)
				}
			}
			for key, t := range want {
				if _, ok := targets[key]; !ok {
					targets[key] = r.start(ctx, t, &wg)
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func (r *Registrar) start(ctx context.Context, t Target, wg *sync.WaitGroup) *running {
	check := discovery.TCPCheck(t.Address)
	if t.Check != "" {
		check = discovery.HTTPCheck(r.client, t.Check)
	}
	tctx, cancel := context.WithCancel(ctx)
	run := &running{target: t, cancel: cancel, done: make(chan struct{})}
	sr, err := discovery.NewSelfRegistrar(r.reg, t.Instance, discovery.WithCheck(check, r.interval),
		discovery.WithRegisterOptions(r.regOpts...), discovery.WithSelfLogger(r.log))
	if err != nil {
		r.log.Warn("registrar: target refused", "target", t.String(), "error", err)
		close(run.done)
		return run
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(run.done)
		if err := sr.Run(tctx); err != nil {
			r.log.Warn("registrar: target refused by the registry", "target", t.String(), "error", err)
		}
	}()
	return run
}
