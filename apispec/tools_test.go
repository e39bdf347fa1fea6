package apispec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/courier-go/courier/internal/apitools"
)

// The official tools check what the package writes and second the
// protobuf rules: the AsyncAPI project's parser, Redocly's OpenAPI linter
// and buf (see internal/apitools).

func TestAsyncAPIParserAcceptsGeneratedDocuments(t *testing.T) {
	tools := apitools.Require(t, apitools.AsyncAPIParser)
	docs := map[string][]byte{}
	for name, s := range toolSpecs(t) {
		doc, err := s.AsyncAPI()
		if err != nil {
			t.Fatal(err)
		}
		docs[name+".asyncapi.json"] = doc.JSON()
		y, err := doc.YAML()
		if err != nil {
			t.Fatal(err)
		}
		docs[name+".asyncapi.yaml"] = y
	}
	// A broken document, to show that the parser finds errors.
	docs["broken.asyncapi.json"] = []byte(`{"asyncapi":"3.0.0","info":{"title":"t","version":"1.0.0"},
  "operations":{"op":{"action":"publish","channel":{"$ref":"#/channels/missing"}}}}`)
	for file, diagnostics := range tools.ValidateAsyncAPI(t, apitools.WriteFiles(t, docs)...) {
		broken := strings.HasSuffix(file, "broken.asyncapi.json")
		errors := 0
		for _, d := range diagnostics {
			if d.Severity > 1 { // information and hints: the newer 3.1.0 exists
				continue
			}
			errors++
			if !broken {
				t.Errorf("%s: %s %s at %v", filepath.Base(file), d.Code, d.Message, d.Path)
			}
		}
		if broken && errors == 0 {
			t.Errorf("the parser found nothing wrong with the broken document")
		}
	}
}

func TestRedoclyLintsGeneratedDocuments(t *testing.T) {
	tools := apitools.Require(t, apitools.Redocly)
	docs := map[string][]byte{}
	for name, s := range toolSpecs(t) {
		doc, err := s.OpenAPI()
		if err != nil {
			t.Fatal(err)
		}
		docs[name+".openapi.json"] = doc.JSON()
	}
	for _, p := range tools.LintOpenAPI(t, apitools.WriteFiles(t, docs)...) {
		t.Errorf("redocly %s %s: %s %+v", p.Severity, p.RuleID, p.Message, p.Location)
	}
}

// TestBufAgreesOnProtoRules runs buf breaking on every protobuf rule case,
// with its WIRE_JSON rules and those against deleting messages, enums,
// services and rpcs: buf must find a breaking change exactly where
// Courier does.
func TestBufAgreesOnProtoRules(t *testing.T) {
	tools := apitools.Require(t, apitools.Buf)
	config := `{"version":"v2","breaking":{"use":["WIRE_JSON","PACKAGE_NO_DELETE","PACKAGE_MESSAGE_NO_DELETE","PACKAGE_ENUM_NO_DELETE","PACKAGE_SERVICE_NO_DELETE","RPC_NO_DELETE"]}}`
	for _, tc := range protoRuleCases {
		t.Run(tc.rule, func(t *testing.T) {
			oldDir, newDir := t.TempDir(), t.TempDir()
			if err := os.WriteFile(filepath.Join(oldDir, "shop.proto"), []byte(protoBase), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(newDir, "shop.proto"), []byte(tc.edited(t)), 0o644); err != nil {
				t.Fatal(err)
			}
			out, stderr, err := tools.Run(t, tools.Bin("buf"), "breaking", newDir, "--against", oldDir, "--config", config)
			bufBreaking := err != nil
			if bufBreaking && len(out) == 0 {
				t.Fatalf("buf breaking: %v\n%s", err, stderr)
			}
			if bufBreaking != tc.breaking {
				t.Errorf("%s: buf says breaking %v, Courier %v\n%s", tc.rule, bufBreaking, tc.breaking, out)
			}
		})
	}
}

// toolSpecs returns the specs whose documents the tools check.
func toolSpecs(t *testing.T) map[string]*Spec {
	t.Helper()
	return map[string]*Spec{"kitchen": kitchenSpec()}
}
