package direct

import (
	"errors"
	"fmt"
	"net"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// receiver is a broker's gRPC server, started by its first Subscribe: it
// takes the frames senders stream to the broker's subscription instances.
type receiver struct {
	b       *Broker
	srv     *grpc.Server
	lis     net.Listener
	address string // advertised
	done    chan struct{}

	mu   sync.RWMutex
	subs map[string]*subscription // by instance id
}

func startReceiver(b *Broker) (*receiver, error) {
	lis, err := net.Listen("tcp", b.listen)
	if err != nil {
		return nil, fmt.Errorf("direct broker: listen on %s: %w", b.listen, err)
	}
	r := &receiver{b: b, lis: lis, address: b.advertise, subs: map[string]*subscription{}, done: make(chan struct{})}
	if r.address == "" {
		r.address = lis.Addr().String()
	}
	opts := []grpc.ServerOption{grpc.ForceServerCodec(frameCodec{}), grpc.MaxRecvMsgSize(b.maxFrame()), grpc.MaxSendMsgSize(b.maxFrame())}
	if b.serverTLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(b.serverTLS)))
	}
	r.srv = grpc.NewServer(opts...)
	r.srv.RegisterService(&grpc.ServiceDesc{
		ServiceName: serviceFullName,
		HandlerType: (*any)(nil),
		Streams: []grpc.StreamDesc{{StreamName: streamDesc.StreamName, ServerStreams: true, ClientStreams: true,
			Handler: func(_ any, s grpc.ServerStream) error { return r.serve(s) }}},
	}, nil)
	go func() {
		defer close(r.done)
		if err := r.srv.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			b.log.Error("courier: direct broker: receiver stopped", "address", r.address, "error", err)
		}
	}()
	return r, nil
}

func (r *receiver) add(s *subscription) {
	r.mu.Lock()
	r.subs[s.id] = s
	r.mu.Unlock()
}

func (r *receiver) remove(s *subscription) {
	r.mu.Lock()
	delete(r.subs, s.id)
	r.mu.Unlock()
}

func (r *receiver) lookup(id string) *subscription {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.subs[id]
}

// serve handles one sender's stream: each deliver frame is queued at its
// instance and answered in turn; a flush is answered when the shard's
// queue empties, without holding up the frames behind it.
func (r *receiver) serve(s grpc.ServerStream) error {
	var sendMu sync.Mutex
	answer := func(resp response) error {
		sendMu.Lock()
		defer sendMu.Unlock()
		return s.SendMsg(&frame{b: appendResponse(nil, resp)})
	}
	var flushes sync.WaitGroup
	defer flushes.Wait()
	ctx := s.Context()
	for {
		var f frame
		if err := s.RecvMsg(&f); err != nil {
			return nil // the sender went away or closed the stream
		}
		q, err := decodeRequest(f.b)
		if err != nil {
			r.b.log.Warn("courier: direct broker: refused a malformed frame", "error", err)
			if err := answer(response{seq: q.seq, status: statusRefused, text: err.Error()}); err != nil {
				return err
			}
			continue
		}
		sub := r.lookup(q.instance)
		if q.kind == kindFlush {
			if sub == nil {
				if err := answer(response{seq: q.seq, status: statusOK}); err != nil {
					return err
				}
				continue
			}
			flushes.Go(func() {
				resp := response{seq: q.seq, status: statusOK}
				if err := sub.flush(ctx, q.channel, q.shard); err != nil {
					resp = response{seq: q.seq, status: statusGone, text: err.Error()}
				}
				_ = answer(resp) // a failure ends the stream, which RecvMsg sees
			})
			continue
		}
		resp := response{seq: q.seq, status: statusOK}
		if sub == nil {
			resp = response{seq: q.seq, status: statusGone, text: fmt.Sprintf("no subscription instance %q here", q.instance)}
		} else if err := sub.accept(ctx, q.channel, q.shard, q.msg); err != nil {
			resp = response{seq: q.seq, status: statusGone, text: err.Error()}
		}
		if err := answer(resp); err != nil {
			return err
		}
	}
}

// stop ends the server: every stream, at once.
func (r *receiver) stop() {
	r.srv.Stop()
	<-r.done
}
