// Package testlog holds what tests use to read the logs of the code they
// run.
package testlog

import (
	"bytes"
	"sync"
)

// Buffer is a bytes.Buffer that the goroutines of the code under test may
// write to while the test reads it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns what was written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
