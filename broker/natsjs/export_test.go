package natsjs

// StreamName is the name of a channel's stream, for the tests.
var StreamName = streamName
