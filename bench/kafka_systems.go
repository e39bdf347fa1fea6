package bench

// kafkaSystems are the systems of the Kafka suite. Courier's Kafka broker
// joins them once it exists.
func kafkaSystems() []System {
	return []System{
		RawFranzGo(),
		WatermillKafka(),
	}
}

// kafkaChecks are the targets of the Kafka suite; they need Courier's
// Kafka broker.
var kafkaChecks []Check
