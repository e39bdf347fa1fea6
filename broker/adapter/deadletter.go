package adapter

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/message"
)

// Budgets of the bounded dead-letter envelope (with
// broker.BoundedPayloadBytes of payload). They fit the default limits of
// every supported broker with room for the dead-letter headers: 16 KiB of
// headers, well under message.DefaultMaxHeaderBytes and an AMQP frame.
const (
	// boundedHeaderBytes bounds the original headers a bounded envelope
	// keeps, names and values together.
	boundedHeaderBytes = 16 << 10
	// maxHeaderNameBytes is the longest header name kept: AMQP 0-9-1
	// field-table names are short strings of at most 255 bytes.
	maxHeaderNameBytes = 255
	// maxHeaderValueBytes is the longest header value a bounded envelope
	// keeps; a longer one is dropped rather than cut, since a cut value
	// would read as a valid one.
	maxHeaderValueBytes = 4 << 10
	// maxListedHeaders bounds how many dropped header names the reason
	// lists.
	maxListedHeaders = 8
)

// sendToDeadLetter sends msg to the dead-letter channel with the reason it
// was given up on, and returns nil once the broker has it, or once msg is
// discarded; it returns ErrAbandoned if the subscription stops first.
//
// A send the broker refuses as it is (an error whose Permanent method
// reports true, such as message.ErrHeadersTooLarge) is never retried as it
// is: the dead letter goes again in a bounded envelope, then in a minimal
// one, and if the broker refuses that too the message is acknowledged and
// counted as discarded (Observer.Discarded), with an ERROR log. Any other
// failure, such as an unreachable broker, is retried with the
// subscription's backoff for as long as the subscription runs: the shard
// waits, as it does for the broker itself, and nothing is acknowledged.
// The result says which of these happened: broker.ResultDeadLettered,
// broker.ResultDiscarded or broker.ResultAbandoned.
func (p *Processor) sendToDeadLetter(ctx context.Context, stop <-chan struct{}, info broker.DeliveryInfo, msg *message.Message, cause error) (string, error) {
	logAttrs := func(attrs ...slog.Attr) []slog.Attr {
		return append([]slog.Attr{slog.String("subscriber", p.cfg.SubscriberID), slog.String("channel", info.Channel),
			slog.String("message_id", msg.ID), slog.String("dead_letter_channel", p.cfg.DeadLetterChannel)}, attrs...)
	}
	p.cfg.Logger.LogAttrs(ctx, slog.LevelError, "courier: handler gave up; message dead-lettered",
		logAttrs(slog.Int("attempts", info.Attempt), slog.Any("error", cause))...)

	envelope := broker.EnvelopeOriginal
	dead := newDeadLetter(msg, envelope, p.cfg.SubscriberID, info, cause, nil)
	for failures := 1; ; failures++ {
		err := p.deadLetter.Send(ctx, p.cfg.DeadLetterChannel, dead)
		if err == nil {
			p.cfg.Observer.DeadLettered(ctx, info, msg.ID, envelope)
			return broker.ResultDeadLettered, nil
		}
		if broker.IsPermanent(err) {
			next := nextEnvelope(envelope)
			if next == "" {
				p.cfg.Logger.LogAttrs(ctx, slog.LevelError, "courier: the broker refused even the minimal dead-letter envelope; message acknowledged and discarded",
					logAttrs(slog.Any("error", err), slog.Any("handler_error", cause))...)
				p.cfg.Observer.Discarded(ctx, info, msg.ID, err)
				return broker.ResultDiscarded, nil
			}
			p.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "courier: the broker refused the dead letter; sending it in a smaller envelope",
				logAttrs(slog.String("envelope", next), slog.Any("error", err))...)
			envelope = next
			dead = newDeadLetter(msg, envelope, p.cfg.SubscriberID, info, cause, err)
			continue
		}
		wait := p.cfg.Backoff(failures)
		p.cfg.Logger.LogAttrs(ctx, slog.LevelError, "courier: dead-letter send failed; will retry",
			logAttrs(slog.Int("failures", failures), slog.Duration("backoff", wait), slog.Any("error", err))...)
		if !sleep(ctx, stop, wait) {
			return broker.ResultAbandoned, ErrAbandoned
		}
	}
}

func nextEnvelope(e string) string {
	switch e {
	case broker.EnvelopeOriginal:
		return broker.EnvelopeBounded
	case broker.EnvelopeBounded:
		return broker.EnvelopeMinimal
	}
	return ""
}

