// Package etcd is a discovery.Registry on etcd v3. Each instance is a key
// under the prefix (default "/courier/services/"), "<prefix><service>/<id>",
// holding the instance as JSON and attached to an etcd lease; heartbeats
// renew the lease, and etcd deletes the key when they stop for a TTL.
//
// The same client and keys work against a single-node development etcd
// (`courier registry`, or package etcdserver) and a production cluster.
//
// etcd's client connects in the background and, left to itself, waits for
// a connection as long as a request's context lets it. Every request the
// Registry makes is therefore bounded by a timeout (WithTimeout, default
// DefaultTimeout) as well as by its context, so that an unreachable etcd
// shows as an error naming its endpoints instead of a silent wait; Ping
// checks that etcd answers, e.g. when a program starts.
package etcd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/courier-go/courier/discovery"
)

// DefaultPrefix is the key prefix registrations live under.
const DefaultPrefix = "/courier/services/"

// DefaultTimeout bounds each request to etcd unless WithTimeout says
// otherwise.
const DefaultTimeout = 5 * time.Second

// Registry is a discovery.Registry backed by an etcd cluster. It is safe for
// concurrent use.
type Registry struct {
	cli     *clientv3.Client
	prefix  string
	timeout time.Duration
	log     *slog.Logger
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// Option configures a Registry.
type Option func(*Registry) error

// WithPrefix sets the key prefix (default DefaultPrefix); it must start and
// end with '/'.
func WithPrefix(p string) Option {
	return func(r *Registry) error {
		if len(p) < 2 || !strings.HasPrefix(p, "/") || !strings.HasSuffix(p, "/") {
			return fmt.Errorf("discovery/etcd: prefix %q must start and end with '/'", p)
		}
		r.prefix = p
		return nil
	}
}

// WithTimeout bounds each request the Registry makes to etcd (default
// DefaultTimeout); a request whose context ends sooner ends then. A request
// cut short by the timeout fails with an error that names the endpoints and
// wraps context.DeadlineExceeded. Heartbeats are bounded by the heartbeat
// interval instead.
func WithTimeout(d time.Duration) Option {
	return func(r *Registry) error {
		if d <= 0 {
			return fmt.Errorf("discovery/etcd: timeout %v must be positive", d)
		}
		r.timeout = d
		return nil
	}
}

// WithLogger sets the logger for heartbeat failures (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(r *Registry) error {
		if l == nil {
			return errors.New("discovery/etcd: nil logger")
		}
		r.log = l
		return nil
	}
}

