package commands_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/commands"
	"github.com/courier-go/courier/message"
	"github.com/courier-go/courier/resilience"
)

// busyError is another package's transient error: it says so by its
// Permanent method only.
type busyError struct{}

func (busyError) Error() string   { return "database busy" }
func (busyError) Permanent() bool { return false }

// restLookup calls a REST endpoint through a resilience chain that retries,
// marking a 4xx answer permanent as a client would: the server is fine,
// the request is not.
func restLookup(t *testing.T, status int) (lookup func(ctx context.Context) error, calls *atomic.Int32) {
	t.Helper()
	calls = new(atomic.Int32)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	chain, err := resilience.NewChain(resilience.WithRetry(resilience.MaxAttempts(4), resilience.Backoff(time.Millisecond, time.Millisecond)))
	if err != nil {
		t.Fatal(err)
	}
	get := resilience.Wrap(chain, resilience.Spec[string, struct{}]{Idempotent: func(string) bool { return true }},
		func(ctx context.Context, url string) (struct{}, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return struct{}{}, err
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				return struct{}{}, err
			}
			resp.Body.Close()
			if resp.StatusCode >= 400 {
				err := fmt.Errorf("GET %s: %s", url, resp.Status)
				if resp.StatusCode < 500 {
					err = resilience.Permanent(err)
				}
				return struct{}{}, err
			}
			return struct{}{}, nil
		})
	return func(ctx context.Context) error {
		_, err := get(ctx, srv.URL+"/consumers/c-1")
		return err
	}, calls
}

func TestPermanentErrorsOfEveryPackageGetAFailureReplyAtOnce(t *testing.T) {
	cause := errors.New("no such consumer")
	for _, tc := range []struct {
		name string
		why  string // in the failure reply
		err  func(ctx context.Context, t *testing.T) error
	}{
		{"resilience.Permanent", "no such consumer", func(context.Context, *testing.T) error { return resilience.Permanent(cause) }},
		{"broker.Permanent", "no such consumer", func(context.Context, *testing.T) error { return broker.Permanent(cause) }},
		{"Retryable of resilience.Permanent", "lookup: no such consumer", func(context.Context, *testing.T) error {
			return commands.Retryable(fmt.Errorf("lookup: %w", resilience.Permanent(cause)))
		}},
		{"wrapped Retryable of broker.Permanent", "handler: no such consumer", func(context.Context, *testing.T) error {
			return fmt.Errorf("handler: %w", commands.Retryable(broker.Permanent(cause)))
		}},
		{"Retryable of a validation error", "payload too large", func(context.Context, *testing.T) error {
			return commands.Retryable(fmt.Errorf("forwarding: %w", message.ErrPayloadTooLarge))
		}},
		{"Retryable of a REST call that failed for good", "404 Not Found", func(ctx context.Context, t *testing.T) error {
			lookup, calls := restLookup(t, http.StatusNotFound)
			err := lookup(ctx)
			if calls.Load() != 1 {
				t.Errorf("the chain called the REST endpoint %d times, want 1", calls.Load())
			}
			return commands.Retryable(err) // as a handler that retries its database errors would
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, caller, ctx := setUp(t)
			d := commands.NewDispatcher(b, quiet)
			var attempts atomic.Int32
			commands.Handle(d, func(ctx context.Context, c commands.Command[Ping]) (commands.Reply, error) {
				attempts.Add(1)
				return commands.Reply{}, tc.err(ctx, t)
			})
			subscribe(t, b, d, broker.WithMaxAttempts(5), broker.WithBackoff(broker.ConstantBackoff(time.Millisecond)))
			_, err := commands.Call[Pong](ctx, caller, "pings", Ping{})
			f, ok := commands.As[commands.HandlerFailure](err)
			if !ok {
				t.Fatalf("Call = %v, want a failure reply", err)
			}
			if n := attempts.Load(); n != 1 {
				t.Fatalf("the handler ran %d times, want once", n)
			}
			if !strings.Contains(f.Error, tc.why) {
				t.Fatalf("failure reply %q does not say why", f.Error)
			}
		})
	}
}

func TestTransientErrorsOfEveryPackageRedeliver(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"Retryable", commands.Retryable(errors.New("database busy"))},
		{"another package's transient error", fmt.Errorf("reserving: %w", busyError{})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, caller, ctx := setUp(t)
			d := commands.NewDispatcher(b, quiet)
			var attempts atomic.Int32
			commands.Handle(d, func(context.Context, commands.Command[Ping]) (commands.Reply, error) {
				if attempts.Add(1) < 3 {
					return commands.Reply{}, tc.err
				}
				return commands.Success(Pong{N: 1}), nil
			})
			subscribe(t, b, d, broker.WithBackoff(broker.ConstantBackoff(time.Millisecond)))
			if _, err := commands.Call[Pong](ctx, caller, "pings", Ping{}); err != nil || attempts.Load() != 3 {
				t.Fatalf("Call = %v after %d attempts, want success after 3", err, attempts.Load())
			}
		})
	}
}

// Each package's marker is recognised by the others: by behaviour, not by
// type.
func TestMarkersAreRecognisedAcrossPackages(t *testing.T) {
	cause := errors.New("cause")
	for _, tc := range []struct {
		name      string
		err       error
		permanent bool
	}{
		{"resilience.Permanent", resilience.Permanent(cause), true},
		{"broker.Permanent", broker.Permanent(cause), true},
		{"message validation", fmt.Errorf("x: %w", message.ErrInvalidHeader), true},
		{"commands.Retryable", commands.Retryable(cause), false},
		{"commands.Retryable of resilience.Permanent", commands.Retryable(resilience.Permanent(cause)), true},
		{"commands.Retryable of broker.Permanent", commands.Retryable(broker.Permanent(cause)), true},
		{"plain", cause, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := broker.IsPermanent(tc.err); got != tc.permanent {
				t.Errorf("broker.IsPermanent = %v, want %v", got, tc.permanent)
			}
			if got := resilience.IsPermanent(tc.err); got != tc.permanent {
				t.Errorf("resilience.IsPermanent = %v, want %v", got, tc.permanent)
			}
			if !errors.Is(tc.err, cause) && !errors.Is(tc.err, message.ErrInvalidHeader) {
				t.Errorf("the marker hides its cause: %v", tc.err)
			}
			// A resilience chain retries what is not permanent, whoever
			// marked it.
			chain, err := resilience.NewChain(resilience.WithRetry(resilience.MaxAttempts(3), resilience.Backoff(time.Millisecond, time.Millisecond)))
			if err != nil {
				t.Fatal(err)
			}
			var calls int
			call := resilience.Wrap(chain, resilience.Spec[int, int]{Idempotent: func(int) bool { return true }},
				func(context.Context, int) (int, error) { calls++; return 0, tc.err })
			call(context.Background(), 0)
			if want := map[bool]int{true: 1, false: 3}[tc.permanent]; calls != want {
				t.Errorf("a retrying chain made %d attempts, want %d", calls, want)
			}
		})
	}
	if commands.Retryable(nil) != nil {
		t.Error("Retryable(nil) is not nil")
	}
}
