package fooddelivery_test

import (
	"context"
	"fmt"
	"time"

	"github.com/courier-go/courier/examples/fooddelivery"
)

// RunDemo starts every service in the process on embedded defaults, runs
// the scenario and checks that every service agrees on every order.
func ExampleRunDemo() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := fooddelivery.RunDemo(ctx, fooddelivery.DemoConfig{Bulk: 2}) // Out: os.Stdout prints the trace
	if err != nil {
		fmt.Println(err)
		return
	}
	approved := 0
	for _, o := range rep.Orders {
		if o.State == fooddelivery.Approved {
			approved++
		}
	}
	fmt.Printf("%d orders, %d approved, %d courier quotes\n", len(rep.Orders), approved, len(rep.Quotes))
	// Output:
	// 13 orders, 10 approved, 3 courier quotes
}
