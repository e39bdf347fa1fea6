package kafka

import (
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	// maxBatch bounds the records a worker takes from its queue at once.
	maxBatch = 256
	// markEvery bounds how long a worker holds handled records before
	// marking them for the next commit, when a batch takes that long.
	markEvery = 100 * time.Millisecond
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

// stopped reports whether the worker was told to stop.
func (w *worker) stopped() bool {
	select {
	case <-w.stop:
		return true
	default:
		return false
	}
}

// take moves up to maxBatch queued records, in order, to batch, waiting
// for one, and returns batch; it returns false once the worker is
// stopped. A stop wins over a queued record.
func (w *worker) take(batch []*kgo.Record) ([]*kgo.Record, bool) {
	for {
		if w.stopped() {
			return batch, false
		}
		w.mu.Lock()
		if n := min(len(w.queue), maxBatch); n > 0 {
			batch = append(batch, w.queue[:n]...)
			clear(w.queue[:n])
			w.queue = w.queue[n:]
			if w.paused && len(w.queue) <= maxQueued/2 {
				w.paused = false
				w.s.cl.ResumeFetchPartitions(map[string][]int32{w.tp.topic: {w.tp.partition}})
			}
			w.mu.Unlock()
			return batch, true
		}
		w.mu.Unlock()
		select {
		case <-w.stop:
			return batch, false
		case <-w.wake:
		}
	}
}

// run hands the partition's records to the Processor in order, and marks
// the handled (or dead-lettered) ones for the next commit: after each
// batch taken from the queue, at least every markEvery, and before it
// returns. A record the Processor abandoned, because the worker was
// stopped during its retries, is left unmarked, and with it everything
// after it: its partition's next owner starts there.
func (w *worker) run() {
	defer close(w.done)
	var batch []*kgo.Record
	for {
		var ok bool
		if batch, ok = w.take(batch[:0]); !ok {
			return
		}
		if !w.handle(batch) {
			return
		}
		clear(batch)
	}
}

// handle runs batch through the Processor and marks what it handled. It
// returns false when the worker was stopped.
func (w *worker) handle(batch []*kgo.Record) bool {
	if w.s.jobs != nil {
		return w.handleConcurrently(batch)
	}
	var last *kgo.Record // handled, not yet marked
	defer func() {
		if last != nil {
			w.s.cl.MarkCommitRecords(last)
		}
	}()
	marked := time.Now()
	for i, r := range batch {
		if i > 0 && w.stopped() {
			return false
		}
		if err := w.s.process(w.stop, r); err != nil {
			return false // adapter.ErrAbandoned: stopped
		}
		last = r
		if now := time.Now(); now.Sub(marked) >= markEvery {
			w.s.cl.MarkCommitRecords(last)
			last, marked = nil, now
		}
	}
	return true
}

// handleConcurrently is handle in concurrent delivery mode: the records of
// batch go to the subscription's pool of MaxInFlight goroutines (shared by
// all its partitions), each as soon as one of them is free, and once they
// all returned, the longest run of handled records from the start of the
// batch is marked for the next commit. A record abandoned because the
// worker was stopped leaves itself and the records after it unmarked,
// handled or not: the partition's next owner starts there, and may
// deliver some of them again.
func (w *worker) handleConcurrently(batch []*kgo.Record) bool {
	b := &poolBatch{abandoned: make([]bool, len(batch))}
	started := 0
	for i, r := range batch {
		if w.stopped() {
			break
		}
		b.wg.Add(1)
		select {
		case w.s.jobs <- poolJob{w: w, rec: r, batch: b, index: i}:
			started = i + 1
			continue
		case <-w.stop:
			b.wg.Done()
		}
		break
	}
	b.wg.Wait()
	handled := 0
	for handled < started && !b.abandoned[handled] {
		handled++
	}
	if handled > 0 {
		w.s.cl.MarkCommitRecords(batch[handled-1])
	}
	return handled == len(batch)
}

// poolBatch tracks one worker's batch in the pool.
type poolBatch struct {
	wg        sync.WaitGroup
	abandoned []bool // written by the pool, read once wg is done
}

// poolJob is one record of a batch, for the pool.
type poolJob struct {
	w     *worker
	rec   *kgo.Record
	batch *poolBatch
	index int
}

// work is one goroutine of the subscription's pool in concurrent delivery
// mode: it runs the records the workers hand it through the Processor
// until the pool stops, which happens once every worker has stopped.
func (s *subscription) work() {
	defer s.poolDone.Done()
	for {
		var j poolJob
		select {
		case j = <-s.jobs:
		case <-s.poolStop:
			return
		}
		if j.w.stopped() || s.process(j.w.stop, j.rec) != nil {
			j.batch.abandoned[j.index] = true // adapter.ErrAbandoned: stopped
		}
		j.batch.wg.Done()
	}
}