// newDeadLetter builds the dead letter of msg in the given envelope;
// refused is the broker's refusal of the previous envelope, if any.
func newDeadLetter(msg *message.Message, envelope, subscriberID string, info broker.DeliveryInfo, cause, refused error) *message.Message {
	reason := cause.Error()
	dead := &message.Message{ID: msg.ID}
	switch envelope {
	case broker.EnvelopeOriginal:
		dead.Headers, dead.Payload = msg.Headers.Clone(), msg.Payload
	default:
		var dropped []string
		budget := boundedHeaderBytes
		if envelope == broker.EnvelopeMinimal {
			budget = 0
		}
		dead.Headers, dropped = boundedHeaders(msg.Headers, budget)
		keep := broker.BoundedPayloadBytes
		if envelope == broker.EnvelopeMinimal {
			keep = 0
		}
		var note strings.Builder
		fmt.Fprintf(&note, "%s; sent in a %s dead-letter envelope because the broker refused the previous one (%v)", reason, envelope, refused)
		if len(dropped) > 0 {
			note.WriteString("; dropped headers: ")
			note.WriteString(listNames(dropped))
		}
		if len(msg.Payload) > keep {
			sum := sha256.Sum256(msg.Payload)
			dead.Headers[message.HeaderDeadLetterPayloadBytes] = strconv.Itoa(len(msg.Payload))
			dead.Headers[message.HeaderDeadLetterPayloadSHA256] = hex.EncodeToString(sum[:])
			fmt.Fprintf(&note, "; payload cut from %d to %d bytes", len(msg.Payload), keep)
			dead.Payload = msg.Payload[:keep]
		} else {
			dead.Payload = msg.Payload
		}
		dead.Headers[message.HeaderDeadLetterEnvelope] = envelope
		reason = note.String()
	}
	if dead.Headers == nil {
		dead.Headers = make(message.Headers, 6)
	}
	dead.Headers[message.HeaderDeadLetterReason] = boundText(reason, maxReasonBytes)
	dead.Headers[message.HeaderDeadLetterChannel] = info.Channel
	dead.Headers[message.HeaderDeadLetterSubscriberID] = subscriberID
	dead.Headers[message.HeaderDeadLetterAttempts] = strconv.Itoa(info.Attempt)
	dead.Headers[message.HeaderDeadLetterTime] = time.Now().UTC().Format(time.RFC3339Nano)
	return dead
}

// boundedHeaders returns the headers of h that every broker carries, up to
// budget bytes of names and values, and the names of the others, sorted.
// The message's ID, its partition key and its content type come first and
// are kept whatever the budget, if they are well formed; the rest are taken
// in name order. The dead-letter headers of an earlier dead-lettering are
// dropped without being listed, since new ones replace them.
func boundedHeaders(h message.Headers, budget int) (message.Headers, []string) {
	kept := make(message.Headers, 8)
	var dropped []string
	first := []string{message.HeaderID, message.HeaderPartitionID, message.HeaderContentType}
	for _, k := range first {
		if v, ok := h[k]; ok {
			if carriable(k, v) {
				kept[k] = v
			} else {
				dropped = append(dropped, k)
			}
		}
	}
	rest := make([]string, 0, len(h))
	for k := range h {
		if !slices.Contains(first, k) && !strings.HasPrefix(k, "dead_letter_") {
			rest = append(rest, k)
		}
	}
	slices.Sort(rest)
	for _, k := range rest {
		v := h[k]
		if !carriable(k, v) || len(k)+len(v) > budget {
			dropped = append(dropped, k)
			continue
		}
		kept[k] = v
		budget -= len(k) + len(v)
	}
	slices.Sort(dropped)
	return kept, dropped
}

// carriable reports whether a header can travel on every supported broker:
// a name of 1 to 255 bytes of printable UTF-8, a value of valid UTF-8
// without control characters other than tab, within maxHeaderValueBytes.
func carriable(k, v string) bool {
	if k == "" || len(k) > maxHeaderNameBytes || len(v) > maxHeaderValueBytes || !utf8.ValidString(k) || !utf8.ValidString(v) {
		return false
	}
	for _, r := range k {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	for _, r := range v {
		if (r < 0x20 && r != '\t') || r == 0x7f {
			return false
		}
	}
	return true
}

// listNames quotes the first few names, each shortened, for a reason:
// bytes that are not UTF-8 show escaped, as \xff.
func listNames(names []string) string {
	var b strings.Builder
	for i, n := range names {
		if i == maxListedHeaders {
			fmt.Fprintf(&b, " and %d more", len(names)-i)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		if len(n) > 64 {
			n = n[:64] // Quote escapes a rune cut in two
		}
		b.WriteString(strconv.Quote(n)) // valid UTF-8, whatever n is
	}
	return b.String()
}

// boundText returns s as valid UTF-8 (each invalid byte sequence replaced
// with U+FFFD) without control characters other than tab (each replaced
// with a space: a multi-line error becomes one line), of at most n bytes,
// cut at a rune boundary: a header value every broker carries.
func boundText(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if (r < 0x20 && r != '\t') || r == 0x7f {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
