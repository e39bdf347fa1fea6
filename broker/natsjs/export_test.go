package natsjs

// StreamName is the name of a channel's stream, for the tests.
var StreamName = streamName

// ShardOf maps a partition key to a shard, for the tests' raw publisher.
var ShardOf = shardOf

// MetaShards is the stream metadata key that holds a channel's shard count.
const MetaShards = metaShards
