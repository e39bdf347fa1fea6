package registrar_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/courier-go/courier/discovery/registrar"
)

// FuzzTargetsFile reads a -targets file of any content: the source must
// return targets or an error, never panic, and the targets it returns
// are checked (the registrar registers only those Validate accepts).
//
//	go test -fuzz FuzzTargetsFile ./discovery/registrar/
func FuzzTargetsFile(f *testing.F) {
	f.Add([]byte(`[{"service":"orders","id":"o1","address":"10.0.0.7:8080","check":"http://u:s3cret@10.0.0.7:8080/healthz"}]`))
	f.Add([]byte(`[{"service":"orders","id":"o1","address":"nowhere","metadata":{"zone":"a"},"version":"1.2"}]`))
	f.Add([]byte(`{"check": 12345678}`))
	path := filepath.Join(f.TempDir(), "targets.json")
	source := registrar.FileSource(path)
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		ts, err := source(context.Background())
		if err != nil {
			return
		}
		for _, tg := range ts {
			if tg.Validate() == nil && (tg.Service == "" || tg.Address == "") {
				t.Fatalf("target %+v validated", tg)
			}
		}
	})
}
