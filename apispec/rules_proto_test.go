package apispec

import (
	"strings"
	"testing"
)

// protoBase is the older version of the .proto file of the protobuf rule
// tests; each case edits it.
const protoBase = `// api-version: 1.0.0
syntax = "proto3";

package shop;

import "google/protobuf/timestamp.proto";

service Orders {
  rpc Get(GetRequest) returns (Order);
  rpc Watch(GetRequest) returns (stream Order);
}

message GetRequest {
  string id = 1;
}

message Order {
  string id = 1;
  int64 total = 2;
  State state = 3;
  repeated string items = 4;
  google.protobuf.Timestamp created = 5;
  oneof payment {
    string card = 6;
    string voucher = 7;
  }
  string note = 8;
  reserved 20;
  reserved "legacy";
}

message Unused {
  string x = 1;
}

enum State {
  STATE_UNSPECIFIED = 0;
  STATE_OPEN = 1;
  STATE_CLOSED = 2;
}

enum Color {
  COLOR_UNSPECIFIED = 0;
}
`

// protoRuleCase edits protoBase (each pair an old and a new text) into the
// newer version and names the rule the change must trigger.
type protoRuleCase struct {
	rule     string
	edits    []string
	breaking bool
}

var protoRuleCases = []protoRuleCase{
	{"package-changed", []string{"package shop;", "package store;"}, true},
	{"message-removed", []string{"message Unused {\n  string x = 1;\n}\n", ""}, true},
	{"message-added", []string{"message Unused {", "message Extra {}\n\nmessage Unused {"}, false},
	{"enum-type-removed", []string{"enum Color {\n  COLOR_UNSPECIFIED = 0;\n}\n", ""}, true},
	{"enum-type-added", []string{"enum Color {", "enum Size {\n  SIZE_UNSPECIFIED = 0;\n}\n\nenum Color {"}, false},
	{"service-removed", []string{"service Orders {\n  rpc Get(GetRequest) returns (Order);\n  rpc Watch(GetRequest) returns (stream Order);\n}\n", ""}, true},
	{"service-added", []string{"service Orders {", "service Admin {\n  rpc Get(GetRequest) returns (Order);\n}\n\nservice Orders {"}, false},
	{"field-removed", []string{"  string note = 8;\n", ""}, true},
	{"field-removed-reserved", []string{"  string note = 8;\n", "  reserved 8;\n  reserved \"note\";\n"}, false},
	{"field-number-changed", []string{"string note = 8;", "string note = 9;"}, true},
	{"field-number-reused", []string{"string note = 8;", "int32 priority = 8;"}, true},
	{"field-renamed", []string{"string note = 8;", "string remark = 8;"}, true},
	{"field-type-changed", []string{"int64 total = 2;", "double total = 2;"}, true},
	{"field-cardinality-changed", []string{"string note = 8;", "repeated string note = 8;"}, true},
	{"field-oneof-changed", []string{"    string voucher = 7;\n  }", "  }\n  string voucher = 7;"}, true},
	{"field-json-name-changed", []string{"string note = 8;", "string note = 8 [json_name = \"memo\"];"}, true},
	{"reserved-field-reused", []string{"string note = 8;\n  reserved 20;", "string note = 8;\n  string extra = 20;"}, true},
	{"field-added", []string{"string note = 8;", "string note = 8;\n  string extra = 9;"}, false},
	{"enum-value-removed", []string{"  STATE_CLOSED = 2;\n", ""}, true},
	{"enum-value-removed-reserved", []string{"  STATE_CLOSED = 2;\n", "  reserved 2;\n  reserved \"STATE_CLOSED\";\n"}, false},
	{"enum-value-renamed", []string{"STATE_CLOSED = 2;", "STATE_DONE = 2;"}, true},
	{"enum-value-added", []string{"STATE_CLOSED = 2;", "STATE_CLOSED = 2;\n  STATE_LOST = 3;"}, false},
	{"rpc-removed", []string{"  rpc Watch(GetRequest) returns (stream Order);\n", ""}, true},
	{"rpc-added", []string{"  rpc Watch(", "  rpc List(GetRequest) returns (Order);\n  rpc Watch("}, false},
	{"rpc-request-changed", []string{"rpc Get(GetRequest)", "rpc Get(Unused)"}, true},
	{"rpc-response-changed", []string{"returns (Order);", "returns (Unused);"}, true},
	{"rpc-streaming-changed", []string{"returns (stream Order)", "returns (Order)"}, true},
}

// edited applies a case's edits to protoBase and bumps the version.
func (tc protoRuleCase) edited(t testing.TB) string {
	t.Helper()
	text := protoBase
	for i := 0; i+1 < len(tc.edits); i += 2 {
		if !strings.Contains(text, tc.edits[i]) {
			t.Fatalf("%s: %q is not in the base file", tc.rule, tc.edits[i])
		}
		text = strings.Replace(text, tc.edits[i], tc.edits[i+1], 1)
	}
	version := "1.1.0"
	if tc.breaking {
		version = "2.0.0"
	}
	return strings.Replace(text, "api-version: 1.0.0", "api-version: "+version, 1)
}

func TestProtoRules(t *testing.T) {
	for _, tc := range protoRuleCases {
		t.Run(tc.rule, func(t *testing.T) {
			old := mustParse(t, "shop.proto", protoBase)
			new := mustParse(t, "shop.proto", tc.edited(t))
			r, err := Diff(old, new)
			if err != nil {
				t.Fatal(err)
			}
			c := findChange(t, r, tc.rule)
			if c.Breaking != tc.breaking {
				t.Errorf("%s: breaking %v, want %v (%+v)", tc.rule, c.Breaking, tc.breaking, c)
			}
			if !strings.HasPrefix(c.Source, "shop.proto:") {
				t.Errorf("%s: source %q, want shop.proto:LINE", tc.rule, c.Source)
			}
			if r.Breaking() != tc.breaking {
				t.Errorf("%s: report breaking %v, want %v: %+v", tc.rule, r.Breaking(), tc.breaking, r.Changes)
			}
			if r.VersionError != "" {
				t.Errorf("%s: version error %q", tc.rule, r.VersionError)
			}
		})
	}
}

func TestProtoNoChange(t *testing.T) {
	old := mustParse(t, "shop.proto", protoBase)
	r, err := Diff(old, old)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Changes) != 0 || r.Bump != BumpNone || r.VersionError != "" {
		t.Errorf("unchanged file: %+v", r)
	}
}
