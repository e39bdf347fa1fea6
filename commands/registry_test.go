package commands_test

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/courier-go/courier/apispec"
	"github.com/courier-go/courier/commands"
)

// Both dispatchers list their handlers for apispec.
var (
	_ apispec.HandlerRegistry = (*commands.Dispatcher)(nil)
	_ apispec.HandlerRegistry = (*commands.ReplyDispatcher)(nil)
)

type handled struct {
	channel, typeName string
	payload           reflect.Type
}

func collect(r apispec.HandlerRegistry) []handled {
	var got []handled
	r.HandledTypes(func(channel, typeName string, payload reflect.Type) {
		got = append(got, handled{channel, typeName, payload})
	})
	return got
}

type Shutdown struct{}

func (Shutdown) CommandType() string { return "net.example.Shutdown" }

func TestDispatcherHandledTypes(t *testing.T) {
	d := commands.NewDispatcher(nil)
	commands.Handle(d, func(context.Context, commands.Command[Shutdown]) (commands.Reply, error) {
		return commands.Success(nil), nil
	})
	commands.Handle(d, func(context.Context, commands.Command[*Ping]) (commands.Reply, error) {
		return commands.Success(nil), nil
	})
	want := []handled{
		{"", "commands_test.Ping", reflect.TypeFor[*Ping]()},
		{"", "net.example.Shutdown", reflect.TypeFor[Shutdown]()},
	}
	if got := collect(d); !reflect.DeepEqual(got, want) {
		t.Errorf("HandledTypes yielded %v, want %v", got, want)
	}
	// A yield that registers another handler does not deadlock.
	d.HandledTypes(func(string, string, reflect.Type) {
		commands.Handle(d, func(context.Context, commands.Command[Pong]) (commands.Reply, error) {
			return commands.Success(nil), nil
		})
	})
}

func TestReplyDispatcherHandledTypes(t *testing.T) {
	d := commands.NewReplyDispatcher()
	commands.OnReply(d, func(context.Context, commands.ReplyMessage, Pong) error { return nil })
	commands.OnReply(d, func(context.Context, commands.ReplyMessage, commands.HandlerFailure) error { return nil })
	want := []handled{
		{"", "commands_test.Pong", reflect.TypeFor[Pong]()},
		{"", "courier.HandlerFailure", reflect.TypeFor[commands.HandlerFailure]()},
	}
	if got := collect(d); !reflect.DeepEqual(got, want) {
		t.Errorf("HandledTypes yielded %v, want %v", got, want)
	}
}

// A service's document lists what its dispatchers handle: the commands on
// the channel it subscribes the dispatcher to, with their replies, and the
// replies it reads on its reply channel.
func TestSpecReceivesTheDispatchersMessages(t *testing.T) {
	d := commands.NewDispatcher(nil)
	commands.Handle(d, func(context.Context, commands.Command[Ping]) (commands.Reply, error) {
		return commands.Success(Pong{}), nil
	})
	rd := commands.NewReplyDispatcher()
	commands.OnReply(rd, func(context.Context, commands.ReplyMessage, Pong) error { return nil })
	s := apispec.New("ping-service", "1.0.0")
	s.Receives(apispec.Command, "pings", d, apispec.Replies[Pong]())
	s.Receives(apispec.Reply, "ping-service.replies", rd)
	doc, err := s.AsyncAPI()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"address": "pings"`, `"address": "ping-service.replies"`, `"name": "commands_test.Ping"`, `"name": "commands_test.Pong"`, `"reply"`} {
		if !strings.Contains(string(doc.JSON()), want) {
			t.Errorf("the document lacks %s:\n%s", want, doc.JSON())
		}
	}
}
