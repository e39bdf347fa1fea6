package amqp_test

import (
	"context"
	"log"
	"time"

	"github.com/courier-go/courier/broker/amqp"
	"github.com/courier-go/courier/commands"
)

type ReserveCredit struct {
	CustomerID int64 `json:"customerId"`
}

// The Java class name Eventuate's services send the command under.
func (ReserveCredit) CommandType() string { return "com.example.customers.api.ReserveCreditCommand" }

type CreditReserved struct{}

func (CreditReserved) ReplyType() string { return "com.example.customers.api.CreditReserved" }

// A Go service answers the commands a Java service on Eventuate Tram sends
// it over RabbitMQ: the Broker declares Eventuate's topology (the
// customerService fanout exchange, the consistent-hash exchange and the
// partition queues of "customer-service") and reads and writes Eventuate's
// envelopes; the reply goes to the channel the command names, as
// Eventuate's saga expects it. (It needs a RabbitMQ server with the
// consistent-hash exchange plugin, so it is not run as a test.)
func ExampleWithEventuateFormat() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := amqp.Open(ctx, "amqp://guest:guest@127.0.0.1:5672/", amqp.WithEventuateFormat(), amqp.WithEventuatePartitions(2))
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close(context.Background())

	d := commands.NewDispatcher(b)
	commands.Handle(d, func(ctx context.Context, c commands.Command[ReserveCredit]) (commands.Reply, error) {
		return commands.Success(CreditReserved{}), nil
	})
	sub, err := d.Subscribe(ctx, b, "customer-service", "customerService")
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Close(context.Background())
}
