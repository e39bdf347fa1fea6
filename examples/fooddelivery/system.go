package fooddelivery

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/brokerurl"
	"github.com/courier-go/courier/broker/natsjs"
	"github.com/courier-go/courier/broker/natsjs/embedded"
	dmemory "github.com/courier-go/courier/discovery/memory"
	"github.com/courier-go/courier/discovery/registryurl"
	"github.com/courier-go/courier/internal/connurl"
	"github.com/courier-go/courier/sqldb"
	"github.com/courier-go/courier/sqldb/sqlurl"
)

// Services lists every service, in the order System starts them:
// consumers of a channel before its producers, since a subscriber id's
// first subscription starts with the messages sent after it.
var Services = []string{KitchenService, NotificationService, ConsumerService, AccountingService, DeliveryService, RestaurantService, OrderService}

// LegacyOrderService names an instance of the order service's release 1,
// which System and RunService start beside (or instead of) the current
// release, OrderService: the same service, registered under the same name
// on the same database, broker subscriptions and outbox. The demo starts
// it first and retires it once release 2 serves (see Scenario).
const LegacyOrderService = OrderService + "@1"

// shards is the number of shards of every channel the example creates.
const shards = 4

// starters start one service each.
func starter(name string, notify func(NotifyConsumer)) (func(ctx context.Context, env *Env) (*node, error), error) {
	switch name {
	case OrderService:
		return func(ctx context.Context, env *Env) (*node, error) { return startOrder(ctx, env, release2) }, nil
	case LegacyOrderService:
		return func(ctx context.Context, env *Env) (*node, error) { return startOrder(ctx, env, release1) }, nil
	case ConsumerService:
		return startConsumer, nil
	case KitchenService:
		return startKitchen, nil
	case AccountingService:
		return startAccounting, nil
	case RestaurantService:
		return startRestaurant, nil
	case NotificationService:
		return func(ctx context.Context, env *Env) (*node, error) { return startNotification(ctx, env, notify) }, nil
	case DeliveryService:
		return startDelivery, nil
	}
	return nil, fmt.Errorf("fooddelivery: unknown service %q (known: %s)", name, strings.Join(Services, ", "))
}

// System runs services of the example in this process.
type System struct {
	env      *Env
	mu       sync.Mutex
	nodes    map[string]*node
	notified chan NotifyConsumer
}

// Start starts the named services (every one when names is empty) on env.
func Start(ctx context.Context, env *Env, names ...string) (*System, error) {
	if err := env.validate(); err != nil {
		return nil, err
	}
	if len(names) == 0 {
		names = Services
	}
	s := &System{env: env, nodes: map[string]*node{}, notified: make(chan NotifyConsumer, 1024)}
	for _, name := range names {
		if err := s.Restart(ctx, name); err != nil {
			return nil, errors.Join(err, s.Stop(ctx))
		}
	}
	return s, nil
}

func (s *System) notify(n NotifyConsumer) {
	select {
	case s.notified <- n:
	default: // nobody listens
	}
}

// Notifications delivers the notifications the notification service
// handled in this process: a client waiting to be told.
func (s *System) Notifications() <-chan NotifyConsumer { return s.notified }

// Restart starts the service name, which must not be running.
func (s *System) Restart(ctx context.Context, name string) error {
	start, err := starter(name, s.notify)
	if err != nil {
		return err
	}
	s.mu.Lock()
	_, running := s.nodes[name]
	s.mu.Unlock()
	if running {
		return fmt.Errorf("fooddelivery: %s is running", name)
	}
	n, err := start(ctx, s.env)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.nodes[name] = n
	s.mu.Unlock()
	return nil
}

func (s *System) take(name string) (*node, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.nodes[name]
	if n == nil {
		return nil, fmt.Errorf("fooddelivery: %s is not running", name)
	}
	delete(s.nodes, name)
	return n, nil
}

func (s *System) node(name string) (*node, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.nodes[name]; n != nil {
		return n, nil
	}
	return nil, fmt.Errorf("fooddelivery: %s is not running", name)
}

