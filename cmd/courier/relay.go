package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/brokerurl"
	"github.com/courier-go/courier/internal/connurl"
	"github.com/courier-go/courier/outbox"
	relaymetrics "github.com/courier-go/courier/outbox/metrics"
	"github.com/courier-go/courier/outbox/mysqlcdc"
	"github.com/courier-go/courier/outbox/pgcdc"
	"github.com/courier-go/courier/outbox/pgnotify"
	"github.com/courier-go/courier/sqldb"
	"github.com/courier-go/courier/sqldb/sqlurl"
)

// relayCommand is `courier relay`.
type relayCommand struct {
	// onListen, when set, learns the address the HTTP endpoint listens on.
	onListen func(addr string)
	// openBroker, when set, opens the broker instead of brokerurl.Open.
	openBroker func(ctx context.Context, url string) (broker.Broker, error)
}

const relayUsage = `usage: courier relay -db URL -broker URL [flags]

Publishes the messages a service writes into its transactional outbox.

  -mode poll   reads unpublished rows and deletes them once the broker
               confirmed them (SQLite, PostgreSQL, MySQL/MariaDB), every
               -poll-interval when idle; on PostgreSQL, -notify installs a
               LISTEN/NOTIFY trigger and polls as soon as outbox rows
               commit, at a cost to every writer's commit throughput
  -mode tail   follows the database's log: PostgreSQL logical replication,
               or the MySQL/MariaDB binary log (log_bin, binlog_format=ROW,
               binlog_row_image=FULL)

With -eventuate-schema, either mode publishes the outbox table of
Eventuate Tram, SCHEMA.message, which Java services on Eventuate and Go
services with outbox.WithEventuateTable write, as Eventuate's CDC does.

Several relays may run against one outbox: one publishes, the others
stand by and take over within the lease TTL when it dies, and at once
when it stops.

HTTP endpoints on -listen: /healthz (alive), /readyz (database reachable
and publishing not failing), /metrics (Prometheus); over TLS with
-tls-cert and -tls-key, to clients with a certificate -tls-client-ca
signed, with a bearer token (-auth-token-file) or a password
(-auth-basic-file) when asked. -log-format and
-log-level apply to every line the relay prints, its libraries' included.

flags:
`

