package resilience

import (
	"context"
	"log/slog"
	"time"
)

// Observer receives the policies' events, for metrics. Its methods are
// called synchronously on the calling goroutine and must be fast; they
// must not block. Embed NopObserver to implement only some of them.
type Observer interface {
	// BreakerStateChanged reports a transition of the breaker of key.
	BreakerStateChanged(chain, key string, from, to State)
	// Rejected reports a call refused without a network call; reason is
	// ErrBreakerOpen or ErrBulkheadFull.
	Rejected(chain, key string, reason error)
	// Retrying reports that attempt (1 for the first retry) starts after
	// delay because of err.
	Retrying(chain string, attempt int, delay time.Duration, err error)
	// TimedOut reports an attempt cut short by the chain's timeout.
	TimedOut(chain string)
	// FellBack reports a failure replaced by the fallback.
	FellBack(chain string, err error)
}

// NopObserver ignores every event.
type NopObserver struct{}

// BreakerStateChanged does nothing.
func (NopObserver) BreakerStateChanged(string, string, State, State) {}

// Rejected does nothing.
func (NopObserver) Rejected(string, string, error) {}

// Retrying does nothing.
func (NopObserver) Retrying(string, int, time.Duration, error) {}

// TimedOut does nothing.
func (NopObserver) TimedOut(string) {}

// FellBack does nothing.
func (NopObserver) FellBack(string, error) {}

// events fans the policies' events out to the observer and the logger.
type events struct {
	name     string
	observer Observer
	logger   *slog.Logger
}

func (e *events) stateChanged(key string, from, to State) {
	e.observer.BreakerStateChanged(e.name, key, from, to)
	level := slog.LevelInfo
	if to == Open {
		level = slog.LevelWarn
	}
	e.logger.Log(context.Background(), level, "circuit breaker "+to.String(),
		slog.String("chain", e.name), slog.String("key", key), slog.String("from", from.String()))
}

func (e *events) rejected(ctx context.Context, key string, reason error) {
	e.observer.Rejected(e.name, key, reason)
	// Rejections come in floods while a breaker is open: they are counted
	// by the observer and logged at debug level only, without allocating
	// unless that level is enabled.
	if e.logger.Enabled(ctx, slog.LevelDebug) {
		e.logger.DebugContext(ctx, "call rejected", slog.String("chain", e.name),
			slog.String("key", key), slog.String("reason", reason.Error()))
	}
}

func (e *events) retrying(ctx context.Context, attempt int, delay time.Duration, err error) {
	e.observer.Retrying(e.name, attempt, delay, err)
	if e.logger.Enabled(ctx, slog.LevelDebug) {
		e.logger.DebugContext(ctx, "retrying call", slog.String("chain", e.name),
			slog.Int("attempt", attempt), slog.Duration("delay", delay), slog.Any("error", err))
	}
}

func (e *events) timedOut() { e.observer.TimedOut(e.name) }

func (e *events) fellBack(ctx context.Context, err error) {
	e.observer.FellBack(e.name, err)
	if e.logger.Enabled(ctx, slog.LevelDebug) {
		e.logger.DebugContext(ctx, "fallback used", slog.String("chain", e.name), slog.Any("error", err))
	}
}