// Kill stops the service abruptly, as a crash would (see node.kill).
func (s *System) Kill(name string) error {
	n, err := s.take(name)
	if err != nil {
		return err
	}
	n.kill()
	s.env.Trace.Printf(name, "KILLED: subscriptions, relay and database closed without draining")
	return nil
}

// StopService stops the service cleanly: its servers deregister, its
// handlers finish.
func (s *System) StopService(ctx context.Context, name string) error {
	n, err := s.take(name)
	if err != nil {
		return err
	}
	return n.stop(ctx)
}

// StopAPI stops the REST or gRPC server of the service and leaves its
// registration, as a hung process would; StartAPI restarts the service to
// bring it back.
func (s *System) StopAPI(ctx context.Context, name string) error {
	n, err := s.node(name)
	if err != nil {
		return err
	}
	if n.api == nil {
		return fmt.Errorf("fooddelivery: %s has no API", name)
	}
	if err := n.api.stopServing(ctx); err != nil {
		return err
	}
	s.env.Trace.Printf(name, "API server stopped (still registered at %s)", n.api.addr)
	return nil
}

// ReviseMenu changes a menu through the restaurant service.
func (s *System) ReviseMenu(ctx context.Context, restaurantID string, menu []MenuItem) error {
	n, err := s.node(RestaurantService)
	if err != nil {
		return err
	}
	return reviseMenu(ctx, n, restaurantID, menu)
}

// Running reports whether the service (or LegacyOrderService) runs.
func (s *System) Running(name string) bool {
	_, err := s.node(name)
	return err == nil
}

// Stop stops every running service cleanly, the order service first.
func (s *System) Stop(ctx context.Context) error {
	names := append([]string{LegacyOrderService}, Services...)
	slices.Reverse(names[1:])
	var errs []error
	for _, name := range names {
		if n, err := s.take(name); err == nil {
			errs = append(errs, n.stop(ctx))
		}
	}
	return errors.Join(errs...)
}

// EmbeddedEnv is the single-process default: a SQLite file per service and
// an embedded NATS JetStream server, both under dir, and an in-process
// registry. close stops the NATS server.
func EmbeddedEnv(ctx context.Context, dir string, natsPort int) (env *Env, close func(ctx context.Context) error, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("fooddelivery: %w", err)
	}
	var opts []embedded.Option
	if natsPort >= 0 {
		opts = append(opts, embedded.WithListenPort(natsPort))
	}
	emb, err := embedded.Start(ctx, filepath.Join(dir, "nats"), opts...)
	if err != nil {
		return nil, nil, err
	}
	reg := dmemory.New()
	env = &Env{
		OpenDB: func(_ context.Context, service string) (*sql.DB, *sqldb.Dialect, error) {
			db, err := sql.Open("sqlite", SQLiteDSN(filepath.Join(dir, service+".db")))
			return db, sqldb.SQLite, err
		},
		OpenBroker: func(ctx context.Context, _ string) (broker.Broker, error) {
			return emb.Broker(ctx, natsjs.WithShards(shards), natsjs.WithAckWait(2*time.Second), natsjs.WithMembershipTTL(2*time.Second))
		},
		Registry: reg,
	}
	return env, func(ctx context.Context) error { return errors.Join(reg.Close(), emb.Shutdown(ctx)) }, nil
}

// SQLiteDSN is the DSN for a service's SQLite file: WAL journal, a busy
// timeout and transactions that take the write lock at BEGIN.
func SQLiteDSN(path string) string {
	return "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate"
}

// DefaultConnectTimeout bounds each connection URLEnv's Env sets up unless
// WithConnectTimeout says otherwise.
const DefaultConnectTimeout = 5 * time.Second

// URLOption configures URLEnv.
type URLOption func(*urlConfig)

type urlConfig struct {
	timeout time.Duration
}

