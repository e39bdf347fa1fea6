// Package adapter is for the authors of broker adapters, as
// database/sql/driver is for the authors of database drivers: what every
// adapter of the broker port shares, kept out of package broker so that
// the users of Producer and Consumer see only what they use.
//
//   - PrepareSend validates a Send's channel and messages against the
//     adapter's limits and assigns missing IDs;
//   - NewSubscribeConfig validates a Subscribe's arguments and applies the
//     defaults and options;
//   - Processor runs a subscription's handler for one message with the
//     subscription's policy: retries with backoff, a per-call timeout,
//     panic recovery and dead-lettering (in a bounded envelope when the
//     broker refuses a dead letter as it is), so that every adapter treats
//     failures the same way;
//   - Subscriptions is the registry of the subscriptions a Broker made,
//     which its Close closes.
//
// An adapter's Send calls PrepareSend first; its Subscribe calls
// NewSubscribeConfig, makes a Processor with the broker's dead-letter
// producer (broker.DeadLetters), hands each message of a shard to
// Process in order and acknowledges it when Process returns nil. Package
// broker/brokertest is the conformance suite every adapter runs.
package adapter
