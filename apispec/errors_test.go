package apispec

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
)

// Bad input is refused with an error that names the file and the place in
// it, never a panic.
func TestBadDocuments(t *testing.T) {
	const info = `"info":{"title":"t","version":"1.0.0"}`
	for _, tc := range []struct {
		name, file, text string
		is               error
		pointer          string   // the DocumentError's pointer, when it has one
		says             []string // what the message must say
	}{
		{"empty", "a.json", "  \n", ErrMalformed, "", []string{"a.json", "empty"}},
		{"JSON syntax", "a.json", "{\n  \"asyncapi\": \"3.0.0\",\n  \"info\": {,\n}", ErrMalformed, "", []string{"a.json", "line 3, column"}},
		{"trailing text", "a.json", `{"asyncapi":"3.0.0"} {}`, ErrMalformed, "", []string{"text after the JSON value"}},
		{"YAML syntax", "a.yaml", "asyncapi: 3.0.0\ninfo: [unclosed\n", ErrMalformed, "", []string{"a.yaml", "line"}},
		{"YAML key", "a.yaml", "asyncapi: 3.0.0\n? [a, b]\n: c\n", ErrMalformed, "", []string{"not a string"}},
		{"not an object", "a.json", `[1, 2]`, ErrNotAPIDocument, "", []string{"an array, not an object"}},
		{"neither format", "a.json", `{"name": "x"}`, ErrNotAPIDocument, "", []string{"no asyncapi"}},
		{"AsyncAPI 2", "a.json", `{"asyncapi":"2.6.0",` + info + `}`, ErrUnsupportedVersion, "/asyncapi", []string{`AsyncAPI "2.6.0"`}},
		{"Swagger 2", "a.json", `{"swagger":"2.0",` + info + `}`, ErrUnsupportedVersion, "/swagger", []string{"Swagger 2.0"}},
		{"OpenAPI 4", "a.json", `{"openapi":"4.0.0",` + info + `,"paths":{}}`, ErrUnsupportedVersion, "/openapi", []string{`OpenAPI "4.0.0"`}},
		{"no version", "a.json", `{"asyncapi":"3.0.0","info":{"title":"t"}}`, ErrMalformed, "/info", []string{"no version"}},
		{"no info", "a.json", `{"asyncapi":"3.0.0"}`, ErrMalformed, "", []string{"no info object"}},
		{"version type", "a.json", `{"asyncapi":"3.0.0","info":{"title":"t","version":1}}`, ErrMalformed, "/info/version", []string{"want a string, have a number"}},
		{"unresolved payload $ref", "a.json", `{"asyncapi":"3.0.0",` + info + `,
			"channels":{"c":{"address":"c","messages":{"m":{"payload":{"$ref":"#/components/schemas/Missing"}}}}},
			"operations":{"o":{"action":"send","channel":{"$ref":"#/channels/c"}}}}`,
			ErrUnresolvedRef, "/channels/c/messages/m/payload", []string{"a.json", "#/components/schemas/Missing", `no "components" in the document`}},
		{"unresolved channel $ref", "a.json", `{"asyncapi":"3.0.0",` + info + `,"channels":{},
			"operations":{"o":{"action":"send","channel":{"$ref":"#/channels/gone"}}}}`,
			ErrUnresolvedRef, "/operations/o/channel", []string{`no "gone" in /channels`}},
		{"external $ref", "a.json", `{"asyncapi":"3.0.0",` + info + `,"components":{"schemas":{"a":{"$ref":"other.json#/a"}}}}`,
			ErrUnresolvedRef, "/components/schemas/a", []string{"only references within the document"}},
		{"$ref cycle", "a.json", `{"asyncapi":"3.0.0",` + info + `,
			"channels":{"c":{"$ref":"#/channels/d"},"d":{"$ref":"#/channels/c"}}}`,
			ErrUnresolvedRef, "", []string{"a cycle?"}},
		{"bad action", "a.json", `{"asyncapi":"3.0.0",` + info + `,"channels":{"c":{"address":"c"}},
			"operations":{"o":{"action":"publish","channel":{"$ref":"#/channels/c"}}}}`,
			ErrMalformed, "/operations/o/action", []string{`action "publish"`}},
		{"bad schema", "a.json", `{"asyncapi":"3.0.0",` + info + `,"channels":{"c":{"address":"c","messages":{"m":{"payload":{"type":7}}}}},
			"operations":{"o":{"action":"send","channel":{"$ref":"#/channels/c"}}}}`,
			ErrMalformed, "/channels/c/messages/m/payload/type", []string{"want a type name"}},
		{"OpenAPI unresolved $ref", "a.json", `{"openapi":"3.1.0",` + info + `,"paths":{"/a":{"get":{"responses":{"200":{"description":"ok",
			"content":{"application/json":{"schema":{"$ref":"#/components/schemas/Missing"}}}}}}}}}`,
			ErrUnresolvedRef, "/paths/~1a/get/responses/200/content/application~1json/schema", []string{"#/components/schemas/Missing"}},
		{"OpenAPI invalid", "a.json", `{"openapi":"3.1.0",` + info + `,"paths":{"/a/{id}":{"get":{"responses":{"200":{"description":"ok"}}}}}}`, ErrMalformed, "", []string{"a.json", "id"}},
		{"deep nesting", "a.json", strings.Repeat(`{"a":`, 300) + "1" + strings.Repeat("}", 300), ErrMalformed, "", []string{"nested deeper than"}},
		{"proto syntax", "a.proto", "syntax = \"proto3\";\nmessage A { string a = ; }\n", ErrMalformed, "", []string{"a.proto:2:"}},
		{"proto version", "a.proto", "syntax = \"proto3\";\npackage a;\nmessage A {}\n", nil, "", []string{"a.proto", "no API version"}},
		{"proto version mismatch", "a.proto", "// api-version: 2.1.0\nsyntax = \"proto3\";\npackage a.v1;\n", nil, "", []string{"does not match the major version of package a.v1"}},
		{"proto import", "a.proto", "// api-version: 1.0.0\nsyntax = \"proto3\";\nimport \"b.proto\";\n", ErrMalformed, "", []string{"b.proto"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.file, []byte(tc.text))
			if err == nil {
				t.Fatal("no error")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
			var de *DocumentError
			if !errors.As(err, &de) || de.File != tc.file {
				t.Fatalf("error %v (%T) does not name the file", err, err)
			}
			if tc.pointer != "" && de.Pointer != tc.pointer {
				t.Errorf("pointer %q, want %q (%v)", de.Pointer, tc.pointer, err)
			}
			for _, s := range tc.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
		})
	}
}

