// Package integration holds tests that run Courier's high-level APIs end to
// end over every broker adapter: the five interaction styles over the
// in-memory broker and embedded NATS JetStream.
package integration
