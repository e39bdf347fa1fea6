// Package console is the operations console that `courier console`
// serves: a page, and its JSON (/api/state), showing a running system's
// registered services and instances with their health, its circuit
// breakers and their rejections, its outbox relays (leader, lag,
// throughput), its consumers' rates and dead letters, with the command
// that replays them.
//
// It reads the registry and scrapes the Prometheus endpoints it is given
// and those the instances' registrations name
// (discovery.MetadataMetrics), with the Prometheus client's own parser,
// and computes rates from successive scrapes.
package console

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/courier-go/courier/discovery"
	"github.com/courier-go/courier/internal/connurl"
)

// DefaultInterval is how often the console scrapes unless told otherwise.
const DefaultInterval = 2 * time.Second

// Target is a metrics endpoint named on the command line: a relay's, or a
// service's that its registration does not name.
type Target struct {
	Name string
	URL  string
}

// Config is what a Console reads and how.
type Config struct {
	// Registry is read for the services, their instances and where they
	// serve metrics; nil for none.
	Registry discovery.Registry
	// RegistryName is shown as the registry's address (no password).
	RegistryName string
	// Services are the services shown; empty for every service the
	// registry lists (discovery.ServiceLister).
	Services []string
	// Targets are scraped besides the instances' endpoints.
	Targets []Target
	// Client scrapes the endpoints (default: a client with a timeout of
	// the interval); Auth, if set, adds credentials to each request.
	Client *http.Client
	Auth   func(*http.Request)
	// Interval is the time between refreshes (default DefaultInterval).
	Interval time.Duration
	// Replay returns the command that replays a subscriber id's dead
	// letters, and a URL that does it if there is one; by default the
	// command with ReplayBroker.
	Replay func(subscriberID string) (command, url string)
	// ReplayBroker is the broker URL shown in the default replay command,
	// its password hidden (default: a placeholder).
	ReplayBroker string
	// Logger receives the refreshes' failures (default: discarded).
	Logger *slog.Logger
}

// Console keeps the state of a system from its registry and metrics. It
// is safe for concurrent use.
type Console struct {
	cfg Config

	refresh sync.Mutex // one refresh at a time
	targets map[string]*target
	names   []string // the services the registry listed last

	mu    sync.RWMutex
	state State
}

// New returns a Console for cfg; Run or Refresh fill its state in.
func New(cfg Config) (*Console, error) {
	if cfg.Registry == nil && len(cfg.Targets) == 0 {
		return nil, errors.New("console: nothing to show: give a registry or metrics endpoints")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: cfg.Interval}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Replay == nil {
		cfg.Replay = ReplayCommand(cfg.ReplayBroker)
	}
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	return &Console{cfg: cfg, targets: map[string]*target{}}, nil
}

// Check checks the services' names and the targets: each named once,
// with an http:// or https:// URL.
func (cfg *Config) Check() error {
	for _, s := range cfg.Services {
		if err := discovery.ValidateServiceName(s); err != nil {
			return fmt.Errorf("console: %w", err)
		}
	}
	seen := map[string]bool{}
	for _, t := range cfg.Targets {
		if seen[t.Name] {
			return fmt.Errorf("console: metrics endpoint %q named twice", t.Name)
		}
		seen[t.Name] = true
		if err := checkURL(t.URL); err != nil {
			return fmt.Errorf("console: metrics endpoint %s: %w", t.Name, err)
		}
	}
	return nil
}

// ReplayCommand returns the default Config.Replay: the courier deadletter
// replay command for the broker (its password hidden) and the subscriber
// id, and no URL.
func ReplayCommand(broker string) func(subscriberID string) (string, string) {
	b := "BROKER_URL"
	if broker != "" {
		b = connurl.Redacted(broker)
	}
	return func(id string) (string, string) {
		return "courier deadletter replay -broker " + shellQuote(b) + " -subscriber " + shellQuote(id), ""
	}
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:@=,+%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q: want http:// or https://host:port/path", raw)
	}
	return nil
}

// State returns the state as of the last refresh.
func (c *Console) State() State {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.state
}

