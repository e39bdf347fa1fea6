package kafka

import (
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
)

// worker handles the records of one partition, one at a time and in
// order. It belongs to its subscription, which stops it by closing stop
// and waits for done.
type worker struct {
	s    *subscription
	tp   topicPartition
	stop chan struct{}
	done chan struct{}
	wake chan struct{} // a record was queued

	mu     sync.Mutex
	queue  []*kgo.Record
	paused bool // fetching of the partition is paused until the queue drains
}

func newWorker(s *subscription, tp topicPartition) *worker {
	return &worker{
		s:    s,
		tp:   tp,
		stop: make(chan struct{}),
		done: make(chan struct{}),
		wake: make(chan struct{}, 1),
	}
}

// push queues recs, and pauses fetching of the partition when the queue
// is long. Pausing and resuming happen under w.mu, so that a resume cannot
// overtake the pause it undoes.
func (w *worker) push(recs []*kgo.Record) {
	w.mu.Lock()
	w.queue = append(w.queue, recs...)
	if len(w.queue) >= maxQueued && !w.paused {
		w.paused = true
		w.s.cl.PauseFetchPartitions(map[string][]int32{w.tp.topic: {w.tp.partition}})
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// next returns the next record, waiting for one, or nil once the worker
// is stopped. A stop wins over a queued record.
func (w *worker) next() *kgo.Record {
	for {
		select {
		case <-w.stop:
			return nil
		default:
		}
		w.mu.Lock()
		if len(w.queue) > 0 {
			r := w.queue[0]
			w.queue[0] = nil
			w.queue = w.queue[1:]
			if w.paused && len(w.queue) <= maxQueued/2 {
				w.paused = false
				w.s.cl.ResumeFetchPartitions(map[string][]int32{w.tp.topic: {w.tp.partition}})
			}
			w.mu.Unlock()
			return r
		}
		w.mu.Unlock()
		select {
		case <-w.stop:
			return nil
		case <-w.wake:
		}
	}
}

// run hands the partition's records to the Processor in order, and marks
// each one handled (or dead-lettered) for the next commit. A record the
// Processor abandoned, because the worker was stopped during its retries,
// is left unmarked, and with it everything after it: its partition's next
// owner starts there.
func (w *worker) run() {
	defer close(w.done)
	for {
		r := w.next()
		if r == nil {
			return
		}
		if err := w.s.proc.Process(w.s.handlerCtx, w.stop, r.Topic, int(r.Partition), 0, decode(r)); err != nil {
			return // broker.ErrAbandoned: stopped
		}
		w.s.cl.MarkCommitRecords(r)
	}
}
