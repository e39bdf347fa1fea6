package natsjs

import (
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// progress tells JetStream, every third of the ack wait, that the message
// one goroutine is handling is still in progress, so that a long handler
// keeps its message. One timer per goroutine, re-armed for each message,
// costs far less than a goroutine and a ticker per message.
type progress struct {
	mu       sync.Mutex
	every    time.Duration
	inFlight jetstream.Msg // nil between messages
	timer    *time.Timer   // nil until the first message
}

// start arms the timer for msg, to report every period.
func (p *progress) start(msg jetstream.Msg, every time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.inFlight, p.every = msg, every
	if p.timer == nil {
		p.timer = time.AfterFunc(every, p.report)
		return
	}
	p.timer.Reset(every)
}

// report runs on the timer: it reports the message in flight and re-arms
// the timer.
func (p *progress) report() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.inFlight == nil {
		return // settled meanwhile
	}
	_ = p.inFlight.InProgress()
	p.timer.Reset(p.every)
}

// stop disarms the timer. Once it returns, no progress is reported for
// the message that was in flight: the lock orders it after any report
// under way.
func (p *progress) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.inFlight = nil
	p.timer.Stop()
}
