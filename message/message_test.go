package message

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestNewIDIsOrderedAndUnique(t *testing.T) {
	const goroutines, each = 8, 5000
	ids := make([][]string, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for range each {
				ids[g] = append(ids[g], NewID())
			}
		})
	}
	wg.Wait()
	seen := make(map[string]bool, goroutines*each)
	for _, list := range ids {
		for i, id := range list {
			if len(id) != 33 || id[16] != '-' {
				t.Fatalf("id %q is not of the form %%016x-%%016x", id)
			}
			if seen[id] {
				t.Fatalf("id %q handed out twice", id)
			}
			seen[id] = true
			if i > 0 && list[i-1] >= id {
				t.Fatalf("ids out of order within a goroutine: %q then %q", list[i-1], id)
			}
		}
	}
}

func TestIDTime(t *testing.T) {
	before := time.Now().Add(-time.Millisecond)
	got, err := IDTime(NewID())
	if err != nil {
		t.Fatal(err)
	}
	// Bursts of more than 65536 IDs a millisecond borrow from the future,
	// so allow a little slack after now.
	if got.Before(before.Truncate(time.Millisecond)) || got.After(time.Now().Add(time.Second)) {
		t.Fatalf("IDTime = %v, want about %v", got, before)
	}
	for _, bad := range []string{"", "x", strings.Repeat("g", 16) + "-" + strings.Repeat("0", 16)} {
		if _, err := IDTime(bad); err == nil {
			t.Errorf("IDTime(%q) succeeded, want an error", bad)
		}
	}
}

func TestLimitsCheck(t *testing.T) {
	limits := Limits{MaxPayloadBytes: 10, MaxHeaderBytes: 8}
	tests := []struct {
		name string
		msg  *Message
		want error
	}{
		{"ok", &Message{ID: "a", Payload: make([]byte, 10), Headers: Headers{"k": "1234567"}}, nil},
		{"nil", nil, ErrMissingID},
		{"no id", &Message{}, ErrMissingID},
		{"payload", &Message{ID: "a", Payload: make([]byte, 11)}, ErrPayloadTooLarge},
		{"headers", &Message{ID: "a", Headers: Headers{"k": "12345678"}}, ErrHeadersTooLarge},
		{"empty header name", &Message{ID: "a", Headers: Headers{"": "v"}}, ErrInvalidHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := limits.Check(tt.msg)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Check = %v, want %v", err, tt.want)
			}
		})
	}
	if err := (Limits{}).Check(&Message{ID: "a", Payload: make([]byte, DefaultMaxPayloadBytes)}); err != nil {
		t.Fatalf("a payload at the default limit was refused: %v", err)
	}
	if err := (Limits{MaxPayloadBytes: -1}).Validate(); err == nil {
		t.Fatal("negative limits were accepted")
	}
}

func TestValidateChannel(t *testing.T) {
	good := []string{"orders", "net.chrisrichardson.ftgo.Order", "a_b-c.9", strings.Repeat("x", MaxNameLength)}
	for _, name := range good {
		if err := ValidateChannel(name); err != nil {
			t.Errorf("ValidateChannel(%q) = %v, want nil", name, err)
		}
	}
	bad := map[string]error{
		"":                                   ErrEmptyDestination,
		"orders created":                     ErrInvalidChannel,
		"orders>":                            ErrInvalidChannel,
		"orders.*":                           ErrInvalidChannel,
		".orders":                            ErrInvalidChannel,
		"orders.":                            ErrInvalidChannel,
		"a..b":                               ErrInvalidChannel,
		"ordres/x":                           ErrInvalidChannel,
		strings.Repeat("x", MaxNameLength+1): ErrInvalidChannel,
	}
	for name, want := range bad {
		if err := ValidateChannel(name); !errors.Is(err, want) {
			t.Errorf("ValidateChannel(%q) = %v, want %v", name, err, want)
		}
	}
}

func TestBuilderAndClone(t *testing.T) {
	b := NewBuilder([]byte("hi")).WithPartitionKey("k1").WithHeader("x", "1").WithContentType("text/plain")
	m1, m2 := b.Build(), b.Build()
	if m1.ID == m2.ID {
		t.Fatal("two builds share an id")
	}
	m1.SetHeader("x", "changed")
	if m2.Header("x") != "1" {
		t.Fatal("builds share their header map")
	}
	if m2.PartitionKey() != "k1" || m2.Header(HeaderContentType) != "text/plain" {
		t.Fatalf("headers = %v", m2.Headers)
	}
	c := m2.Clone()
	c.Payload[0] = 'H'
	c.SetHeader("x", "2")
	if string(m2.Payload) != "hi" || m2.Header("x") != "1" {
		t.Fatal("Clone shares memory with the original")
	}
	if got := NewBuilder(nil).WithID("fixed").Build().ID; got != "fixed" {
		t.Fatalf("WithID: id = %q", got)
	}
	// Java's DateTimeFormatter.RFC_1123_DATE_TIME, which Eventuate's
	// HttpDateHeaderFormatUtil uses, writes the day without a leading zero.
	if got := FormatDate(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)); got != "Fri, 2 Jan 2026 03:04:05 GMT" {
		t.Fatalf("FormatDate = %q, want Eventuate's RFC 1123 date", got)
	}
}

func BenchmarkNewID(b *testing.B) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_ = NewID()
		}
	})
}