func (c *relayCommand) run(ctx context.Context, args []string, stderr io.Writer) (err error) {
	fs := flag.NewFlagSet("relay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, relayUsage); fs.PrintDefaults() }
	var (
		dbURL       = fs.String("db", "", "database URL: postgres://, mysql:// or sqlite:// (env COURIER_DB)")
		brokerURL   = fs.String("broker", "", "broker URL: "+brokerurl.Schemes+" (env COURIER_BROKER)")
		mode        = fs.String("mode", "poll", "poll or tail")
		name        = fs.String("name", outbox.DefaultRelayName, "outbox name; relays with the same name share one lease")
		batch       = fs.Int("batch-size", outbox.DefaultBatchSize, "rows per poll (poll mode)")
		poll        = fs.Duration("poll-interval", outbox.DefaultPollInterval, "wait between polls when idle (poll mode)")
		notify      = fs.Bool("notify", false, "poll as soon as outbox rows commit, through a LISTEN/NOTIFY trigger it installs; costs the writers commit throughput (poll mode, PostgreSQL; env COURIER_NOTIFY)")
		leaseTTL    = fs.Duration("lease-ttl", outbox.DefaultLeaseTTL, "leader lease time to live: the takeover bound")
		heartbeat   = fs.Duration("heartbeat", pgcdc.DefaultHeartbeatInterval, "log heartbeat interval (tail mode)")
		serverID    = fs.Uint("server-id", 0, "replica server id (tail mode, MySQL/MariaDB; default derived from -name)")
		slot        = fs.String("slot", pgcdc.DefaultSlot, "replication slot (tail mode, PostgreSQL)")
		publication = fs.String("publication", pgcdc.DefaultPublication, "publication (tail mode, PostgreSQL)")
		deadLetter  = fs.String("dead-letter", outbox.DefaultDeadLetterChannel, "channel for rows that cannot be published")
		evSchema    = fs.String("eventuate-schema", "", "publish Eventuate Tram's outbox table SCHEMA.message instead of Courier's (PostgreSQL and MySQL/MariaDB; poll mode marks rows published)")
		evDBIDs     = fs.Bool("eventuate-db-ids", false, "the Eventuate table is in database-id mode (with -eventuate-schema)")
		evOutboxID  = fs.Uint64("eventuate-outbox-id", 0, "Eventuate's eventuate.outbox.id: the low half of the IDs of database-id rows without one (with -eventuate-schema)")
		migrate     = fs.Bool("migrate", false, "create or update the Courier schema before starting")
		listen      = fs.String("listen", "127.0.0.1:9464", "address of the health and metrics endpoint; empty for none")
		logFormat   = fs.String("log-format", "text", "text or json")
		logLevel    = fs.String("log-level", "info", "debug, info, warn or error")
		progress    = fs.Duration("progress", outbox.DefaultProgressInterval, "interval of the INFO summary lines (leader, published, rate, lag); 0 for none")
		endpoint    endpointFlags
	)
	endpoint.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	logger, err := newLogger(*logFormat, *logLevel, stderr)
	if err != nil {
		return err
	}
	// Neither the relay's errors nor any line it or its libraries log
	// show the secrets of the database and broker URLs.
	secrets := connurl.NewRedactor(*dbURL, *brokerURL)
	defer func() { err = secrets.Error(err) }()
	logger = slog.New(secrets.Handler(logger.Handler()))
	defer routeLogs(logger)()
	if *dbURL == "" || *brokerURL == "" {
		fs.Usage()
		return errors.New("relay: -db and -broker are required")
	}

	db, target, err := openDatabase(*dbURL, logger)
	if err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	defer db.Close()
	if *notify && *mode == "tail" {
		return errors.New("relay: -notify is for -mode poll: the tailing relay follows the log and needs no NOTIFY trigger")
	}
	if *notify && target.Dialect != sqldb.Postgres {
		return fmt.Errorf("relay: -notify needs PostgreSQL (LISTEN/NOTIFY); on %s the relay polls every -poll-interval", target.Dialect)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := db.PingContext(pingCtx); err != nil {
		return fmt.Errorf("relay: database unreachable: %w", err)
	}
	if *migrate {
		if err := sqldb.Migrate(ctx, db, target.Dialect); err != nil {
			return fmt.Errorf("relay: %w", err)
		}
	}
	openBroker := brokerurl.Open
	if c.openBroker != nil {
		openBroker = c.openBroker
	}
	b, err := openBroker(pingCtx, *brokerURL)
	if err != nil {
		return fmt.Errorf("relay: broker: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		b.Close(cctx)
	}()

	opts := []outbox.RelayOption{outbox.WithName(*name), outbox.WithLeaseTTL(*leaseTTL), outbox.WithDeadLetterChannel(*deadLetter),
		outbox.WithLogger(logger), outbox.WithProgressInterval(*progress)}
	source := relaymetrics.SourcePoll
	switch *mode {
	case "poll":
		opts = append(opts, outbox.WithBatchSize(*batch), outbox.WithPollInterval(*poll))
		if *evSchema != "" {
			opts = append(opts, outbox.WithKeepPublished(), outbox.PollEventuateTable(outbox.EventuateTable{Schema: *evSchema, DatabaseIDs: *evDBIDs, OutboxID: *evOutboxID}))
		} else if *evDBIDs || *evOutboxID != 0 {
			return errors.New("relay: -eventuate-db-ids and -eventuate-outbox-id go with -eventuate-schema")
		}
		if *notify {
			if err := pgnotify.Install(ctx, db); err != nil {
				return withMigrateHint(fmt.Errorf("relay: -notify: %w", err))
			}
			opts = append(opts, outbox.WithWakeup(pgnotify.New(db)))
		}
	case "tail":
		var ev *outbox.EventuateTable
		if *evSchema != "" {
			ev = &outbox.EventuateTable{Schema: *evSchema, DatabaseIDs: *evDBIDs, OutboxID: *evOutboxID}
		} else if *evDBIDs || *evOutboxID != 0 {
			return errors.New("relay: -eventuate-db-ids and -eventuate-outbox-id go with -eventuate-schema")
		}
		src, srcName, err := logSource(target, *dbURL, *heartbeat, *serverID, *slot, *publication, ev)
		if err != nil {
			return err
		}
		opts = append(opts, outbox.WithSource(src))
		source = srcName
	default:
		return fmt.Errorf("relay: -mode %q: use poll or tail", *mode)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics, err := relaymetrics.NewRelay(reg, *name, source)
	if err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	relay, err := outbox.NewRelay(db, target.Dialect, b, append(opts, outbox.WithObserver(metrics))...)
	if err != nil {
		return err
	}
	metrics.Track(relay)

	var running atomic.Bool
	if *listen != "" {
		srv, addr, err := serveRelayHTTP(*listen, &endpoint, db, relay.Stats, reg, &running, secrets, logger)
		if err != nil {
			return err
		}
		if c.onListen != nil {
			c.onListen(addr)
		}
		logger.Info("courier: relay endpoints", slog.String("addr", addr))
		defer func() {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			srv.Shutdown(sctx)
		}()
	}
	logger.Info("courier: relay starting", slog.String("mode", *mode), slog.String("database", target.Dialect.Name()), slog.String("name", *name),
		slog.Bool("notify", *notify))
	running.Store(true)
	err = relay.Run(ctx)
	running.Store(false)
	logger.Info("courier: relay stopped")
	return withMigrateHint(err)
}

// withMigrateHint adds to an error about a missing schema that -migrate
// creates it.
func withMigrateHint(err error) error {
	if errors.Is(err, sqldb.ErrSchemaMissing) {
		return fmt.Errorf("%w (or start the relay with -migrate)", err)
	}
	return err
}

// logSource is -mode tail's source: the database's log, and its name
// in the metrics' source label.
func logSource(target sqlurl.Target, dbURL string, heartbeat time.Duration, serverID uint, slot, publication string, ev *outbox.EventuateTable) (outbox.Source, string, error) {
	switch target.Dialect {
	case sqldb.MySQL:
		opts := []mysqlcdc.Option{mysqlcdc.WithHeartbeat(heartbeat)}
		if ev != nil {
			opts = append(opts, mysqlcdc.WithEventuateTable(*ev))
		}
		if serverID != 0 {
			if serverID > math.MaxUint32 {
				return nil, "", fmt.Errorf("relay: -server-id %d is over %d", serverID, uint32(math.MaxUint32))
			}
			opts = append(opts, mysqlcdc.WithServerID(uint32(serverID)))
		}
		src, err := mysqlcdc.NewSource(target.DSN, opts...)
		return src, relaymetrics.SourceMySQLCDC, err
	case sqldb.Postgres:
		opts := []pgcdc.Option{pgcdc.WithSlot(slot), pgcdc.WithPublication(publication), pgcdc.WithHeartbeat(heartbeat)}
		if ev != nil {
			opts = append(opts, pgcdc.WithEventuateTable(*ev))
		}
		src, err := pgcdc.NewSource(dbURL, opts...)
		return src, relaymetrics.SourcePgCDC, err
	}
	return nil, "", fmt.Errorf("relay: -mode tail supports PostgreSQL and MySQL/MariaDB; for %s use -mode poll", target.Dialect)
}

// serveRelayHTTP serves the relay's health, readiness and the metrics
// reg gathers on addr, secured as ef asks; the server logs its own errors to logger.
func serveRelayHTTP(addr string, ef *endpointFlags, db *sql.DB, stats func() outbox.Stats, reg *prometheus.Registry, running *atomic.Bool,
	secrets *connurl.Redactor, logger *slog.Logger) (*http.Server, string, error) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if !running.Load() {
			http.Error(w, "relay not running", http.StatusServiceUnavailable)
			return
		}
		if err := db.PingContext(ctx); err != nil {
			http.Error(w, "database unreachable: "+secrets.Error(err).Error(), http.StatusServiceUnavailable)
			return
		}
		s := stats()
		if !s.PublishFailingSince.IsZero() {
			http.Error(w, fmt.Sprintf("publishing fails since %s (%s): %v", s.PublishFailingSince.UTC().Format(time.RFC3339),
				time.Since(s.PublishFailingSince).Round(time.Second), secrets.Error(s.LastPublishError)), http.StatusServiceUnavailable)
			return
		}
		role := "standby"
		if s.Leader {
			role = "leader"
		}
		fmt.Fprintln(w, "ready,", role)
	})
	h, err := ef.guard(mux)
	if err != nil {
		return nil, "", fmt.Errorf("relay: %w", err)
	}
	ln, err := ef.listen(addr)
	if err != nil {
		return nil, "", fmt.Errorf("relay: listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	go srv.Serve(ln) //nolint:errcheck // ends with Shutdown
	return srv, ln.Addr().String(), nil
}

// routeLogs makes the process's default loggers print through logger,
// until the function it returns restores them: slog.Default, which
// libraries such as the RabbitMQ adapter log to, and the standard log
// package, which slog.SetDefault sends to logger's handler (at level
// info). A relay's libraries then print nothing that -log-format and
// -log-level do not shape.
func routeLogs(logger *slog.Logger) (restore func()) {
	prev, out, flags := slog.Default(), log.Writer(), log.Flags()
	slog.SetDefault(logger)
	return func() {
		slog.SetDefault(prev)
		log.SetOutput(out)
		log.SetFlags(flags)
	}
}

// openDatabase opens the database raw names. The MySQL driver prints its
// connection troubles through a logger of its own, by default to the
// process's standard error: there it prints through logger, at level warn.
func openDatabase(raw string, logger *slog.Logger) (*sql.DB, sqlurl.Target, error) {
	target, err := sqlurl.Parse(raw)
	if err != nil || target.Dialect != sqldb.MySQL {
		return sqlurl.Open(raw)
	}
	cfg, err := mysql.ParseDSN(target.DSN)
	if err != nil {
		return nil, target, fmt.Errorf("mysql DSN: %w", err)
	}
	cfg.Logger = slog.NewLogLogger(logger.With(slog.String("driver", "mysql")).Handler(), slog.LevelWarn)
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, target, fmt.Errorf("mysql DSN: %w", err)
	}
	return sql.OpenDB(conn), target, nil
}
