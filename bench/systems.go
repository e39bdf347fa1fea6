package bench

import "github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

// Systems returns the systems the end-to-end benchmark compares, in the
// order they run:
//
//   - courier-memory: Courier's in-memory broker with its defaults
//     (ordered delivery);
//   - courier-memory-concurrent: the same in concurrent delivery mode;
//   - watermill-gochannel: Watermill's GoChannel with its defaults, the
//     main point of comparison;
//   - watermill-gochannel-block: GoChannel with
//     BlockPublishUntilSubscriberAck, which bounds the messages in flight
//     to one per publishing goroutine. It is not the default, but it is
//     the fastest GoChannel set-up on this workload, so it is the bar a
//     claim of "faster than Watermill" has to clear too.
func Systems() []System {
	return []System{
		CourierMemory{},
		CourierMemory{Concurrent: true},
		WatermillGoChannel{},
		WatermillGoChannel{
			Config: gochannel.Config{BlockPublishUntilSubscriberAck: true},
			Label:  "watermill-gochannel-block",
		},
	}
}