func TestYAMLAliasesBounded(t *testing.T) {
	// A billion laughs: each level doubles the values the aliases expand to.
	var b strings.Builder
	b.WriteString("asyncapi: 3.0.0\na0: &a0 [x, x]\n")
	for i := 1; i < 40; i++ {
		b.WriteString("a" + strconv.Itoa(i) + ": &a" + strconv.Itoa(i) + " [*a" + strconv.Itoa(i-1) + ", *a" + strconv.Itoa(i-1) + "]\n")
	}
	_, err := Parse("laughs.yaml", []byte(b.String()))
	if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "aliases expand too far") {
		t.Errorf("error %v", err)
	}
}

func TestLoadFromDirectory(t *testing.T) {
	fsys := fstest.MapFS{
		"shop/v1/common.proto": {Data: []byte("syntax = \"proto3\";\npackage shop.v1;\nmessage Money { int64 cents = 1; }\n")},
		"shop/v1/orders.proto": {Data: []byte("syntax = \"proto3\";\npackage shop.v1;\nimport \"shop/v1/common.proto\";\nmessage Order { Money total = 1; }\n")},
	}
	doc, err := Load(fsys, "shop/v1/orders.proto")
	if err != nil {
		t.Fatal(err)
	}
	// The version comes from the package's major version alone.
	if doc.Version() != "1.0.0" || doc.Format() != FormatProto || !strings.Contains(string(doc.Source()), "message Order") {
		t.Errorf("%s %s", doc.Version(), doc.Format())
	}
	if _, err := Load(fsys, "shop/v1/missing.proto"); err == nil {
		t.Error("a missing file loaded")
	}
}

func TestDiffOfDifferentFormats(t *testing.T) {
	a, err := kitchenSpec().AsyncAPI()
	if err != nil {
		t.Fatal(err)
	}
	o, err := kitchenSpec().OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Diff(a, o); !errors.Is(err, ErrFormatMismatch) {
		t.Errorf("error %v", err)
	}
	if _, err := Diff(nil, o); err == nil {
		t.Error("Diff(nil, ...) succeeded")
	}
}
