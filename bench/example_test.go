package bench_test

import (
	"context"
	"fmt"
	"io"

	"github.com/courier-go/courier/bench"
)

// Run measures one system on one workload; every message must arrive
// exactly once or Run fails.
func ExampleRun() {
	r, err := bench.Run(context.Background(), bench.CourierMemory{}, bench.Config{Messages: 1000, PayloadSize: 64})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(r.System, r.Messages, "messages consumed")
	// Output: courier-memory 1000 messages consumed
}

// A suite measures Courier and its peers in one run and returns its tables,
// here printed as Markdown.
func ExampleSuite() {
	suites, err := bench.SelectSuites([]string{"memory"})
	if err != nil {
		fmt.Println(err)
		return
	}
	tables, err := suites[0].Run(context.Background(), bench.Options{Quick: true, Messages: 500})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, t := range tables {
		fmt.Println(t.ID, len(t.Rows), "rows")
	}
	_ = tables[0].WriteMarkdown(io.Discard) // or os.Stdout
	// Output:
	// brokers-memory 4 rows
	// brokers-memory-targets 3 rows
}
