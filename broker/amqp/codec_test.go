package amqp

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/courier-go/courier/message"
)

func TestEncodeDecode(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	m := message.NewBuilder([]byte("payload")).
		WithPartitionKey("order-1").
		WithContentType("application/json").
		WithHeader(message.HeaderDestination, "elsewhere").
		WithHeader("x", "y").
		Build()
	out, err := encode("orders", m, message.FormatDate(now), now, 128<<10)
	if err != nil {
		t.Fatal(err)
	}
	if out.key != RoutingKey("order-1") {
		t.Errorf("routing key %q, want %q", out.key, RoutingKey("order-1"))
	}
	p := out.pub
	if p.DeliveryMode != amqp091.Persistent || p.MessageId != m.ID || p.ContentType != "application/json" {
		t.Errorf("properties: %+v", p)
	}
	want := map[string]string{
		message.HeaderID:          m.ID,
		message.HeaderDestination: "orders",
		message.HeaderDate:        "Sun, 1 Mar 2026 12:00:00 GMT", // as Eventuate writes it
		message.HeaderPartitionID: "order-1",
		"x":                       "y",
	}
	for k, v := range want {
		if p.Headers[k] != v {
			t.Errorf("header %s = %v, want %q", k, p.Headers[k], v)
		}
	}

	d := amqp091.Delivery{Headers: p.Headers, Body: p.Body, MessageId: p.MessageId}
	got := decode(&d)
	if got.ID != m.ID || string(got.Payload) != "payload" {
		t.Errorf("decoded %+v", got)
	}
	if _, ok := got.Headers[message.HeaderID]; ok {
		t.Error("the ID header stayed in the headers")
	}
	if got.Destination() != "orders" || got.Header("x") != "y" {
		t.Errorf("decoded headers %v", got.Headers)
	}

	// A DATE the sender set is kept.
	m.SetHeader(message.HeaderDate, "then")
	if out, _ := encode("orders", m, "now", now, 0); out.pub.Headers[message.HeaderDate] != "then" {
		t.Errorf("DATE = %v, want the sender's", out.pub.Headers[message.HeaderDate])
	}
}

func TestDecodeForeignMessage(t *testing.T) {
	d := amqp091.Delivery{
		MessageId: "from-elsewhere",
		Headers:   amqp091.Table{"n": int32(7), "b": []byte("bytes"), "nil": nil, "ok": true},
	}
	m := decode(&d)
	if m.ID != "from-elsewhere" {
		t.Errorf("ID = %q, want the message-id property", m.ID)
	}
	for k, v := range map[string]string{"n": "7", "b": "bytes", "nil": "", "ok": "true"} {
		if m.Header(k) != v {
			t.Errorf("header %s = %q, want %q", k, m.Header(k), v)
		}
	}
}

func TestEncodeLimits(t *testing.T) {
	now := time.Now()
	long := message.New(nil)
	long.SetHeader(strings.Repeat("k", 256), "v")
	if _, err := encode("c", long, "", now, 0); !errors.Is(err, message.ErrInvalidHeader) {
		t.Errorf("a 256-byte header name: %v, want ErrInvalidHeader", err)
	}
	// Many small headers fit message.Limits but not one AMQP frame.
	many := message.New(nil)
	for i := range 20000 {
		many.SetHeader(strings.Repeat("h", 3)+string(rune('a'+i%26))+strings.Repeat("x", i%7)+strconv.Itoa(i), "")
	}
	if _, err := encode("c", many, "", now, 128<<10); !errors.Is(err, message.ErrHeadersTooLarge) {
		t.Errorf("headers over the frame size: %v, want ErrHeadersTooLarge", err)
	}
}

func TestRoutingKey(t *testing.T) {
	if a, b := RoutingKey(""), RoutingKey(""); len(a) != 2*routeBits-1 || a == b && RoutingKey("") == a {
		t.Errorf("keyless messages get routing keys %q and %q; want random ones", a, b)
	}
	long := strings.Repeat("k", 300)
	if k := RoutingKey(long); k != RoutingKey(long) {
		t.Errorf("a key maps to different routing keys")
	}
	// The wire format: changing the hash moves keys between shards.
	if k := RoutingKey("order-1"); k != RoutingKey("order-1") || k != wireKey(keyHash("order-1")) {
		t.Errorf("routing key %q", k)
	}
}

func wireKey(h uint64) string {
	words := make([]string, routeBits)
	for i := range words {
		words[i] = strconv.FormatUint(h>>(63-i)&1, 10)
	}
	return strings.Join(words, ".")
}

// matches implements the topic exchange's matching for the patterns of
// shardPattern: fixed words, then "#".
func matches(pattern, key string) bool {
	prefix := strings.TrimSuffix(pattern, "#")
	return strings.HasPrefix(key+".", prefix)
}

func TestShardPatternsPartitionTheKeys(t *testing.T) {
	for n := 1; n <= MaxShards; n *= 2 {
		counts := make([]int, n)
		keys := 10000
		if n > 16 {
			keys = 300
		}
		for k := range keys {
			key := RoutingKey("key-" + strconv.Itoa(k))
			hits := 0
			for i := range n {
				if matches(shardPattern(i, n), key) {
					hits++
					counts[i]++
				}
			}
			if hits != 1 {
				t.Fatalf("%d shards: routing key %q matches %d patterns", n, key, hits)
			}
		}
		if n <= 16 {
			for i, c := range counts {
				if want := keys / n; c < want*8/10 || c > want*12/10 {
					t.Errorf("%d shards: shard %d gets %d of %d keys", n, i, c, keys)
				}
			}
		}
	}
	if p := shardPattern(5, 8); p != "1.0.1.#" {
		t.Errorf("shardPattern(5, 8) = %q", p)
	}
	if p := shardPattern(0, 1); p != "#" {
		t.Errorf("shardPattern(0, 1) = %q", p)
	}
}

func TestNames(t *testing.T) {
	if g := groupName("orders", "billing"); g != "orders:billing" || shardQueueName(g, 3) != "orders:billing:003" {
		t.Errorf("names %q, %q", g, shardQueueName(g, 3))
	}
	a := groupName(strings.Repeat("c", 249), strings.Repeat("s", 249))
	b := groupName(strings.Repeat("c", 249), strings.Repeat("s", 248)+"t")
	if a == b {
		t.Error("long names collide")
	}
	for _, n := range []string{shardQueueName(a, 999), presenceQueueName(a)} {
		if len(n) > maxName {
			t.Errorf("%d-byte name %q", len(n), n)
		}
	}
}
