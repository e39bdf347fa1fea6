package apispec

import (
	"fmt"
	"net/http"
	"reflect"
	"testing"
	"time"
)

// The benchmarks of BENCHMARKS.md: generating the documents of a service
// with 200 messaging operations and 200 REST operations, and comparing
// two versions of each.
//
//	go test -run '^$' -bench . -benchmem ./apispec

type registry []struct {
	channel, name string
	payload       reflect.Type
}

func (r registry) HandledTypes(yield func(channel, typeName string, payload reflect.Type)) {
	for _, e := range r {
		yield(e.channel, e.name, e.payload)
	}
}

// largeSpec declares 200 messaging operations (100 events received, 50
// commands handled with replies, 50 commands sent) and 200 REST
// operations; v2 changes a few of them.
func largeSpec(v2 bool) *Spec {
	version := "1.0.0"
	if v2 {
		version = "2.0.0"
	}
	s := New("large-service", version)
	payloads := []reflect.Type{reflect.TypeFor[TicketCreated](), reflect.TypeFor[CreateTicket](), reflect.TypeFor[Ticket](), reflect.TypeFor[TicketLine]()}
	var events, commands registry
	for i := range 100 {
		events = append(events, struct {
			channel, name string
			payload       reflect.Type
		}{fmt.Sprintf("Aggregate%d", i%10), fmt.Sprintf("bench.Event%d", i), payloads[i%len(payloads)]})
	}
	for i := range 50 {
		commands = append(commands, struct {
			channel, name string
			payload       reflect.Type
		}{fmt.Sprintf("service%d", i%5), fmt.Sprintf("bench.Command%d", i), payloads[(i+1)%len(payloads)]})
	}
	if v2 {
		events = events[1:] // an operation removed
		events[10].payload = reflect.TypeFor[TicketAccepted]()
	}
	s.Receives(Event, "", events)
	s.Receives(Command, "", commands, Replies[TicketAccepted](), Fails[TicketRefused]())
	for i := range 50 {
		Sends[NotifyCourier](s, fmt.Sprintf("courier%d", i))
	}
	for i := range 100 {
		Operation[CreateTicket, Ticket](s, fmt.Sprintf("POST /r%d/tickets", i), Summary("Create"), Status(http.StatusCreated), Problems(400, 409))
		if v2 && i == 7 {
			Operation[NoBody, TicketAccepted](s, fmt.Sprintf("GET /r%d/tickets/{id}", i), Summary("Get"), Problems(404))
			continue
		}
		Operation[NoBody, Ticket](s, fmt.Sprintf("GET /r%d/tickets/{id}", i), Summary("Get"), Query("expand", "related"), Problems(404))
	}
	return s
}

func TestLargeSpec(t *testing.T) {
	async, err := largeSpec(false).AsyncAPI()
	if err != nil {
		t.Fatal(err)
	}
	if n := len(async.async.operations); n != 200 {
		t.Errorf("%d messaging operations", n)
	}
	rest, err := largeSpec(false).OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, item := range rest.OpenAPI().Paths.Map() {
		n += len(item.Operations())
	}
	if n != 200 {
		t.Errorf("%d REST operations", n)
	}
}

// reportCPU reports the CPU time per operation since start.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N)/1e6, "cpu-ms/op")
}

func BenchmarkGenerate(b *testing.B) {
	s := largeSpec(false)
	b.ResetTimer()
	defer reportCPU(b, cpuTime())
	for range b.N {
		if _, err := s.AsyncAPI(); err != nil {
			b.Fatal(err)
		}
		if _, err := s.OpenAPI(); err != nil {
			b.Fatal(err)
		}
	}
}

func benchmarkDiff(b *testing.B, build func(*Spec) (*Document, error)) {
	old, err := build(largeSpec(false))
	if err != nil {
		b.Fatal(err)
	}
	new, err := build(largeSpec(true))
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	defer reportCPU(b, cpuTime())
	for range b.N {
		r, err := Diff(old, new)
		if err != nil {
			b.Fatal(err)
		}
		if !r.Breaking() {
			b.Fatal("no breaking change found")
		}
	}
}

func BenchmarkDiffAsyncAPI(b *testing.B) { benchmarkDiff(b, (*Spec).AsyncAPI) }

func BenchmarkDiffOpenAPI(b *testing.B) { benchmarkDiff(b, (*Spec).OpenAPI) }

// benchmarkParseDiff reads two documents from their text, as courier api
// diff does, and compares them.
func benchmarkParseDiff(b *testing.B, build func(*Spec) (*Document, error)) {
	old, err := build(largeSpec(false))
	if err != nil {
		b.Fatal(err)
	}
	new, err := build(largeSpec(true))
	if err != nil {
		b.Fatal(err)
	}
	oldText, newText := old.JSON(), new.JSON()
	b.ResetTimer()
	defer reportCPU(b, cpuTime())
	for range b.N {
		o, err := Parse(old.Name(), oldText)
		if err != nil {
			b.Fatal(err)
		}
		n, err := Parse(new.Name(), newText)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Diff(o, n); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseDiffAsyncAPI(b *testing.B) { benchmarkParseDiff(b, (*Spec).AsyncAPI) }

func BenchmarkParseDiffOpenAPI(b *testing.B) { benchmarkParseDiff(b, (*Spec).OpenAPI) }
