// Command courier-bench runs Courier's benchmark suites, each measuring
// Courier beside the peers users would pick instead in one process run,
// and prints the results as Markdown tables or CSV, or writes them into
// BENCHMARKS.md between its markers.
//
//	courier-bench                          every suite, full size, Markdown on stdout
//	courier-bench -quick                   every suite, small (under a minute)
//	courier-bench -suite nats,kafka        some suites
//	courier-bench -format csv -o out.csv   CSV into a file
//	courier-bench -update ../BENCHMARKS.md the tables of BENCHMARKS.md, in place
//
// Suites: memory (Courier's memory broker, Watermill GoChannel), nats
// (embedded NATS JetStream: Courier, Watermill, raw nats.go), kafka (kfake:
// Courier, Watermill, raw franz-go), amqp (RabbitMQ: Courier, Watermill,
// raw amqp091-go), outbox (PostgreSQL: insert commit rate, Courier's
// polling and log-tailing relays, watermill-sql), calls (request/reply),
// events (typed event dispatch), rpc (the resilience policies on HTTP and
// gRPC calls beside the bare clients, and the cost of a refused call),
// discovery (failover per registry, the router's overhead). RabbitMQ and
// PostgreSQL come from COURIER_AMQP_URL and COURIER_POSTGRES_URL; a suite
// whose server is unreachable is skipped with a note unless
// -require-servers (or CI=true).
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/courier-go/courier/bench"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "courier-bench:", err)
		os.Exit(1)
	}
}

type config struct {
	suites   []bench.Suite
	opts     bench.Options
	format   string
	out      string
	update   string
	note     string
	progress bool
}

func parse(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("courier-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		c       config
		suites  = fs.String("suite", "all", "comma-separated suites to run: "+strings.Join(bench.SuiteNames(), ", ")+", or all")
		sizes   = fs.String("sizes", "", "comma-separated payload sizes in bytes (default 16,64,256; 64 with -quick)")
		require = fs.Bool("require-servers", os.Getenv("CI") == "true", "fail, rather than skip, when RabbitMQ or PostgreSQL is unreachable")
	)
	fs.BoolVar(&c.opts.Quick, "quick", false, "small runs for a local check (under a minute for every suite)")
	fs.IntVar(&c.opts.Messages, "msgs", 0, "messages per workload run (default: each suite's own)")
	fs.IntVar(&c.opts.Warmup, "warmup", 0, "unmeasured runs of each system before the measured one (default 1, 0 with -quick; -1 for none)")
	fs.StringVar(&c.format, "format", "markdown", "output format: markdown or csv")
	fs.StringVar(&c.out, "o", "", "write the output to this file instead of stdout")
	fs.StringVar(&c.update, "update", "", "replace the tables between the bench markers of this Markdown file (e.g. ../BENCHMARKS.md)")
	fs.BoolVar(&c.progress, "v", true, "report each measurement on stderr as it finishes")
	fs.DurationVar(&c.opts.Soak, "soak", 0, "outbox suite only: run each Courier relay at 1,000 msgs/s for this long, sampling the heap every 10s, instead of the suite's phases (e.g. 5m)")
	fs.IntVar(&c.opts.Rate, "rate", 0, "broker suites only: pace the publishers at this many messages a second in all (e.g. 1000), for latency under a steady load")
	fs.StringVar(&c.note, "note", "", "a remark put before the tables' header line, e.g. \"Provisional:\"")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if c.suites, err = bench.SelectSuites(strings.Split(*suites, ",")); err != nil {
		return c, err
	}
	if *sizes != "" {
		for _, f := range strings.Split(*sizes, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < bench.HeaderBytes {
				return c, fmt.Errorf("-sizes: %q is not a size of at least %d bytes", f, bench.HeaderBytes)
			}
			c.opts.Sizes = append(c.opts.Sizes, n)
		}
	}
	switch {
	case c.opts.Soak < 0:
		return c, fmt.Errorf("-soak must not be negative, got %v", c.opts.Soak)
	case c.opts.Rate < 0:
		return c, fmt.Errorf("-rate must not be negative, got %d", c.opts.Rate)
	case c.opts.Messages < 0:
		return c, fmt.Errorf("-msgs must not be negative, got %d", c.opts.Messages)
	case c.format != "markdown" && c.format != "csv":
		return c, fmt.Errorf("-format must be markdown or csv, got %q", c.format)
	case c.update != "" && (c.out != "" || c.format != "markdown"):
		return c, errors.New("-update writes Markdown into its file; it cannot be combined with -o or -format csv")
	}
	c.opts.RequireServers = *require
	if c.progress {
		c.opts.Progress = stderr
	}
	return c, nil
}

// commandLine is the command as a user would type it, for the report.
func commandLine(args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = a
		if strings.ContainsAny(a, " \"'$`") {
			quoted[i] = strconv.Quote(a)
		}
	}
	return strings.TrimSpace("cd bench && go run ./cmd/courier-bench " + strings.Join(quoted, " "))
}

func run(args []string, stdout, stderr io.Writer) error {
	c, err := parse(args, stderr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil))) // the systems' own logs

	start := time.Now()
	var (
		tables []bench.Table
		errs   []error
	)
	for _, s := range c.suites {
		ts, err := s.Run(ctx, c.opts)
		tables = append(tables, ts...)
		if err != nil {
			errs = append(errs, fmt.Errorf("suite %s: %w", s.Name(), err))
		}
		if ctx.Err() != nil {
			break
		}
	}
	header := strings.TrimSpace(fmt.Sprintf("%s Measured %s on %s with `%s`.", c.note, provisional(c.opts), bench.Machine(), commandLine(args)))
	fmt.Fprintf(stderr, "courier-bench: %d tables in %v\n", len(tables), time.Since(start).Round(time.Second))

	switch {
	case c.update != "":
		doc, err := os.ReadFile(c.update)
		if err != nil {
			return err
		}
		out, missing := bench.UpdateMarkdown(doc, header, tables)
		if len(missing) > 0 {
			errs = append(errs, fmt.Errorf("%s has no markers for tables %s", c.update, strings.Join(missing, ", ")))
		}
		if err := os.WriteFile(c.update, out, 0o644); err != nil {
			return err
		}
	default:
		var buf bytes.Buffer
		if c.format == "csv" {
			err = bench.WriteCSV(&buf, tables)
		} else {
			err = writeMarkdown(&buf, header, tables)
		}
		if err != nil {
			return err
		}
		w := stdout
		if c.out != "" {
			f, err := os.Create(c.out)
			if err != nil {
				return err
			}
			defer f.Close()
			w = f
		}
		if _, err := w.Write(buf.Bytes()); err != nil {
			return err
		}
	}
	return errors.Join(errs...)
}

// provisional labels quick runs, whose figures are not for comparison.
func provisional(o bench.Options) string {
	if o.Quick {
		return "in quick mode (small runs: indicative only)"
	}
	return "in one run"
}

func writeMarkdown(w io.Writer, header string, tables []bench.Table) error {
	if _, err := fmt.Fprintf(w, "%s\n", header); err != nil {
		return err
	}
	for _, t := range tables {
		if _, err := fmt.Fprintf(w, "\n### %s: %s\n\n", t.ID, t.Title); err != nil {
			return err
		}
		if err := t.WriteMarkdown(w); err != nil {
			return err
		}
	}
	return nil
}
