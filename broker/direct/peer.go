package direct

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// The gRPC service of the receivers: one bidirectional stream of frames.
const (
	serviceFullName = "courier.direct.Receiver"
	streamMethod    = "/" + serviceFullName + "/Frames"
)

var streamDesc = grpc.StreamDesc{StreamName: "Frames", ServerStreams: true, ClientStreams: true}

// errUnreachable is wrapped by the errors of a request that did not get an
// answer: the receiver could not be dialled or its stream broke. Whether
// the receiver took the message is unknown.
var errUnreachable = errors.New("direct: receiver unreachable")

// peer is the sending side's connection to one receiver address: a gRPC
// connection and, while it works, one stream on it that carries every
// request to the address's instances, answered by seq.
type peer struct {
	address string
	conn    *grpc.ClientConn

	send    sync.Mutex // serializes SendMsg, which may wait for flow control
	mu      sync.Mutex // guards what follows; never held across I/O but a dial
	stream  *peerStream
	seq     uint64
	closed  bool
	streams sync.WaitGroup // the streams' readers
}

// peerStream is one stream and the requests waiting for its answers.
type peerStream struct {
	s       grpc.ClientStream
	cancel  context.CancelFunc
	pending map[uint64]chan response
	err     error // set when the stream broke; pending is then nil
}

func newPeer(address string, tlsConf credentials.TransportCredentials, maxFrame int) (*peer, error) {
	creds := tlsConf
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	conn, err := grpc.NewClient(address, grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(frameCodec{}), grpc.MaxCallRecvMsgSize(maxFrame), grpc.MaxCallSendMsgSize(maxFrame)))
	if err != nil {
		return nil, fmt.Errorf("direct: dial %s: %w", address, err)
	}
	return &peer{address: address, conn: conn}, nil
}

// request sends one frame, built by build with the request's seq, and
// returns the channel its answer arrives on: a response of status
// statusUnreachable, with the error's text, if the stream breaks first.
// Frames go out in the order of the calls.
func (p *peer) request(ctx context.Context, build func(seq uint64) []byte) (<-chan response, error) {
	p.send.Lock()
	defer p.send.Unlock()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, fmt.Errorf("direct: send to %s: %w", p.address, errClosedBroker)
	}
	if p.stream == nil {
		if err := p.open(ctx); err != nil {
			p.mu.Unlock()
			return nil, err
		}
	}
	st := p.stream
	p.seq++
	seq := p.seq
	ch := make(chan response, 1)
	st.pending[seq] = ch
	p.mu.Unlock()
	// SendMsg waits while the receiver's window is full; a request whose
	// context ends meanwhile ends the stream, failing its other requests
	// too, as a broken connection would.
	stop := context.AfterFunc(ctx, st.cancel)
	err := st.s.SendMsg(&frame{b: build(seq)})
	stop()
	if err != nil {
		p.mu.Lock()
		p.broke(st, err)
		p.mu.Unlock()
		return nil, fmt.Errorf("direct: send to %s: %w: %w", p.address, errUnreachable, err)
	}
	return ch, nil
}

// open starts a stream; p.mu is held.
func (p *peer) open(ctx context.Context) error {
	// The stream outlives the request that opens it; it ends when it
	// breaks or the peer closes.
	sctx, cancel := context.WithCancel(context.Background())
	stop := context.AfterFunc(ctx, cancel) // an abandoned dial does not linger
	s, err := p.conn.NewStream(sctx, &streamDesc, streamMethod, grpc.WaitForReady(false))
	stop()
	if err != nil {
		cancel()
		if ctx.Err() != nil {
			return fmt.Errorf("direct: connect to %s: %w", p.address, ctx.Err())
		}
		return fmt.Errorf("direct: connect to %s: %w: %w", p.address, errUnreachable, err)
	}
	st := &peerStream{s: s, cancel: cancel, pending: map[uint64]chan response{}}
	p.stream = st
	p.streams.Go(func() { p.read(st) })
	return nil
}

// read dispatches a stream's answers until it breaks.
func (p *peer) read(st *peerStream) {
	for {
		var f frame
		if err := st.s.RecvMsg(&f); err != nil {
			p.mu.Lock()
			p.broke(st, err)
			p.mu.Unlock()
			return
		}
		r, err := decodeResponse(f.b)
		if err != nil {
			p.mu.Lock()
			p.broke(st, err)
			p.mu.Unlock()
			return
		}
		p.mu.Lock()
		ch := st.pending[r.seq]
		delete(st.pending, r.seq)
		p.mu.Unlock()
		if ch != nil {
			ch <- r
		}
	}
}

// broke ends st, failing its pending requests; p.mu is held.
func (p *peer) broke(st *peerStream, err error) {
	if st.pending == nil {
		return
	}
	st.err = err
	for _, ch := range st.pending {
		ch <- response{status: statusUnreachable, text: err.Error()}
	}
	st.pending = nil
	st.cancel()
	if p.stream == st {
		p.stream = nil
	}
}

// close ends the stream and the connection and waits for the reader.
func (p *peer) close() {
	p.mu.Lock()
	p.closed = true
	if p.stream != nil {
		p.broke(p.stream, errClosedBroker)
	}
	p.mu.Unlock()
	p.streams.Wait()
	_ = p.conn.Close()
}
