package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/courier-go/courier/outbox/internal/relay"
	"github.com/courier-go/courier/sqldb"
)

// pollConfig is the table poller's configuration.
type pollConfig struct {
	batchSize int
	interval  time.Duration
	wakeup    Wakeup
	keep      bool
	eventuate *EventuateTable // PollEventuateTable: Eventuate's table instead of Courier's
}

// pollOption returns a RelayOption that configures the table poller,
// named name for the error WithSource gives beside it.
func pollOption(name string, set func(*pollConfig) error) RelayOption {
	return func(c *relayConfig) error {
		if c.pollSet == "" {
			c.pollSet = name
		}
		return set(&c.poll)
	}
}

// WithBatchSize sets how many rows one poll reads (default 500, at most
// 10000). It configures the table poller.
func WithBatchSize(n int) RelayOption {
	return pollOption("WithBatchSize", func(c *pollConfig) error {
		if n < 1 || n > 10000 {
			return fmt.Errorf("batch size must be between 1 and 10000, got %d", n)
		}
		c.batchSize = n
		return nil
	})
}

// WithPollInterval sets how long an idle relay waits before polling again
// when no Wakeup woke it (default 100ms). It configures the table poller.
func WithPollInterval(d time.Duration) RelayOption {
	return pollOption("WithPollInterval", func(c *pollConfig) error {
		if d <= 0 {
			return fmt.Errorf("poll interval must be positive, got %v", d)
		}
		c.interval = d
		return nil
	})
}

// WithKeepPublished makes the relay mark published rows (published = 1)
// instead of deleting them; the application then purges them itself. It
// configures the table poller.
func WithKeepPublished() RelayOption {
	return pollOption("WithKeepPublished", func(c *pollConfig) error {
		c.keep = true
		return nil
	})
}

// WithWakeup lets the relay poll as soon as rows are committed. It
// configures the table poller.
func WithWakeup(w Wakeup) RelayOption {
	return pollOption("WithWakeup", func(c *pollConfig) error {
		if w == nil {
			return errors.New("wakeup must not be nil")
		}
		c.wakeup = w
		return nil
	})
}

// poller is the default source: it reads the oldest unpublished rows of
// the outbox table, and confirms rows by deleting (or marking) them,
// fenced by the lease.
type poller struct {
	cfg pollConfig
	env relay.Env
}

func (p *poller) Bind(env relay.Env) error {
	if p.env.DB != nil {
		return errors.New("outbox: the table poller serves one relay")
	}
	if p.cfg.eventuate != nil && env.Dialect != sqldb.Postgres && env.Dialect != sqldb.MySQL {
		return fmt.Errorf("%w, not %s", errNoEventuateDialect, env.Dialect)
	}
	p.env = env
	return nil
}

func (p *poller) Setup(ctx context.Context) error {
	if p.cfg.eventuate != nil {
		return p.cfg.eventuate.Check(ctx, p.env.DB)
	}
	return sqldb.CheckSchema(ctx, p.env.DB, p.env.Dialect)
}

// table is the outbox table the poller reads.
func (p *poller) table() string {
	if p.cfg.eventuate != nil {
		return p.cfg.eventuate.TableName()
	}
	return "message"
}

func (p *poller) Progress() relay.Progress { return relay.Progress{} }

// Lag is the age of the oldest unpublished row.
func (p *poller) Lag(ctx context.Context) (relay.Lag, error) {
	var oldest sql.NullInt64
	if err := p.env.DB.QueryRowContext(ctx, "SELECT MIN(creation_time) FROM "+p.table()+" WHERE published = 0").Scan(&oldest); err != nil {
		return relay.Lag{}, fmt.Errorf("outbox: reading the oldest unpublished row: %w", err)
	}
	if !oldest.Valid {
		return relay.Lag{}, nil
	}
	return relay.Lag{Age: max(0, time.Since(time.UnixMilli(oldest.Int64)))}, nil
}

// Open starts the wake-ups, if any, for the reader's lifetime.
func (p *poller) Open(ctx context.Context, lead relay.Lead) (relay.Reader, error) {
	rd := &pollReader{p: p, lease: lead.Lease, wake: make(chan struct{}, 1), stop: func() {}}
	if w := p.cfg.wakeup; w != nil {
		wctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() {
			err := w.Run(wctx, func() {
				select {
				case rd.wake <- struct{}{}:
				default:
				}
			})
			if err != nil && wctx.Err() == nil {
				p.env.Logger.Warn("courier: outbox wake-ups stopped; polling only", slog.Any("error", err))
			}
		})
		rd.stop = func() { cancel(); wg.Wait() }
	}
	return rd, nil
}

// pollReader is one leadership's polling.
type pollReader struct {
	p     *poller
	lease *sqldb.Lease
	wake  chan struct{}
	stop  func()
	// idle is set after a poll that found less than a batch: the next
	// one waits for the interval or a wake-up.
	idle bool
	rows []relay.Row
	keys []any // the key of each row: its id (or dbid in Eventuate's database-id mode)
}

func (rd *pollReader) Read(ctx context.Context) ([]relay.Row, error) {
	if rd.idle {
		t := time.NewTimer(rd.p.cfg.interval)
		select {
		case <-ctx.Done():
		case <-rd.wake:
		case <-t.C:
		}
		t.Stop()
		if ctx.Err() != nil {
			return nil, nil
		}
	}
	rows, keys, err := rd.query(ctx)
	rd.rows, rd.keys, rd.idle = rows, keys, len(rows) < rd.p.cfg.batchSize
	if err != nil {
		rd.idle = true
	}
	return rows, err
}

