package memory_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/courier-go/courier/discovery"
	"github.com/courier-go/courier/discovery/memory"
)

// A registry lists the services that have an instance registered, which
// tools such as courier console show with each instance's health and the
// metrics endpoint its metadata names.
func ExampleRegistry_Services() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	reg := memory.New()
	defer reg.Close()
	for _, inst := range []discovery.Instance{
		{Service: "orders", ID: "orders-1", Address: "10.0.0.7:8080", Metadata: map[string]string{discovery.MetadataMetrics: "/metrics"}},
		{Service: "kitchen", ID: "kitchen-1", Address: "10.0.0.8:8080", Unhealthy: true},
	} {
		if _, err := reg.Register(ctx, inst); err != nil {
			log.Fatal(err)
		}
	}
	var lister discovery.ServiceLister = reg
	names, err := lister.Services(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, name := range names {
		insts, err := reg.Instances(ctx, name)
		if err != nil {
			log.Fatal(err)
		}
		for _, i := range insts {
			fmt.Printf("%s %s healthy=%t metrics=%q\n", name, i.ID, i.Healthy(), i.Metadata[discovery.MetadataMetrics])
		}
	}
	// Output:
	// kitchen kitchen-1 healthy=false metrics=""
	// orders orders-1 healthy=true metrics="/metrics"
}
