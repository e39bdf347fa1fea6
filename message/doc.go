// Package message defines the unit that every Courier channel carries: a
// Message made of an ID, headers and a payload.
//
// The header names follow Eventuate Tram's conventions (ID, DESTINATION,
// PARTITION_ID, DATE, event-*, command_*, reply_*). Only the names: the
// brokers' record formats and the outbox table differ from Eventuate's, so
// a Go service on Courier and a Java service on Eventuate do not share
// channels yet.
//
// Message IDs are time ordered: IDs generated later in a process sort after
// IDs generated earlier, and IDs from different processes do not collide.
//
// A Message is a plain value. It is not safe for concurrent mutation; once a
// message has been handed to a producer, the caller must not modify it.
package message