func (rd *pollReader) query(ctx context.Context) ([]relay.Row, []any, error) {
	d := rd.p.env.Dialect
	query := "SELECT id, destination, headers, payload, creation_time FROM message WHERE published = 0 ORDER BY seq LIMIT ?"
	if rd.p.cfg.eventuate != nil {
		query, _, _ = rd.p.eventuateSQL()
	}
	q, err := rd.p.env.DB.QueryContext(ctx, d.Rebind(query), rd.p.cfg.batchSize)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the outbox: %w", err)
	}
	defer q.Close()
	out := make([]relay.Row, 0, rd.p.cfg.batchSize)
	keys := make([]any, 0, rd.p.cfg.batchSize)
	for q.Next() {
		var (
			rw      relay.Row
			key     any
			created sql.NullInt64
		)
		if rd.p.cfg.eventuate != nil {
			rw, key, err = rd.p.scanEventuate(q, &created)
		} else {
			err = q.Scan(&rw.ID, &rw.Destination, &rw.Headers, &rw.Payload, &created)
			key = rw.ID
		}
		if err != nil {
			return nil, nil, fmt.Errorf("reading the outbox: %w", err)
		}
		if created.Valid {
			rw.Committed = time.UnixMilli(created.Int64)
		}
		out, keys = append(out, rw), append(keys, key)
	}
	if err := q.Err(); err != nil {
		return nil, nil, fmt.Errorf("reading the outbox: %w", err)
	}
	return out, keys, nil
}

// Confirm removes the rows the broker confirmed; the others are read
// again.
func (rd *pollReader) Confirm(ctx context.Context, done []bool) error {
	var ids []any
	for i, ok := range done {
		if ok {
			ids = append(ids, rd.keys[i])
		}
	}
	rd.rows, rd.keys = nil, nil
	if len(ids) == 0 {
		return nil
	}
	if rd.p.env.Dialect == sqldb.Postgres {
		return rd.removePostgres(ctx, ids)
	}
	return rd.remove(ctx, ids)
}

func (rd *pollReader) Close(context.Context) error {
	rd.stop()
	return nil
}

// remove deletes (or marks) the published rows, but only while this relay
// still holds the lease with the token it published under.
func (rd *pollReader) remove(ctx context.Context, ids []any) error {
	for start := 0; start < len(ids); start += maxRowsPerInsert {
		chunk := ids[start:min(len(ids), start+maxRowsPerInsert)]
		fence, args := rd.lease.Fence()
		remove, key := rd.removeStatement()
		stmt := remove + " WHERE " + key + " IN (" + strings.TrimSuffix(strings.Repeat("?, ", len(chunk)), ", ") + ") AND " + fence
		all := make([]any, 0, len(chunk)+len(args))
		all = append(all, chunk...)
		all = append(all, args...)
		res, err := rd.p.env.DB.ExecContext(ctx, rd.p.env.Dialect.Rebind(stmt), all...)
		if err != nil {
			return fmt.Errorf("removing %d published rows: %w", len(chunk), err)
		}
		if err := fenced(res); err != nil {
			return err
		}
	}
	return nil
}

// removeStatement returns the statement that removes (or marks) rows,
// without its WHERE clause, and the column that identifies them.
func (rd *pollReader) removeStatement() (string, string) {
	if rd.p.cfg.eventuate != nil {
		_, remove, key := rd.p.eventuateSQL()
		return remove, key
	}
	if rd.p.cfg.keep {
		return "UPDATE message SET published = 1", "id"
	}
	return "DELETE FROM message", "id"
}

// fenced reports sqldb.ErrLeaseLost when a removal touched no row:
// another relay leads now and will publish these rows again; consumers
// absorb the duplicates.
func fenced(res sql.Result) error {
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("removing published rows: %w", sqldb.ErrLeaseLost)
	}
	return nil
}

// removePostgres removes the rows with one statement whose ids are one
// array parameter (the same statement text for every batch, so the
// driver's prepared statement is reused), in a transaction that does not
// wait for its WAL flush (synchronous_commit off). A removal lost in a
// server crash only makes the rows be published again, which
// at-least-once delivery allows; without the flush, the relay's next
// batch does not wait for the disk.
func (rd *pollReader) removePostgres(ctx context.Context, ids []any) error {
	fence, args := rd.lease.Fence()
	db := rd.p.env.DB
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("removing %d published rows: %w", len(ids), err)
	}
	if _, err := tx.ExecContext(ctx, "SET LOCAL synchronous_commit TO off"); err != nil {
		return errors.Join(fmt.Errorf("removing %d published rows: %w", len(ids), err), tx.Rollback())
	}
	remove, key := rd.removeStatement()
	res, err := tx.ExecContext(ctx, sqldb.Postgres.Rebind(remove+" WHERE "+key+" = ANY(?) AND "+fence), append([]any{pgArray(ids)}, args...)...)
	if err == nil {
		err = fenced(res)
	}
	if err != nil {
		if !errors.Is(err, sqldb.ErrLeaseLost) {
			err = fmt.Errorf("removing %d published rows: %w", len(ids), err)
		}
		return errors.Join(err, tx.Rollback())
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("removing %d published rows: %w", len(ids), err)
	}
	return nil
}

// pgArray returns keys, all strings (ids) or all int64s (Eventuate's
// dbids), as the typed slice the driver sends as one array parameter.
func pgArray(keys []any) any {
	if len(keys) > 0 {
		if _, ok := keys[0].(int64); ok {
			out := make([]int64, len(keys))
			for i, k := range keys {
				out[i] = k.(int64)
			}
			return out
		}
	}
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.(string)
	}
	return out
}
