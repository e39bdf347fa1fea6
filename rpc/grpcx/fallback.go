package grpcx

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"google.golang.org/protobuf/proto"
)

// StaticReplies is a fallback (for WithFallback) answering a failed call to
// one of the methods with a copy of its reply; calls to other methods keep
// their error.
func StaticReplies(replies map[string]proto.Message) func(ctx context.Context, method string, req, reply any, err error) error {
	return func(_ context.Context, method string, _, reply any, err error) error {
		m, ok := replies[method]
		if !ok {
			return err
		}
		return fill(reply, m, err)
	}
}

// LastGood remembers the last successful reply of each method, to answer
// failed calls with it (see WithLastGoodFallback). Each success is cloned,
// so use it for small replies that are worth serving stale.
type LastGood struct {
	last sync.Map // method -> proto.Message
}

// WithLastGoodFallback answers a failed unary call with a copy of the last
// successful reply of its method, when there is one.
func WithLastGoodFallback(lg *LastGood) ClientOption {
	return func(c *clientConfig) error {
		if lg == nil {
			return errors.New("grpcx: WithLastGoodFallback: nil LastGood")
		}
		c.lastGood = lg
		c.fallback = func(_ context.Context, method string, _, reply any, err error) error {
			m, ok := lg.last.Load(method)
			if !ok {
				return err
			}
			return fill(reply, m.(proto.Message), err)
		}
		return nil
	}
}

func (lg *LastGood) store(method string, reply any) {
	if m, ok := reply.(proto.Message); ok {
		lg.last.Store(method, proto.Clone(m))
	}
}

func fill(reply any, from proto.Message, err error) error {
	r, ok := reply.(proto.Message)
	if !ok || r.ProtoReflect().Descriptor() != from.ProtoReflect().Descriptor() {
		return fmt.Errorf("grpcx: fallback reply %T does not fit %T: %w", from, reply, err)
	}
	proto.Reset(r)
	proto.Merge(r, from)
	return nil
}
