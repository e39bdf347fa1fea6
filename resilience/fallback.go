package resilience

import (
	"context"
	"errors"
	"sync"
)

// Fallback replaces the failed outcome of a call, after every retry, by a
// value: a static one, the last good response, or one computed by a
// function. Build it with StaticFallback, LastGoodFallback or
// FallbackFunc and put it in a Spec.
type Fallback[Req, Resp any] struct {
	when  func(error) bool
	fn    func(ctx context.Context, req Req, err error) (Resp, error)
	store func(req Req, resp Resp)
}

// FallbackFunc calls f with the error of a failed call; f's result is the
// call's result. when selects the errors to replace; nil means every error
// except a Permanent one and the caller's own cancellation.
func FallbackFunc[Req, Resp any](when func(error) bool, f func(ctx context.Context, req Req, err error) (Resp, error)) (*Fallback[Req, Resp], error) {
	if f == nil {
		return nil, errors.New("resilience: FallbackFunc: nil function")
	}
	if when == nil {
		when = DefaultFailure
	}
	return &Fallback[Req, Resp]{when: when, fn: f}, nil
}

// StaticFallback answers v to a failed call selected by when (nil: as in
// FallbackFunc). v is returned as is to every such call: make it a value,
// or a pointer to something nobody modifies.
func StaticFallback[Req, Resp any](when func(error) bool, v Resp) *Fallback[Req, Resp] {
	f, _ := FallbackFunc(when, func(context.Context, Req, error) (Resp, error) { return v, nil })
	return f
}

// LastGoodFallback answers a failed call with the last successful response
// to a request of the same key (nil key: one response for all), or with
// the error when there was none yet. clone, if not nil, copies a response
// when it is stored and when it is returned, so that callers never share
// one (a protobuf message, a map).
func LastGoodFallback[Req, Resp any](when func(error) bool, key func(Req) string, clone func(Resp) Resp) *Fallback[Req, Resp] {
	if key == nil {
		key = func(Req) string { return "" }
	}
	if clone == nil {
		clone = func(r Resp) Resp { return r }
	}
	var (
		mu   sync.Mutex
		last = map[string]Resp{}
	)
	f, _ := FallbackFunc(when, func(_ context.Context, req Req, err error) (Resp, error) {
		mu.Lock()
		r, ok := last[key(req)]
		mu.Unlock()
		if !ok {
			var zero Resp
			return zero, err
		}
		return clone(r), nil
	})
	f.store = func(req Req, resp Resp) {
		c := clone(resp)
		mu.Lock()
		last[key(req)] = c
		mu.Unlock()
	}
	return f
}

func (f *Fallback[Req, Resp]) middleware(c *Chain, _ Spec[Req, Resp], next Endpoint[Req, Resp]) Endpoint[Req, Resp] {
	return func(ctx context.Context, req Req) (Resp, error) {
		resp, err := next(ctx, req)
		if err == nil {
			if f.store != nil {
				f.store(req, resp)
			}
			return resp, nil
		}
		if !f.when(err) || ctx.Err() != nil {
			return resp, err
		}
		c.fellBack(ctx, err)
		return f.fn(ctx, req, err)
	}
}
