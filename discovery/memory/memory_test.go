package memory_test

import (
	"testing"
	"time"

	"github.com/courier-go/courier/discovery"
	"github.com/courier-go/courier/discovery/memory"
	"github.com/courier-go/courier/discovery/registrytest"
)

func TestConformance(t *testing.T) {
	registrytest.Run(t, registrytest.Config{New: func(t *testing.T) discovery.Registry {
		r := memory.New()
		t.Cleanup(func() { r.Close() })
		return r
	}, TTL: time.Second})
}