// Run refreshes the state every interval until ctx ends; it returns nil
// then. Failures to read the registry or an endpoint are shown, and
// logged, not returned.
func (c *Console) Run(ctx context.Context) error {
	t := time.NewTicker(c.cfg.Interval)
	defer t.Stop()
	for {
		c.Refresh(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Refresh reads the registry and scrapes every endpoint once, each
// scrape bounded by the interval, and updates the state.
func (c *Console) Refresh(ctx context.Context) {
	c.refresh.Lock()
	defer c.refresh.Unlock()
	st := State{Registry: c.cfg.RegistryName}
	var endpoints []Endpoint
	for _, t := range c.cfg.Targets {
		endpoints = append(endpoints, Endpoint{Name: t.Name, URL: t.URL})
	}
	if c.cfg.Registry != nil {
		services, err := c.readRegistry(ctx)
		if err != nil {
			st.RegistryError = err.Error()
			c.cfg.Logger.Warn("console: registry", slog.Any("error", err))
			services = c.State().Services // the last known
		}
		st.Services = services
		for _, s := range services {
			for _, inst := range s.Instances {
				if inst.Metrics != "" {
					endpoints = append(endpoints, Endpoint{Name: s.Name + "/" + inst.ID, URL: inst.Metrics})
				}
			}
		}
	}
	var targets []*target
	seen := map[string]bool{}
	var wg sync.WaitGroup
	for _, e := range endpoints {
		if seen[e.Name+" "+e.URL] {
			continue
		}
		seen[e.Name+" "+e.URL] = true
		t := c.targets[e.Name+" "+e.URL]
		if t == nil {
			t = &target{}
		}
		t.Endpoint = e
		targets = append(targets, t)
		wg.Go(func() {
			sctx, cancel := context.WithTimeout(ctx, c.cfg.Interval)
			defer cancel()
			s, err := fetch(sctx, c.cfg.Client, t.URL, c.cfg.Auth)
			if err != nil {
				t.Up, t.Error = false, err.Error()
				c.cfg.Logger.Debug("console: scrape", slog.String("endpoint", t.Name), slog.Any("error", err))
				return
			}
			t.Up, t.Error = true, ""
			t.prev, t.cur = t.cur, s
		})
	}
	wg.Wait()
	// Endpoints gone from the registry are forgotten.
	c.targets = make(map[string]*target, len(targets))
	for _, t := range targets {
		c.targets[t.Name+" "+t.URL] = t
		st.Endpoints = append(st.Endpoints, t.Endpoint)
	}
	st.Breakers, st.Relays, st.Consumers, st.DeadLetters = summarize(targets, c.cfg.Replay)
	st.Updated = time.Now()
	c.mu.Lock()
	c.state = st
	c.mu.Unlock()
}

// readRegistry reads the services and their instances.
func (c *Console) readRegistry(ctx context.Context) ([]Service, error) {
	names := c.cfg.Services
	if len(names) == 0 {
		l, ok := c.cfg.Registry.(discovery.ServiceLister)
		if !ok {
			return nil, fmt.Errorf("the registry cannot list its services: name them (-services): %w", errors.ErrUnsupported)
		}
		var err error
		if names, err = l.Services(ctx); err != nil {
			return nil, err
		}
	}
	var out []Service
	for _, name := range names {
		insts, err := c.cfg.Registry.Instances(ctx, name)
		if err != nil && !errors.Is(err, discovery.ErrUnknownService) {
			return nil, err
		}
		s := Service{Name: name, Instances: []Instance{}}
		for _, inst := range insts {
			i := Instance{ID: inst.ID, Address: inst.Address, Version: inst.Version, Health: "healthy", Metrics: metricsURL(inst)}
			if !inst.Healthy() {
				i.Health = "unhealthy"
			}
			s.Instances = append(s.Instances, i)
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b Service) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// metricsURL is the URL of the instance's metrics endpoint its
// registration names: a URL, or a path on its address over HTTP.
func metricsURL(inst discovery.Instance) string {
	m := inst.Metadata[discovery.MetadataMetrics]
	switch {
	case m == "":
		return ""
	case strings.HasPrefix(m, "/"):
		return "http://" + inst.Address + m
	case checkURL(m) == nil:
		return m
	}
	return ""
}
