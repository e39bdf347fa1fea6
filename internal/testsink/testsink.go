// Package testsink is a broker stand-in for tests that run relays as child
// processes: the child publishes with Producer, an HTTP client, to a Sink
// that the parent test serves. A POST the Sink answered with 200 is a
// confirmed publish. The Sink records which process published each batch,
// detects two processes publishing at once, and can kill the publishing
// process while it waits for a confirmation.
package testsink

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/courier-go/courier/message"
)

type wireMessage struct {
	ID      string            `json:"id"`
	Headers map[string]string `json:"headers"`
	Payload []byte            `json:"payload"`
}

type wireBatch struct {
	Channel  string        `json:"channel"`
	Messages []wireMessage `json:"messages"`
}

// Producer is a broker.Producer that posts to a Sink at URL.
type Producer struct{ URL string }

// Send posts msgs and returns once the Sink confirmed them.
func (p Producer) Send(ctx context.Context, channel string, msgs ...*message.Message) error {
	batch := wireBatch{Channel: channel}
	for _, m := range msgs {
		batch.Messages = append(batch.Messages, wireMessage{ID: m.ID, Headers: m.Headers, Payload: m.Payload})
	}
	body, err := json.Marshal(batch)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("X-Relay-Pid", strconv.Itoa(os.Getpid()))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("sink answered %s", resp.Status)
	}
	return nil
}

// Batch records one confirmed publish.
type Batch struct {
	Pid int
	At  time.Time
}

// Sink records confirmed publishes in arrival order.
type Sink struct {
	// Delay is how long the Sink takes to confirm a batch.
	Delay time.Duration
	// Refuse, while it returns true, makes the Sink answer 503: a broker
	// outage.
	Refuse func() bool

	mu       sync.Mutex
	msgs     []*message.Message
	ids      map[string]int
	batches  []Batch
	inflight map[int]bool
	overlaps int
	killAt   func(pid int)
	killAtN  int
}

// New returns an empty Sink.
func New(delay time.Duration) *Sink {
	return &Sink{Delay: delay, ids: map[string]int{}, inflight: map[int]bool{}}
}

// KillAt arranges for kill to be called, once, with the pid of the process
// whose publish brings the Sink to n distinct messages, before that publish
// is confirmed.
func (s *Sink) KillAt(n int, kill func(pid int)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.killAtN, s.killAt = n, kill
}

// ServeHTTP receives one batch.
func (s *Sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var batch wireBatch
	if err := json.NewDecoder(r.Body).Decode(&batch); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if s.Refuse != nil && s.Refuse() {
		http.Error(w, "broker unavailable", http.StatusServiceUnavailable)
		return
	}
	pid, _ := strconv.Atoi(r.Header.Get("X-Relay-Pid"))
	s.mu.Lock()
	for other := range s.inflight {
		if other != pid {
			s.overlaps++ // two relays publishing at once
		}
	}
	s.inflight[pid] = true
	s.mu.Unlock()
	time.Sleep(s.Delay)
	s.mu.Lock()
	delete(s.inflight, pid)
	s.batches = append(s.batches, Batch{Pid: pid, At: time.Now()})
	for _, m := range batch.Messages {
		s.msgs = append(s.msgs, &message.Message{ID: m.ID, Headers: m.Headers, Payload: m.Payload})
		s.ids[m.ID]++
	}
	kill := s.killAt
	if kill != nil && len(s.ids) >= s.killAtN {
		s.killAt = nil
	} else {
		kill = nil
	}
	s.mu.Unlock()
	if kill != nil {
		kill(pid) // the relay dies waiting for this confirmation: mid-batch
	}
}

// Unique is the number of distinct messages received.
func (s *Sink) Unique() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ids)
}

// Has reports whether the message with id arrived.
func (s *Sink) Has(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ids[id] > 0
}

// Messages returns every message received, duplicates included, in order.
func (s *Sink) Messages() []*message.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*message.Message(nil), s.msgs...)
}

// IDs returns the distinct message IDs received.
func (s *Sink) IDs() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.ids))
	for k, v := range s.ids {
		out[k] = v
	}
	return out
}

// Batches returns the confirmed publishes in order.
func (s *Sink) Batches() []Batch {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Batch(nil), s.batches...)
}

// Overlaps counts the times two processes published at once.
func (s *Sink) Overlaps() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.overlaps
}
