// Package discovery is Courier's service discovery: the Registry port that
// service instances register with, and the client-side machinery that turns
// a logical service name into a live set of instances.
//
// The layering follows go-kit's sd package:
//
//	Registry  (memory, etcd, DNS SRV adapters)   who is out there
//	Resolver  (watch + last known instances)     what a client believes
//	Balancer  (round robin, random, least out.)  which instance serves this call
//
// Registrations are leases kept alive by heartbeats: an instance that stops
// heartbeating (a crash, kill -9, a network partition) disappears from every
// watcher once its lease's TTL runs out, without anyone deregistering it. A
// Resolver keeps serving the last known instances while the registry is
// unreachable, and catches up when it returns.
//
// Adapters live in sub-packages: discovery/memory (in-process, the
// single-process default), discovery/etcd (etcd v3; `courier registry` runs
// a single-node etcd for development), discovery/dnssrv (DNS SRV records
// maintained by the platform, as on Kubernetes); discovery/registryurl opens
// one of them from a URL. Client-side discovery is in
// discovery/httplb (an http.RoundTripper) and discovery/grpcresolver (a gRPC
// resolver for "courier:///service" targets); server-side discovery is
// discovery/router.
package discovery