// New returns a Registry using cli, which the caller keeps owning (close it
// after the Registry).
func New(cli *clientv3.Client, opts ...Option) (*Registry, error) {
	if cli == nil {
		return nil, errors.New("discovery/etcd: nil client")
	}
	r := &Registry{cli: cli, prefix: DefaultPrefix, timeout: DefaultTimeout, log: slog.Default()}
	for _, o := range opts {
		if err := o(r); err != nil {
			return nil, err
		}
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	return r, nil
}

var (
	_ discovery.Registry      = (*Registry)(nil)
	_ discovery.ServiceLister = (*Registry)(nil)
)

// Close stops the heartbeats of every lease, which then expire in etcd after
// their TTL unless deregistered first, and ends every watcher.
func (r *Registry) Close() error {
	r.cancel()
	r.wg.Wait()
	return nil
}

// Ping checks that etcd answers a read within the timeout (or before ctx
// ends, if sooner).
func (r *Registry) Ping(ctx context.Context) error {
	err := r.do(ctx, func(ctx context.Context) error {
		_, err := r.cli.Get(ctx, r.prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
		return err
	})
	if err != nil {
		return fmt.Errorf("discovery/etcd: ping: %w", err)
	}
	return nil
}

// do runs the request req with ctx bounded by the timeout. When the
// timeout cuts it short, the error says which endpoints did not answer.
func (r *Registry) do(ctx context.Context, req func(ctx context.Context) error) error {
	tctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	err := req(tctx)
	if err != nil && ctx.Err() == nil && tctx.Err() != nil {
		eps := r.cli.Endpoints()
		for i, ep := range eps {
			eps[i] = strings.TrimPrefix(strings.TrimPrefix(ep, "http://"), "https://")
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("%w (%v)", context.DeadlineExceeded, err)
		}
		return fmt.Errorf("no answer from etcd at %s within %v: %w", strings.Join(eps, ", "), r.timeout, err)
	}
	return err
}

func (r *Registry) key(service, id string) string { return r.prefix + service + "/" + id }

func (r *Registry) servicePrefix(service string) string { return r.prefix + service + "/" }

// Register implements discovery.Registry. The returned Lease is a *Lease.
func (r *Registry) Register(ctx context.Context, inst discovery.Instance, opts ...discovery.RegisterOption) (discovery.Lease, error) {
	if err := inst.Validate(); err != nil {
		return nil, fmt.Errorf("discovery/etcd: register: %w", err)
	}
	cfg, err := discovery.RegisterSettings(opts...)
	if err != nil {
		return nil, err
	}
	if r.ctx.Err() != nil {
		return nil, fmt.Errorf("discovery/etcd: register %s: %w", inst, discovery.ErrClosed)
	}
	inst = inst.Clone()
	val, err := json.Marshal(inst)
	if err != nil {
		return nil, fmt.Errorf("discovery/etcd: register %s: %w", inst, err)
	}
	var grant *clientv3.LeaseGrantResponse
	err = r.do(ctx, func(ctx context.Context) (err error) {
		grant, err = r.cli.Grant(ctx, int64(math.Ceil(cfg.TTL.Seconds())))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("discovery/etcd: register %s: grant lease: %w", inst, err)
	}
	if err := r.put(ctx, r.key(inst.Service, inst.ID), val, grant.ID); err != nil {
		r.revoke(grant.ID)
		return nil, fmt.Errorf("discovery/etcd: register %s: put: %w", inst, err)
	}
	l := &Lease{r: r, id: grant.ID, ttl: time.Duration(grant.TTL) * time.Second, heartbeat: cfg.Heartbeat,
		inst: inst, done: make(chan struct{}), stop: make(chan struct{})}
	r.wg.Add(1)
	go func() { defer r.wg.Done(); l.keepAlive() }()
	return l, nil
}

// put writes the key under the lease.
func (r *Registry) put(ctx context.Context, key string, val []byte, lease clientv3.LeaseID) error {
	return r.do(ctx, func(ctx context.Context) error {
		_, err := r.cli.Put(ctx, key, string(val), clientv3.WithLease(lease))
		return err
	})
}

// get reads the keys under prefix.
func (r *Registry) get(ctx context.Context, prefix string) (resp *clientv3.GetResponse, err error) {
	err = r.do(ctx, func(ctx context.Context) error {
		resp, err = r.cli.Get(ctx, prefix, clientv3.WithPrefix())
		return err
	})
	return resp, err
}

func (r *Registry) revoke(id clientv3.LeaseID) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	r.cli.Revoke(ctx, id) //nolint:errcheck // best effort: the lease expires anyway
}

// Instances implements discovery.Registry.
func (r *Registry) Instances(ctx context.Context, service string) ([]discovery.Instance, error) {
	if err := discovery.ValidateServiceName(service); err != nil {
		return nil, fmt.Errorf("discovery/etcd: %w", err)
	}
	resp, err := r.get(ctx, r.servicePrefix(service))
	if err != nil {
		return nil, fmt.Errorf("discovery/etcd: instances of %q: %w", service, err)
	}
	set := map[string]discovery.Instance{}
	for _, kv := range resp.Kvs {
		r.decode(set, kv.Key, kv.Value)
	}
	if len(set) == 0 {
		return nil, &discovery.UnknownServiceError{Service: service}
	}
	return sorted(set), nil
}

// Services implements discovery.ServiceLister: the services that have a
// key under the prefix, read without their values.
func (r *Registry) Services(ctx context.Context) ([]string, error) {
	var resp *clientv3.GetResponse
	err := r.do(ctx, func(ctx context.Context) (err error) {
		resp, err = r.cli.Get(ctx, r.prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("discovery/etcd: services: %w", err)
	}
	var names []string
	for _, kv := range resp.Kvs {
		service, _, ok := strings.Cut(strings.TrimPrefix(string(kv.Key), r.prefix), "/")
		if !ok || discovery.ValidateServiceName(service) != nil {
			continue // not a registration: Instances skips it too
		}
		names = append(names, service)
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

// decode adds the registration key holds to set, if it is one: JSON of a
// valid instance (discovery.Instance.Validate) whose service and ID are
// those the key names. Anything else, written by another program, is
// logged and skipped, so that clients never see it.
func (r *Registry) decode(set map[string]discovery.Instance, key, val []byte) {
	var inst discovery.Instance
	err := json.Unmarshal(val, &inst)
	if err == nil {
		err = inst.Validate()
	}
	if err == nil && string(key) != r.key(inst.Service, inst.ID) {
		err = fmt.Errorf("the registration is of %s, not of its key", inst)
	}
	if err != nil {
		r.log.Warn("discovery/etcd: skipping an unreadable registration", "key", strconv.Quote(string(key)), "error", err)
		return
	}
	set[string(key)] = inst
}

func sorted(set map[string]discovery.Instance) []discovery.Instance {
	insts := make([]discovery.Instance, 0, len(set))
	for _, inst := range set {
		insts = append(insts, inst.Clone())
	}
	discovery.SortByID(insts)
	return insts
}

// Watch implements discovery.Registry. The watch follows etcd's revisions
// from a consistent read, so no change between the read and the watch is
// missed. While etcd is unreachable the watcher simply waits (the client
// reconnects by itself); clients keep the last set they received.
func (r *Registry) Watch(ctx context.Context, service string) (discovery.Watcher, error) {
	if err := discovery.ValidateServiceName(service); err != nil {
		return nil, fmt.Errorf("discovery/etcd: watch: %w", err)
	}
	prefix := r.servicePrefix(service)
	resp, err := r.get(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("discovery/etcd: watch %q: %w", service, err)
	}
	w := &watcher{r: r, service: service, set: map[string]discovery.Instance{}}
	for _, kv := range resp.Kvs {
		r.decode(w.set, kv.Key, kv.Value)
	}
	wctx, cancel := context.WithCancel(r.ctx)
	w.cancel = cancel
	w.ch = r.cli.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1))
	return w, nil
}

type watcher struct {
	r       *Registry
	service string
	set     map[string]discovery.Instance
	last    []discovery.Instance
	started bool
	ch      clientv3.WatchChan
	cancel  context.CancelFunc
}

func (w *watcher) Next(ctx context.Context) ([]discovery.Instance, error) {
	for {
		cur := sorted(w.set)
		if !w.started || !slices.EqualFunc(cur, w.last, discovery.Equal) {
			w.started, w.last = true, cur
			return cur, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case resp, ok := <-w.ch:
			if !ok {
				if w.r.ctx.Err() != nil {
					return nil, fmt.Errorf("discovery/etcd: watch %q: %w", w.service, discovery.ErrClosed)
				}
				return nil, fmt.Errorf("discovery/etcd: watch %q: channel closed", w.service)
			}
			if err := resp.Err(); err != nil {
				return nil, fmt.Errorf("discovery/etcd: watch %q: %w", w.service, err)
			}
			if resp.Canceled {
				return nil, fmt.Errorf("discovery/etcd: watch %q: canceled by the server", w.service)
			}
			for _, ev := range resp.Events {
				switch ev.Type {
				case clientv3.EventTypeDelete:
					delete(w.set, string(ev.Kv.Key))
				default:
					w.r.decode(w.set, ev.Kv.Key, ev.Kv.Value)
				}
			}
		}
	}
}

func (w *watcher) Close() error {
	w.cancel()
	return nil
}

// Lease is a registration in etcd.
type Lease struct {
	r         *Registry
	id        clientv3.LeaseID
	ttl       time.Duration
	heartbeat time.Duration
	stop      chan struct{}
	done      chan struct{}

	mu       sync.Mutex
	inst     discovery.Instance
	err      error
	ended    bool
	stopOnce sync.Once
}

var _ discovery.Lease = (*Lease)(nil)

// keepAlive renews the lease every heartbeat. The lease is lost when etcd
// says it no longer exists, or when no renewal succeeded for a whole TTL.
func (l *Lease) keepAlive() {
	t := time.NewTicker(l.heartbeat)
	defer t.Stop()
	lastOK := time.Now()
	for {
		select {
		case <-l.stop:
			return
		case <-l.r.ctx.Done():
			l.end(fmt.Errorf("discovery/etcd: %s: %w", l.Instance(), discovery.ErrClosed))
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(l.r.ctx, l.heartbeat)
		resp, err := l.r.cli.KeepAliveOnce(ctx, l.id)
		cancel()
		switch {
		case err == nil && resp.TTL > 0:
			lastOK = time.Now()
		case errors.Is(err, rpctypes.ErrLeaseNotFound) || (err == nil && resp.TTL <= 0):
			l.end(fmt.Errorf("discovery/etcd: %s: lease expired in etcd: %w", l.Instance(), discovery.ErrLeaseLost))
			return
		case time.Since(lastOK) >= l.ttl:
			l.end(fmt.Errorf("discovery/etcd: %s: no successful heartbeat for %v (last error: %w): %w",
				l.Instance(), l.ttl, err, discovery.ErrLeaseLost))
			return
		default:
			if l.r.ctx.Err() == nil {
				l.r.log.Warn("discovery/etcd: heartbeat failed", "instance", l.Instance().String(), "error", err)
			}
		}
	}
}

func (l *Lease) end(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ended {
		return
	}
	l.ended, l.err = true, err
	l.stopHeartbeats()
	close(l.done)
}

func (l *Lease) stopHeartbeats() { l.stopOnce.Do(func() { close(l.stop) }) }

// Abandon stops the heartbeats without deregistering, as a crashed process
// would: etcd deletes the registration when the lease's TTL runs out.
func (l *Lease) Abandon() { l.stopHeartbeats() }

// ID returns the etcd lease ID.
func (l *Lease) ID() clientv3.LeaseID { return l.id }

// Instance implements discovery.Lease.
func (l *Lease) Instance() discovery.Instance {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.inst.Clone()
}

// Update implements discovery.Lease.
func (l *Lease) Update(ctx context.Context, inst discovery.Instance) error {
	cur := l.Instance()
	if inst.Service != cur.Service || inst.ID != cur.ID || inst.Address != cur.Address {
		return fmt.Errorf("discovery/etcd: update %s: service, id and address cannot change (got %s)", cur, inst)
	}
	select {
	case <-l.done:
		return fmt.Errorf("discovery/etcd: update %s: lease ended: %w", cur, l.Err())
	default:
	}
	val, err := json.Marshal(inst)
	if err != nil {
		return fmt.Errorf("discovery/etcd: update %s: %w", cur, err)
	}
	if err := l.r.put(ctx, l.r.key(inst.Service, inst.ID), val, l.id); err != nil {
		if errors.Is(err, rpctypes.ErrLeaseNotFound) {
			l.end(fmt.Errorf("discovery/etcd: %s: lease expired in etcd: %w", cur, discovery.ErrLeaseLost))
		}
		return fmt.Errorf("discovery/etcd: update %s: %w", cur, err)
	}
	l.mu.Lock()
	l.inst = inst.Clone()
	l.mu.Unlock()
	return nil
}

// Deregister implements discovery.Lease: it revokes the lease, which deletes
// the registration at once.
func (l *Lease) Deregister(ctx context.Context) error {
	l.mu.Lock()
	ended := l.ended
	l.mu.Unlock()
	if ended {
		return nil
	}
	l.stopHeartbeats()
	err := l.r.do(ctx, func(ctx context.Context) error {
		_, err := l.r.cli.Revoke(ctx, l.id)
		return err
	})
	if err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		err = fmt.Errorf("discovery/etcd: deregister %s (it expires after its TTL instead): %w", l.Instance(), err)
		l.end(err)
		return err
	}
	l.end(nil)
	return nil
}

// Done implements discovery.Lease.
func (l *Lease) Done() <-chan struct{} { return l.done }

// Err implements discovery.Lease.
func (l *Lease) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}
