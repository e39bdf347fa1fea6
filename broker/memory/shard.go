package memory

import (
	"sync"
	"sync/atomic"

	"github.com/courier-go/courier/internal/sharding"
	"github.com/courier-go/courier/message"
)

// Tuning of the shard logs.
const (
	// readBatch is how many messages a worker takes from a shard at once.
	readBatch = 256
	// trimEvery is how many appends pass between attempts to drop the
	// messages every subscriber id has handled.
	trimEvery = 1024
)

// channel is a named stream split into shards, with the subscriber ids that
// consume it.
type channel struct {
	b      *Broker
	name   string
	shards []*shard
	groups map[string]*group // guarded by b.mu
}

// shard is an append-only log of messages, read by one worker per
// subscriber id.
type shard struct {
	mu        sync.Mutex
	log       []*message.Message
	base      uint64    // offset of log[0]
	readers   []*worker // replaced, never changed in place, so it can be read after mu is released
	sinceTrim int
}

func (s *shard) append(m *message.Message) {
	s.mu.Lock()
	readers := s.readers
	if len(readers) == 0 {
		s.mu.Unlock()
		return
	}
	s.log = append(s.log, m)
	if s.sinceTrim++; s.sinceTrim >= trimEvery {
		s.trimLocked()
	}
	s.mu.Unlock()
	for _, w := range readers {
		w.notify()
	}
}

// trimLocked drops the prefix of the log that every reader has passed, once
// it is at least half the log, so each message is copied at most once on
// average.
func (s *shard) trimLocked() {
	s.sinceTrim = 0
	low := s.base + uint64(len(s.log))
	for _, w := range s.readers {
		low = min(low, w.offset.Load())
	}
	drop := int(low - s.base)
	if drop == 0 || drop < len(s.log)/2 {
		return
	}
	rest := make([]*message.Message, len(s.log)-drop, max(2*(len(s.log)-drop), trimEvery))
	copy(rest, s.log[drop:])
	s.log, s.base = rest, low
}

// trimCaughtUp is called by a reader that has caught up with the log: it
// trims a log of at least trimEvery messages, so that a burst followed by
// silence is not held until the next append.
func (s *shard) trimCaughtUp() {
	s.mu.Lock()
	if len(s.log) >= trimEvery {
		s.trimLocked()
	}
	s.mu.Unlock()
}

// read returns up to n messages from offset on. The returned slice must not
// be modified; it stays valid after later appends and trims.
func (s *shard) read(offset uint64, n int) []*message.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	start := int(offset - s.base)
	end := min(len(s.log), start+n)
	return s.log[start:end:end]
}

// addReader registers w and starts it at the end of the log: it sees every
// message appended after addReader returns.
func (s *shard) addReader(w *worker) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w.offset.Store(s.base + uint64(len(s.log)))
	s.readers = append(s.readers[:len(s.readers):len(s.readers)], w)
}

// group is one subscriber id on one channel: a worker per shard, and the
// instances (subscriptions) among which the shards are divided.
type group struct {
	ch      *channel
	id      string
	mu      sync.Mutex
	members []*subscription // in join order
	workers []*worker       // one per shard
}

func (ch *channel) groupLocked(id string) *group {
	g, ok := ch.groups[id]
	if ok {
		return g
	}
	g = &group{ch: ch, id: id, workers: make([]*worker, len(ch.shards))}
	for i, s := range ch.shards {
		w := &worker{g: g, shard: s, index: i, wake: make(chan struct{}, 1)}
		s.addReader(w)
		g.workers[i] = w
		ch.b.wg.Add(1)
		go w.run(ch.b.done)
	}
	ch.groups[id] = g
	return g
}

func (g *group) join(s *subscription) {
	g.mu.Lock()
	g.members = append(g.members, s)
	g.assignLocked()
	g.mu.Unlock()
}

func (g *group) leave(s *subscription) {
	g.mu.Lock()
	for i, m := range g.members {
		if m == s {
			g.members = append(g.members[:i:i], g.members[i+1:]...)
			break
		}
	}
	g.assignLocked()
	g.mu.Unlock()
}

// assignLocked deals the shards out to the members round robin and wakes
// every worker, so that each picks up its new owner at the next message
// boundary.
// assignLocked gives each shard to its owner among the members, by the
// sticky assignment every adapter that assigns shards shares, and wakes
// the workers whose owner changed.
func (g *group) assignLocked() {
	ids := make([]string, len(g.members))
	byID := make(map[string]*subscription, len(g.members))
	for i, m := range g.members {
		ids[i] = m.id
		byID[m.id] = m
	}
	for i, id := range sharding.Assign(ids, len(g.workers)) {
		w := g.workers[i]
		if owner := byID[id]; w.owner.Load() != owner {
			w.owner.Store(owner)
			w.notify()
		}
	}
}

// worker delivers one shard's messages to one subscriber id, in order, to
// whichever instance owns the shard at the time. Being the only goroutine
// that delivers the shard to the subscriber id, it guarantees that one
// instance at a time handles it and that a move between instances happens
// between two messages.
type worker struct {
	g      *group
	shard  *shard
	index  int
	offset atomic.Uint64 // next offset to deliver; in concurrent mode, the first not handled
	owner  atomic.Pointer[subscription]
	wake   chan struct{}

	// In concurrent delivery mode (see dispatch):
	next     uint64             // the next offset to hand out; the worker's own
	read     []*message.Message // read from the shard at next, not handed out yet
	inFlight window
}

func (w *worker) notify() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *worker) run(done <-chan struct{}) {
	defer w.g.ch.b.wg.Done()
	for {
		select {
		case <-done:
			return
		case <-w.wake:
		}
		w.drain()
	}
}

// drain delivers until the shard is empty, it has no owner, or its owner is
// closing; a later append or reassignment wakes the worker again.
func (w *worker) drain() {
	for {
		s := w.owner.Load()
		if s == nil || !s.acquire() {
			return
		}
		n, more := w.deliver(s)
		s.release()
		if n == 0 && !more {
			w.shard.trimCaughtUp()
			return
		}
	}
}

// deliver hands a batch of messages to s while s owns the shard. It reports
// how many were done and whether it stopped because the owner changed.
func (w *worker) deliver(s *subscription) (done int, moved bool) {
	if s.jobs != nil {
		return w.dispatch(s), false
	}
	batch := w.shard.read(w.offset.Load(), readBatch)
	for _, m := range batch {
		if w.owner.Load() != s {
			return done, true
		}
		if s.stopping() {
			return done, false
		}
		if err := s.proc.Process(s.ctx, s.stop, w.g.ch.name, w.index, 0, m); err != nil {
			return done, false // abandoned: the next owner gets it again
		}
		w.offset.Add(1)
		done++
	}
	return done, false
}
