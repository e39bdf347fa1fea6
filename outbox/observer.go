package outbox

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// RelayObserver is told what a relay reads and publishes, so that it can
// be measured (package outbox/metrics exports it to Prometheus). Its
// methods are called from the relay's goroutine and must return quickly.
type RelayObserver interface {
	// Read reports one read of the source that returned rows: how many.
	Read(rows int)
	// Published reports the rows of one Send the broker confirmed, to
	// destination: committed[i] is when the i-th row's transaction
	// committed (Source's notion; zero if unknown), confirmed when the
	// broker confirmed them. committed is valid only during the call.
	Published(destination string, committed []time.Time, confirmed time.Time)
}

// WithObserver reports what the relay reads and publishes to o (default:
// nothing is reported, and nothing is measured for it).
func WithObserver(o RelayObserver) RelayOption {
	return func(c *relayConfig) error {
		if o == nil {
			return errors.New("observer must not be nil")
		}
		c.observer = o
		return nil
	}
}

// DefaultProgressInterval is how often a running relay logs its progress
// unless WithProgressInterval says otherwise.
const DefaultProgressInterval = time.Minute

// WithProgressInterval sets how often Run logs a summary at INFO level:
// whether the relay leads, the rows published and dead-lettered since
// the last summary, the rate, the errors and the lag (default
// DefaultProgressInterval; 0 turns the summaries off). A relay that
// publishes nothing for hours still says, every interval, that it runs
// and how far behind it is.
func WithProgressInterval(d time.Duration) RelayOption {
	return func(c *relayConfig) error {
		if d < 0 {
			return errors.New("progress interval must not be negative")
		}
		c.progress = d
		return nil
	}
}

// logProgress logs a summary every interval until ctx ends.
func (r *Relay) logProgress(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	last, lastAt := r.Stats(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s := r.Stats()
			published := s.Published - last.Published
			attrs := []slog.Attr{slog.Bool("leader", s.Leader),
				slog.Uint64("published", published),
				slog.Float64("rate_per_second", float64(published)/now.Sub(lastAt).Seconds()),
				slog.Uint64("dead_lettered", s.DeadLettered-last.DeadLettered),
				slog.Uint64("errors", s.Errors-last.Errors),
				slog.Uint64("published_total", s.Published)}
			lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			lag, err := r.Lag(lctx)
			cancel()
			switch {
			case err != nil:
				attrs = append(attrs, slog.String("lag", "unknown: "+err.Error()))
			case lag.Bytes > 0:
				attrs = append(attrs, slog.Int64("lag_bytes", lag.Bytes))
			default:
				attrs = append(attrs, slog.Duration("lag", lag.Age))
			}
			if s.Position != "" {
				attrs = append(attrs, slog.String("position", s.Position))
			}
			if !s.PublishFailingSince.IsZero() {
				attrs = append(attrs, slog.Time("publish_failing_since", s.PublishFailingSince))
			}
			r.cfg.logger.LogAttrs(ctx, slog.LevelInfo, "courier: outbox relay progress", attrs...)
			last, lastAt = s, now
		}
	}
}
