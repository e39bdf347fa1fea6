package apispec

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// The decoders are fuzzed (go test -fuzz FuzzParse ./apispec): no input
// panics, every error is a *DocumentError, and a document that reads
// compares with itself without a change. The seed corpus is the golden
// documents of testdata, the bad documents of TestBadDocuments, and
// testdata/fuzz.

var fuzzNames = []string{"doc.json", "doc.yaml", "doc.proto"}

func addSeeds(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.*")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		for i, name := range fuzzNames {
			if filepath.Ext(file) == filepath.Ext(name) {
				f.Add(uint8(i), data)
			}
		}
	}
	f.Add(uint8(0), []byte(payloadDoc("1.0.0", "send", `{"type":"object","properties":{"a":{"$ref":"#/components/schemas/Line"}}}`)))
	f.Add(uint8(0), []byte(`{"asyncapi":"3.0.0","info":{"title":"t","version":"1.0.0"},"channels":{"c":{"$ref":"#/channels/c"}}}`))
	f.Add(uint8(1), []byte("asyncapi: 3.0.0\ninfo: {title: t, version: 1.0.0}\nchannels: {c: &c {address: c}, d: *c}\n"))
	f.Add(uint8(0), []byte(`{"openapi":"3.1.0","info":{"title":"t","version":"1.0.0"},"paths":{"/a/{id}":{"get":{"parameters":[{"name":"id","in":"path","required":true,"schema":{"type":"string"}}],"responses":{"200":{"description":"ok"}}}}}}`))
	f.Add(uint8(2), []byte(protoBase))
}

func FuzzParse(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, kind uint8, data []byte) {
		name := fuzzNames[int(kind)%len(fuzzNames)]
		doc, err := Parse(name, data)
		if err != nil {
			var de *DocumentError
			if !errors.As(err, &de) || de.File != name {
				t.Fatalf("error %v (%T) does not name the file", err, err)
			}
			return
		}
		r, err := Diff(doc, doc)
		if err != nil {
			t.Fatalf("a document does not compare with itself: %v", err)
		}
		if len(r.Changes) != 0 {
			t.Fatalf("a document differs from itself: %+v", r.Changes)
		}
		if _, err := doc.YAML(); err != nil {
			t.Fatalf("YAML: %v", err)
		}
	})
}

// FuzzDiffSchemas compares payload schemas: no pair panics or fails once
// both documents read.
func FuzzDiffSchemas(f *testing.F) {
	for _, tc := range schemaRuleCases {
		f.Add(tc.old, tc.new, tc.receive)
	}
	f.Fuzz(func(t *testing.T, oldSchema, newSchema string, receive bool) {
		action := actionSend
		if receive {
			action = actionReceive
		}
		old, err := Parse("old.json", []byte(payloadDoc("1.0.0", action, oldSchema)))
		if err != nil {
			return
		}
		new, err := Parse("new.json", []byte(payloadDoc("1.0.0", action, newSchema)))
		if err != nil {
			return
		}
		if _, err := Diff(old, new); err != nil {
			t.Fatalf("Diff: %v", err)
		}
	})
}
