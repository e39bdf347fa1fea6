// Package delivery is the service interface of the RPC example: the port
// that business code calls, whatever carries the call. deliveryhttp and
// deliverygrpc are two adapters for it, REST and gRPC, each guarded by the
// same resilience policies; Kitchen is the service itself.
package delivery

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// EstimateRequest asks how long an order from a restaurant takes to arrive
// at an address.
type EstimateRequest struct {
	RestaurantID string `json:"restaurantId"`
	Address      string `json:"address"`
}

// Estimate is the answer.
type Estimate struct {
	Minutes int `json:"minutes"`
	// Source is "kitchen" for a real answer and "fallback" when a client's
	// fallback answered instead.
	Source string `json:"source"`
}

// Estimator is the service interface. Implementations are safe for
// concurrent use.
type Estimator interface {
	Estimate(ctx context.Context, req EstimateRequest) (Estimate, error)
}

// ErrUnknownRestaurant is returned for a restaurant the service does not
// know: the caller's mistake, not a failure of the service.
var ErrUnknownRestaurant = errors.New("delivery: unknown restaurant")

// Fallback is the estimate clients answer with when the service cannot:
// a pessimistic default.
var Fallback = Estimate{Minutes: 60, Source: "fallback"}

// Kitchen is the service implementation: an estimate per restaurant plus a
// preparation delay, which a demo can make slow or failing.
type Kitchen struct {
	// Minutes per restaurant id.
	Minutes map[string]int
	// Work is called before each answer; it may sleep (honouring ctx) or
	// fail, to play a struggling service. Nil means a healthy one.
	Work func(ctx context.Context) error
}

// Estimate implements Estimator.
func (k *Kitchen) Estimate(ctx context.Context, req EstimateRequest) (Estimate, error) {
	if k.Work != nil {
		if err := k.Work(ctx); err != nil {
			return Estimate{}, fmt.Errorf("delivery: estimate for %s: %w", req.RestaurantID, err)
		}
	}
	m, ok := k.Minutes[req.RestaurantID]
	if !ok {
		return Estimate{}, fmt.Errorf("%w %q", ErrUnknownRestaurant, req.RestaurantID)
	}
	return Estimate{Minutes: m, Source: "kitchen"}, nil
}

// Sleep waits d or until ctx ends, for Kitchen.Work functions.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
