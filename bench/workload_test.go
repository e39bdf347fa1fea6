package bench

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestRun runs a small workload on every system and checks the result is
// complete and sane.
func TestRun(t *testing.T) {
	for _, sys := range Systems() {
		t.Run(sys.Name(), func(t *testing.T) {
			r, err := Run(context.Background(), sys, Config{Messages: 2000, PayloadSize: 32, Publishers: 8, Consumers: 4, Keys: 50})
			if err != nil {
				t.Fatal(err)
			}
			// Publish may end a little after the last delivery when
			// Publish waits for the acknowledgement.
			if r.Messages != 2000 || r.EndToEnd <= 0 || r.Publish <= 0 {
				t.Errorf("implausible durations: %+v", r)
			}
			if r.P50 <= 0 || r.P50 > r.P99 || r.P99 > r.Max {
				t.Errorf("implausible latencies: p50 %v, p99 %v, max %v", r.P50, r.P99, r.Max)
			}
			if r.Mallocs < uint64(r.Messages) || r.PeakHeap == 0 {
				t.Errorf("implausible memory figures: %d mallocs, peak heap %d", r.Mallocs, r.PeakHeap)
			}
		})
	}
}

// lossy wraps a System and drops one published message, or publishes one
// twice.
type lossy struct {
	System
	dropSeq, dupSeq int
}

type lossySession struct {
	Session
	l lossy
}

func (l lossy) Start(ctx context.Context, consumers int, deliver func([]byte)) (Session, error) {
	s, err := l.System.Start(ctx, consumers, deliver)
	return lossySession{Session: s, l: l}, err
}

func (s lossySession) Publish(ctx context.Context, key string, payload []byte) error {
	seq := int(payload[8]) | int(payload[9])<<8
	switch seq {
	case s.l.dropSeq:
		return nil
	case s.l.dupSeq:
		if err := s.Session.Publish(ctx, key, payload); err != nil {
			return err
		}
	}
	return s.Session.Publish(ctx, key, payload)
}

// TestRunDetectsLoss checks that Run fails when a message goes missing or
// arrives twice.
func TestRunDetectsLoss(t *testing.T) {
	cfg := Config{Messages: 500, PayloadSize: 16, Publishers: 4, Timeout: 300 * time.Millisecond}
	for name, sys := range map[string]System{
		"drop": lossy{System: CourierMemory{}, dropSeq: 123, dupSeq: -1},
		"dup":  lossy{System: WatermillGoChannel{}, dropSeq: -1, dupSeq: 77},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Run(context.Background(), sys, cfg)
			if !errors.Is(err, ErrIncomplete) {
				t.Fatalf("Run = %v, want ErrIncomplete", err)
			}
			t.Log(err)
		})
	}
}
