package activemq

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/courier-go/courier/broker/activemq/internal/stomp"
)

// ActiveMQ gives each message group to one consumer of a queue and keeps
// it there until that consumer leaves: an instance that joins gets only
// the groups nobody owned yet. So that instances share the load, the
// instances of a subscriber id announce themselves, with the number of
// groups they own, on a topic of their own every rebalance interval, and
// an instance that owns more than its share while another owns less hands
// its groups over: it disconnects, after its handlers in flight finished,
// and connects again, and ActiveMQ gives the groups to the consumers that
// their next messages find, in turn. Order and exclusivity come from
// ActiveMQ, never from this balancing.

// presenceTopic is where the instances of subscriberID on channel
// announce themselves.
func presenceTopic(channel, subscriberID string) string {
	return "/topic/courier.presence." + queueName(channel, subscriberID)
}

// announced records another instance's announcement on channel i.
func (s *subscription) announced(i int, f *stomp.Frame) {
	id := f.Value("instance")
	if id == "" || id == s.id {
		return
	}
	owned, _ := strconv.Atoi(f.Value("owned"))
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.Value("leaving") == "true" {
		delete(s.peers[i], id)
		return
	}
	s.peers[i][id] = peer{owned: owned, seen: time.Now()}
}

// balance announces this instance on every channel and asks for a
// handover when it owns more than its share, until the session ends.
func (sess *session) balance() {
	s := sess.s
	interval := s.b.cfg.rebalanceInterval
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-sess.stop:
			sess.announce(true)
			return
		case now := <-t.C:
			over := sess.announce(false)
			// A new session first learns its groups and its peers.
			if over && now.Sub(sess.began) > 4*interval {
				select {
				case sess.handover <- struct{}{}:
				default:
				}
				return
			}
		}
	}
}

// announce sends this instance's presence on every channel and reports
// whether it owns more than its share of some channel's groups while
// another instance owns less.
func (sess *session) announce(leaving bool) (over bool) {
	s := sess.s
	now := time.Now()
	for i, channel := range s.cfg.Channels {
		sess.mu.Lock()
		own := len(sess.owned[i])
		sess.mu.Unlock()
		f := &stomp.Frame{Command: "SEND", Body: nil}
		f.Add("destination", presenceTopic(channel, s.cfg.SubscriberID))
		f.Add("persistent", "false")
		f.Add("instance", s.id)
		f.Add("owned", strconv.Itoa(own))
		if leaving {
			f.Add("leaving", "true")
		}
		f.Add("expires", strconv.FormatInt(now.Add(3*s.b.cfg.rebalanceInterval).UnixMilli(), 10))
		if err := sess.c.Send(f); err != nil {
			return false
		}
		if leaving {
			continue
		}
		total, instances, least := own, 1, math.MaxInt
		s.mu.Lock()
		for id, p := range s.peers[i] {
			if now.Sub(p.seen) > 3*s.b.cfg.rebalanceInterval {
				delete(s.peers[i], id)
				continue
			}
			total += p.owned
			instances++
			least = min(least, p.owned)
		}
		s.mu.Unlock()
		share := int(math.Ceil(float64(total) / float64(instances)))
		if instances > 1 && own > share+1 && least < share-1 {
			s.log.Debug("courier: handing message groups over", "channel", channel, "owned", own, "share", share, "instances", instances,
				"peers_least", least, "instance", strings.Clone(s.id))
			over = true
		}
	}
	return over
}
