package console

import (
	"cmp"
	"slices"
	"strings"
	"time"
)

// State is what the console shows, as of its last refresh. /api/state
// serves it as JSON; rates are per second over the last two scrapes, null
// until there are two.
type State struct {
	Updated  time.Time `json:"updated"`
	Registry string    `json:"registry,omitempty"`
	// RegistryError says why the registry could not be read, if it could
	// not; Services then holds what it last said.
	RegistryError string        `json:"registry_error,omitempty"`
	Services      []Service     `json:"services"`
	Endpoints     []Endpoint    `json:"endpoints"`
	Breakers      []Breaker     `json:"breakers"`
	Relays        []Relay       `json:"relays"`
	Consumers     []Consumer    `json:"consumers"`
	DeadLetters   []DeadLetters `json:"dead_letters"`
}

// Service is a registered service and its instances.
type Service struct {
	Name      string     `json:"name"`
	Instances []Instance `json:"instances"`
}

// Instance is a registered instance of a service.
type Instance struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	Version string `json:"version,omitempty"`
	// Health is "healthy" or "unhealthy", as the registry says.
	Health string `json:"health"`
	// Metrics is the endpoint its registration names, if any.
	Metrics string `json:"metrics,omitempty"`
}

// Endpoint is a metrics endpoint the console scrapes: named on the command
// line, or found in an instance's registration.
type Endpoint struct {
	Name string `json:"name"`
	URL  string `json:"url"`
	// Up reports whether the last scrape succeeded; Error says why not.
	Up    bool   `json:"up"`
	Error string `json:"error,omitempty"`
}

// Breaker is a circuit breaker of a resilience chain in one process.
type Breaker struct {
	Endpoint string `json:"endpoint"`
	Chain    string `json:"chain"`
	Key      string `json:"key"`
	// State is closed, open or half-open.
	State string `json:"state"`
	// Rejections counts the chain's calls refused without a network call
	// (open breaker, full bulkhead); RejectionRate is per second.
	Rejections    float64  `json:"rejections"`
	RejectionRate *float64 `json:"rejection_rate"`
}

// Relay is an outbox relay in one process.
type Relay struct {
	Endpoint string `json:"endpoint"`
	Name     string `json:"name"`
	Source   string `json:"source"`
	// Role is leader (it holds the outbox's lease) or standby.
	Role           string   `json:"role"`
	Published      float64  `json:"published"`
	PublishRate    *float64 `json:"publish_rate"`
	DeadLettered   float64  `json:"dead_lettered"`
	Errors         float64  `json:"errors"`
	PublishFailing bool     `json:"publish_failing"`
	// LagSeconds is the age of the oldest row waiting (poll); LagBytes
	// the log not yet confirmed (log tailing); nil when not reported.
	LagSeconds *float64 `json:"lag_seconds"`
	LagBytes   *float64 `json:"lag_bytes"`
}

// Consumer is a subscriber id's handling of one channel in one process.
type Consumer struct {
	Endpoint     string   `json:"endpoint"`
	SubscriberID string   `json:"subscriber_id"`
	Channel      string   `json:"channel"`
	Handled      float64  `json:"handled"`
	HandledRate  *float64 `json:"handled_rate"`
	Failed       float64  `json:"failed"`
	FailedRate   *float64 `json:"failed_rate"`
	DeadLettered float64  `json:"dead_lettered"`
	Discarded    float64  `json:"discarded"`
}

// DeadLetters are the messages a subscriber id gave up on, over every
// process and channel, and how to replay them.
type DeadLetters struct {
	SubscriberID string   `json:"subscriber_id"`
	Channels     []string `json:"channels"`
	Count        float64  `json:"count"`
	// Replay is the command that sends them back to the subscriber;
	// ReplayURL, when set, a page that does it.
	Replay    string `json:"replay"`
	ReplayURL string `json:"replay_url,omitempty"`
}

// breakerStates are the values of courier_resilience_breaker_state.
var breakerStates = map[float64]string{0: "closed", 1: "open", 2: "half-open"}

// target is an endpoint with its last two scrapes.
type target struct {
	Endpoint
	prev, cur *scrape
}

// summarize builds the tables from the targets' scrapes. replay gives
// each subscriber id's replay command and link.
func summarize(targets []*target, replay func(subscriberID string) (command, url string)) (breakers []Breaker, relays []Relay,
	consumers []Consumer, dead []DeadLetters) {
	deadBy := map[string]*DeadLetters{}
	for _, t := range targets {
		if t.cur == nil || !t.Up {
			continue
		}
		breakers = append(breakers, t.breakers()...)
		relays = append(relays, t.relays()...)
		cs := t.consumers()
		consumers = append(consumers, cs...)
		for _, c := range cs {
			if c.DeadLettered == 0 {
				continue
			}
			d := deadBy[c.SubscriberID]
			if d == nil {
				d = &DeadLetters{SubscriberID: c.SubscriberID}
				deadBy[c.SubscriberID] = d
			}
			d.Count += c.DeadLettered
			if !slices.Contains(d.Channels, c.Channel) {
				d.Channels = append(d.Channels, c.Channel)
			}
		}
	}
	for _, d := range deadBy {
		slices.Sort(d.Channels)
		d.Replay, d.ReplayURL = replay(d.SubscriberID)
		dead = append(dead, *d)
	}
	slices.SortFunc(dead, func(a, b DeadLetters) int { return strings.Compare(a.SubscriberID, b.SubscriberID) })
	return breakers, relays, consumers, dead
}

