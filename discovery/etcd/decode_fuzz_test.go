package etcd

import (
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/courier-go/courier/discovery"
)

// FuzzDecodeRegistration feeds the decoding of what etcd holds under the
// prefix, which any program with write access may have written, keys and
// values of any content: the registry must skip what is not a valid
// registration, never panic, and hand clients only valid instances whose
// service and ID are those of their key.
//
//	go test -fuzz FuzzDecodeRegistration ./discovery/etcd/
func FuzzDecodeRegistration(f *testing.F) {
	good, _ := json.Marshal(discovery.Instance{Service: "orders", ID: "o1", Address: "10.0.0.1:8080", Metadata: map[string]string{"zone": "a"}})
	f.Add("/courier/services/orders/o1", good)
	f.Add("/courier/services/orders/o2", good)
	f.Add("/courier/services/orders/o1", []byte(`{"service":"orders","id":"o1","address":"nowhere"}`))
	f.Add("/courier/services/orders/o1", []byte(`{"service":"orders","id":"o1","address":"10.0.0.6:80","unhealthy":true}`))
	f.Add("/courier/services/x", []byte(`[`))
	r := &Registry{prefix: DefaultPrefix, log: slog.New(slog.DiscardHandler)}
	f.Fuzz(func(t *testing.T, key string, val []byte) {
		set := map[string]discovery.Instance{}
		r.decode(set, []byte(key), val)
		for k, inst := range set {
			if err := inst.Validate(); err != nil {
				t.Fatalf("an invalid instance %+v decoded: %v", inst, err)
			}
			if k != r.key(inst.Service, inst.ID) {
				t.Fatalf("instance %s under key %q", inst, k)
			}
		}
	})
}