// WithConnectTimeout bounds each connection the Env sets up: to a
// service's database, creating its schema included, and to the broker,
// each check that the registry answers and each request to it. A
// non-positive d keeps the default.
func WithConnectTimeout(d time.Duration) URLOption {
	return func(c *urlConfig) {
		if d > 0 {
			c.timeout = d
		}
	}
}

// URLEnv opens services' databases, the broker and the registry from URLs,
// for one process per service:
//
//   - db: postgres://... (a schema per service, created if needed),
//     mysql://... (a database per service) or sqlite:///dir (a file per
//     service in dir); the schemas and databases are named fd_<service>,
//     or with the prefix the query parameter schema_prefix gives;
//   - brokerURL: nats://host:port (JetStream), or any URL the brokerurl
//     package opens;
//   - registryURL: etcd://host:port[,host:port], or another URL the
//     discovery/registryurl package opens (memory:// for services all in
//     this process).
//
// URLEnv checks that the registry answers; each service's database and
// broker are checked when it starts. Each fails within the connect timeout
// with an error naming its address, without its password.
func URLEnv(ctx context.Context, db, brokerURL, registryURL string, opts ...URLOption) (env *Env, close func() error, err error) {
	cfg := urlConfig{timeout: DefaultConnectTimeout}
	for _, o := range opts {
		o(&cfg)
	}
	openDB, err := dbOpener(db, cfg.timeout)
	if err != nil {
		return nil, nil, err
	}
	reg, err := registryurl.Open(ctx, registryURL, registryurl.WithTimeout(cfg.timeout))
	if err != nil {
		return nil, nil, fmt.Errorf("fooddelivery: %w", err)
	}
	if err := reg.Ping(ctx); err != nil {
		reg.Close()
		return nil, nil, fmt.Errorf("fooddelivery: %w", err)
	}
	env = &Env{
		OpenDB: openDB,
		OpenBroker: func(ctx context.Context, _ string) (broker.Broker, error) {
			ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
			defer cancel()
			if strings.HasPrefix(brokerURL, "nats://") {
				return openNATS(ctx, brokerURL)
			}
			return brokerurl.Open(ctx, brokerURL)
		},
		Registry: reg,
	}
	return env, reg.Close, nil
}

// openNATS opens the NATS server a nats:// URL names, as brokerurl does
// (the shards parameter included, the example's 4 by default), with a
// short ack wait and membership TTL: a killed service's messages and
// shards move on within seconds.
func openNATS(ctx context.Context, raw string) (broker.Broker, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("fooddelivery: broker URL: %w", connurl.Redact(err, raw))
	}
	q, err := connurl.Query(u, "shards")
	n := shards
	if err == nil && q.Has("shards") {
		var aerr error
		if n, aerr = strconv.Atoi(q.Get("shards")); aerr != nil || n < 1 || n > 1024 {
			err = fmt.Errorf("parameter shards=%q: want a whole number from 1 to 1024", q.Get("shards"))
		}
	}
	if err != nil {
		return nil, fmt.Errorf("fooddelivery: broker %s: %w", connurl.Redacted(raw), err)
	}
	u.RawQuery = ""
	b, err := natsjs.Open(ctx, u.String(), natsjs.WithShards(n), natsjs.WithAckWait(2*time.Second), natsjs.WithMembershipTTL(2*time.Second))
	if err != nil {
		return nil, connurl.Redact(err, raw)
	}
	return b, nil
}

// ServiceDBURL returns the URL of the service's own database under the
// server or directory that db names (see URLEnv): a PostgreSQL URL whose
// search_path is the service's schema, a MySQL URL of the service's
// database, or the service's SQLite file. It is what `courier relay -db`
// takes to publish the service's outbox.
func ServiceDBURL(db, service string) (string, error) {
	if _, err := starter(service, nil); err != nil {
		return "", err
	}
	l, err := parseDBURL(db)
	if err != nil {
		return "", err
	}
	service, _, _ = strings.Cut(service, "@") // a release shares the service's database
	return l.serviceURL(service), nil
}