// group is the sum of the samples of a metric that have the same values of
// some labels, and the sum of their rates.
type group struct {
	labels []string
	total  float64
	rate   *float64
}

// sum returns the samples of the metric name in the target's last scrape
// grouped by the values of the labels by (in that order).
func (t *target) sum(name string, by ...string) map[string]*group {
	out := map[string]*group{}
	for _, s := range t.cur.samples {
		if s.name != name {
			continue
		}
		vals := make([]string, len(by))
		for i, l := range by {
			vals[i] = s.labels[l]
		}
		k := strings.Join(vals, "\xff")
		g := out[k]
		if g == nil {
			g = &group{labels: vals}
			out[k] = g
		}
		g.total += s.value
		if r := rate(t.prev, t.cur, s.key()); r != nil {
			g.rate = addRate(g.rate, *r)
		}
	}
	return out
}

// noRate is the rate of a counter the target does not report: 0 once
// there are two scrapes to compare, unknown before.
func (t *target) noRate() *float64 {
	if rate(t.prev, t.cur, "") == nil {
		return nil
	}
	zero := 0.0
	return &zero
}

func addRate(sum *float64, r float64) *float64 {
	if sum == nil {
		return &r
	}
	v := *sum + r
	return &v
}

func sortedGroups(m map[string]*group) []*group {
	gs := make([]*group, 0, len(m))
	for _, g := range m {
		gs = append(gs, g)
	}
	slices.SortFunc(gs, func(a, b *group) int { return slices.Compare(a.labels, b.labels) })
	return gs
}

// value is the sum of the metric's samples whose labels have the values
// that pairs give (name, value, name, value...), and whether there is one.
func (t *target) value(name string, pairs ...string) (float64, bool) {
	var names, vals []string
	for i := 0; i+1 < len(pairs); i += 2 {
		names, vals = append(names, pairs[i]), append(vals, pairs[i+1])
	}
	v, ok := t.sum(name, names...)[strings.Join(vals, "\xff")]
	if !ok {
		return 0, false
	}
	return v.total, true
}

func (t *target) breakers() []Breaker {
	rejections := t.sum("courier_resilience_rejections_total", "chain")
	var out []Breaker
	for _, g := range sortedGroups(t.sum("courier_resilience_breaker_state", "chain", "key")) {
		b := Breaker{Endpoint: t.Name, Chain: g.labels[0], Key: g.labels[1], State: cmp.Or(breakerStates[g.total], "unknown")}
		b.RejectionRate = t.noRate()
		if r := rejections[g.labels[0]]; r != nil {
			b.Rejections, b.RejectionRate = r.total, r.rate
		}
		out = append(out, b)
	}
	return out
}

func (t *target) relays() []Relay {
	published := t.sum("courier_relay_published_total", "relay", "source")
	var out []Relay
	for _, g := range sortedGroups(t.sum("courier_relay_leader", "relay", "source")) {
		name, source := g.labels[0], g.labels[1]
		r := Relay{Endpoint: t.Name, Name: name, Source: source, Role: "standby", PublishRate: t.noRate()}
		if g.total == 1 {
			r.Role = "leader"
		}
		if p := published[name+"\xff"+source]; p != nil {
			r.Published, r.PublishRate = p.total, p.rate
		}
		r.DeadLettered, _ = t.value("courier_relay_dead_lettered_total", "relay", name, "source", source)
		r.Errors, _ = t.value("courier_relay_errors_total", "relay", name, "source", source)
		failing, _ := t.value("courier_relay_publish_failing", "relay", name, "source", source)
		r.PublishFailing = failing == 1
		if v, ok := t.value("courier_relay_lag_seconds", "relay", name, "source", source); ok {
			r.LagSeconds = &v
		}
		if v, ok := t.value("courier_relay_lag_bytes", "relay", name, "source", source); ok {
			r.LagBytes = &v
		}
		out = append(out, r)
	}
	return out
}

func (t *target) consumers() []Consumer {
	by := []string{"subscriber_id", "channel"}
	handled := t.sum("courier_consumer_handled_total", by...)
	failed := t.sum("courier_consumer_failed_total", by...)
	dead := t.sum("courier_consumer_dead_lettered_total", by...)
	discarded := t.sum("courier_consumer_discarded_total", by...)
	keys := map[string][]string{}
	for _, m := range []map[string]*group{handled, failed, dead, discarded} {
		for k, g := range m {
			keys[k] = g.labels
		}
	}
	var out []Consumer
	for k, labels := range keys {
		c := Consumer{Endpoint: t.Name, SubscriberID: labels[0], Channel: labels[1], HandledRate: t.noRate(), FailedRate: t.noRate()}
		if g := handled[k]; g != nil {
			c.Handled, c.HandledRate = g.total, g.rate
		}
		if g := failed[k]; g != nil {
			c.Failed, c.FailedRate = g.total, g.rate
		}
		if g := dead[k]; g != nil {
			c.DeadLettered = g.total
		}
		if g := discarded[k]; g != nil {
			c.Discarded = g.total
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b Consumer) int {
		return cmp.Or(strings.Compare(a.SubscriberID, b.SubscriberID), strings.Compare(a.Channel, b.Channel),
			strings.Compare(a.Endpoint, b.Endpoint))
	})
	return out
}
