package memory

import (
	"sync"

	"github.com/courier-go/courier/message"
)

// window tracks a worker's messages in concurrent delivery mode: which of
// those handed out since the worker's offset are done, and which were
// abandoned by a closing instance and must be handed out again.
type window struct {
	mu   sync.Mutex
	done []bool // done[i]: the message at offset+i is handled
	redo []redo // abandoned, in no particular order
}

// redo is an abandoned message and its offset.
type redo struct {
	offset uint64
	msg    *message.Message
}

// job is a message a worker hands to a subscription's pool.
type job struct {
	w   *worker
	off uint64
	msg *message.Message
}

// dispatch is deliver in concurrent delivery mode. It hands the shard's
// messages to s's pool of MaxInFlight goroutines, each as soon as one of
// them is free, without waiting for it to finish: the abandoned messages
// first, then those after the last one handed out. It returns how many it
// handed out, once none is left, s stops owning the shard or s closes.
// When a message is done (see finish) the shard's offset moves past the
// longest run of handled messages, and a message abandoned because s is
// closing is handed out again, to the shard's next owner.
func (w *worker) dispatch(s *subscription) int {
	n := 0
	for {
		off, m, ok := w.take()
		if !ok {
			return n
		}
		if w.owner.Load() != s || s.stopping() {
			w.giveBack(off, m)
			return n
		}
		select {
		case s.jobs <- job{w, off, m}:
			n++
		case <-s.stop:
			w.giveBack(off, m)
			return n
		}
	}
}

// work is one goroutine of a concurrent subscription's pool: it handles
// the messages the workers hand it until the subscription closes. It is
// counted in the subscription's active work from Subscribe on.
func (s *subscription) work() {
	defer s.release()
	for {
		var j job
		select {
		case j = <-s.jobs:
		case <-s.stop:
			return
		}
		// A message received as s closes is not started: it goes to
		// the shard's next owner, as an abandoned one does.
		abandoned := s.stopping() || s.proc.Process(s.ctx, s.stop, j.w.g.ch.name, j.w.index, 0, j.msg) != nil
		j.w.finish(j.off, j.msg, abandoned)
	}
}

// take returns the next message to hand out: an abandoned one, or the one
// at w.next, which it then passes.
func (w *worker) take() (uint64, *message.Message, bool) {
	w.inFlight.mu.Lock()
	if k := len(w.inFlight.redo); k > 0 {
		r := w.inFlight.redo[k-1]
		w.inFlight.redo = w.inFlight.redo[:k-1]
		w.inFlight.mu.Unlock()
		return r.offset, r.msg, true
	}
	if len(w.inFlight.done) == 0 {
		// Nothing in flight: start where the shard's offset is, which
		// the worker's ordered deliveries may have moved.
		if off := w.offset.Load(); w.next != off {
			w.next, w.read = off, nil
		}
	}
	w.inFlight.mu.Unlock()
	if len(w.read) == 0 {
		w.read = w.shard.read(w.next, readBatch)
		if len(w.read) == 0 {
			return 0, nil, false
		}
	}
	m, off := w.read[0], w.next
	w.read = w.read[1:]
	w.next++
	w.inFlight.mu.Lock()
	w.inFlight.done = append(w.inFlight.done, false)
	w.inFlight.mu.Unlock()
	return off, m, true
}

// giveBack returns a message taken but not handed out.
func (w *worker) giveBack(off uint64, m *message.Message) {
	w.inFlight.mu.Lock()
	w.inFlight.redo = append(w.inFlight.redo, redo{off, m})
	w.inFlight.mu.Unlock()
}

// finish records the end of a message's goroutine: abandoned, it is to be
// handed out again, and the worker is woken for it; handled, the offset
// moves past the run of handled messages it may complete.
func (w *worker) finish(off uint64, m *message.Message, abandoned bool) {
	w.inFlight.mu.Lock()
	if abandoned {
		w.inFlight.redo = append(w.inFlight.redo, redo{off, m})
		w.inFlight.mu.Unlock()
		w.notify()
		return
	}
	base := w.offset.Load()
	w.inFlight.done[off-base] = true
	k := 0
	for k < len(w.inFlight.done) && w.inFlight.done[k] {
		k++
	}
	if k > 0 {
		w.inFlight.done = append(w.inFlight.done[:0], w.inFlight.done[k:]...)
		w.offset.Store(base + uint64(k))
	}
	w.inFlight.mu.Unlock()
}
