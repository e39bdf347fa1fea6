package apispec

import (
	"bytes"
	"flag"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden documents in testdata")

// The kitchen service's documents, as committed in testdata: a change to
// what the package writes shows in review (go test -run TestGolden
// -update rewrites them).
func TestGoldenDocuments(t *testing.T) {
	s := kitchenSpec()
	for file, build := range map[string]func() (*Document, error){
		"testdata/kitchen.asyncapi.yaml": s.AsyncAPI,
		"testdata/kitchen.openapi.yaml":  s.OpenAPI,
	} {
		doc, err := build()
		if err != nil {
			t.Fatal(err)
		}
		got, err := doc.YAML()
		if err != nil {
			t.Fatal(err)
		}
		if *update {
			if err := os.WriteFile(file, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from what the package writes now; run go test -run TestGolden -update ./apispec and review the difference", file)
		}
	}
}