// dbLayout is how the services' databases lie on one server, or in one
// directory.
type dbLayout struct {
	server *url.URL // without schema_prefix
	prefix string
}

func parseDBURL(raw string) (*dbLayout, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("fooddelivery: database URL: %w", err)
	}
	switch u.Scheme {
	case "sqlite", "postgres", "postgresql", "mysql", "mariadb":
	default:
		return nil, fmt.Errorf("fooddelivery: database URL %q: want postgres://, mysql:// or sqlite://", u.Redacted())
	}
	if u.Scheme == "sqlite" {
		// The other schemes' parameters go to their drivers, which refuse
		// unknown ones when they connect; SQLite's would be ignored.
		if _, err := connurl.Query(u, "schema_prefix"); err != nil {
			return nil, fmt.Errorf("fooddelivery: database URL %q: %w", u.Redacted(), err)
		}
	}
	// schema_prefix (default "fd_") names the schemas or databases, so
	// that several systems can share one server.
	q := u.Query()
	prefix := "fd_"
	if p := q.Get("schema_prefix"); p != "" {
		prefix = p
	}
	q.Del("schema_prefix")
	u.RawQuery = q.Encode()
	for _, r := range prefix {
		if r != '_' && (r < 'a' || r > 'z') && (r < '0' || r > '9') {
			return nil, fmt.Errorf("fooddelivery: schema_prefix %q: want lower-case letters, digits and '_'", prefix)
		}
	}
	return &dbLayout{server: u, prefix: prefix}, nil
}

// name is the service's schema (PostgreSQL) or database (MySQL).
func (l *dbLayout) name(service string) string {
	return l.prefix + strings.ReplaceAll(strings.TrimSuffix(service, "-service"), "-", "_")
}

func (l *dbLayout) dir() string { return l.server.Host + l.server.Path }

func (l *dbLayout) serviceURL(service string) string {
	su := *l.server
	switch su.Scheme {
	case "sqlite":
		return "sqlite://" + filepath.Join(l.dir(), service+".db")
	case "mysql", "mariadb":
		su.Path = "/" + l.name(service)
	default:
		q := su.Query()
		q.Set("search_path", l.name(service))
		su.RawQuery = q.Encode()
	}
	return su.String()
}

// dbOpener returns a function opening each service's own database under
// the server or directory raw names, creating its schema or database. The
// server must answer within timeout.
func dbOpener(raw string, timeout time.Duration) (func(ctx context.Context, service string) (*sql.DB, *sqldb.Dialect, error), error) {
	l, err := parseDBURL(raw)
	if err != nil {
		return nil, err
	}
	create := "CREATE SCHEMA IF NOT EXISTS "
	switch l.server.Scheme {
	case "sqlite":
		return func(_ context.Context, service string) (*sql.DB, *sqldb.Dialect, error) {
			if err := os.MkdirAll(l.dir(), 0o755); err != nil {
				return nil, nil, err
			}
			db, err := sql.Open("sqlite", SQLiteDSN(filepath.Join(l.dir(), service+".db")))
			return db, sqldb.SQLite, err
		}, nil
	case "mysql", "mariadb":
		create = "CREATE DATABASE IF NOT EXISTS "
	}
	return func(ctx context.Context, service string) (*sql.DB, *sqldb.Dialect, error) {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		name := l.name(service)
		admin, _, err := sqlurl.Open(l.server.String())
		if err != nil {
			return nil, nil, connurl.Redact(err, l.server.String())
		}
		defer admin.Close()
		if _, err := admin.ExecContext(ctx, create+name); err != nil {
			return nil, nil, connurl.Redact(fmt.Errorf("database server %s: %s%s: %w", l.server.Redacted(), strings.ToLower(create), name, err), l.server.String())
		}
		db, t, err := sqlurl.Open(l.serviceURL(service))
		if err != nil {
			return nil, nil, connurl.Redact(err, l.server.String())
		}
		return db, t.Dialect, nil
	}, nil
}
