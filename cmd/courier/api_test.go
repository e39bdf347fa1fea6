package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/courier-go/courier/apispec"
)

type apiTicketV1 struct {
	ID    string `json:"id"`
	State string `json:"state"`
}

func (apiTicketV1) EventType() string { return "kitchen.TicketCreated" }

type apiTicketV2 struct {
	ID      string `json:"id"`
	State   string `json:"state"`
	Courier string `json:"courier,omitempty"`
}

func (apiTicketV2) EventType() string { return "kitchen.TicketCreated" }

type apiTicketV3 struct {
	ID string `json:"id"`
}

func (apiTicketV3) EventType() string { return "kitchen.TicketCreated" }

// apiDocs writes the kitchen service's AsyncAPI document at a version
// into dir/kitchen/asyncapi.yaml, and a .proto file beside it.
func apiDocs[T any](t *testing.T, dir, version, proto string) {
	t.Helper()
	s := apispec.New("kitchen-service", version)
	apispec.Publishes[T](s, "Ticket")
	doc, err := s.AsyncAPI()
	if err != nil {
		t.Fatal(err)
	}
	y, err := doc.YAML()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "kitchen"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "kitchen", "asyncapi.yaml"), y, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "kitchen", "kitchen.proto"), []byte(proto), 0o644); err != nil {
		t.Fatal(err)
	}
}

const apiProtoV1 = "// api-version: 1.0.0\nsyntax = \"proto3\";\npackage kitchen;\nmessage Ticket {\n  string id = 1;\n  string note = 2;\n}\n"

func TestAPICommands(t *testing.T) {
	base, compatible, breaking, bumped := t.TempDir(), t.TempDir(), t.TempDir(), t.TempDir()
	apiDocs[apiTicketV1](t, base, "1.0.0", apiProtoV1)
	apiDocs[apiTicketV2](t, compatible, "1.1.0", strings.NewReplacer("1.0.0", "1.1.0", "string note = 2;", "string note = 2;\n  string courier = 3;").Replace(apiProtoV1))
	apiDocs[apiTicketV3](t, breaking, "1.1.0", apiProtoV1)
	apiDocs[apiTicketV3](t, bumped, "2.0.0", apiProtoV1)
	doc := func(dir string) string { return filepath.Join(dir, "kitchen", "asyncapi.yaml") }
	proto := func(dir string) string { return filepath.Join(dir, "kitchen", "kitchen.proto") }

	for _, tc := range []struct {
		name string
		args []string
		code int
		says []string // in the output, or the error
	}{
		{"diff compatible", []string{"api", "diff", doc(base), doc(compatible)}, 0, []string{"1.0.0 → 1.1.0", "compatible property-added", "payload.courier", "needs a minor version change"}},
		{"diff breaking", []string{"api", "diff", doc(base), doc(breaking)}, 1, []string{"BREAKING   property-removed", "payload.state", "consumers breaking", "VERSION    a breaking change needs a new major version: 2.0.0", "1 breaking changes"}},
		{"diff breaking, flags last", []string{"api", "diff", doc(base), doc(bumped), "-json"}, 1, []string{`"rule": "property-removed"`, `"breaking": true`}},
		{"diff proto", []string{"api", "diff", proto(base), proto(compatible)}, 0, []string{"field-added", "kitchen.proto:7"}},
		{"diff one file", []string{"api", "diff", doc(base)}, 2, []string{"want 2 to 2 arguments"}},
		{"diff missing file", []string{"api", "diff", doc(base), filepath.Join(base, "nope.yaml")}, 1, []string{"nope.yaml"}},
		{"diff two formats", []string{"api", "diff", doc(base), proto(base)}, 1, []string{"documents of different formats"}},
		{"diff -h", []string{"api", "diff", "-h"}, 0, []string{"usage: courier api diff"}},
		{"check compatible", []string{"api", "check", "-baseline", base, compatible}, 0, []string{"property-added", "field-added"}},
		{"check breaking", []string{"api", "check", "-baseline", base, breaking}, 1, []string{"a breaking change needs a new major version", "1 of 2 documents break the versioning rules"}},
		{"check bumped", []string{"api", "check", "-json", "-baseline", base, bumped}, 0, []string{`"passed": true`}},
		{"check without a baseline", []string{"api", "check", compatible}, 2, []string{"-baseline DIR is required"}},
		{"check a file", []string{"api", "check", "-baseline", doc(base), compatible}, 1, []string{"is not a directory"}},
		{"rules", []string{"api", "rules"}, 0, []string{"property-removed", "field-number-reused", "document-removed"}},
		{"no command", []string{"api"}, 2, []string{"usage: courier api"}},
		{"unknown command", []string{"api", "merge"}, 2, []string{`unknown command "merge"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(context.Background(), tc.args, &out, &errOut)
			if got := exitCode(err); got != tc.code {
				t.Errorf("exit %d (%v), want %d\n%s%s", got, err, tc.code, out.String(), errOut.String())
			}
			all := out.String() + errOut.String() + "\n" + errText(err)
			for _, s := range tc.says {
				if !strings.Contains(all, s) {
					t.Errorf("output does not say %q:\n%s", s, all)
				}
			}
		})
	}

	// The JSON of a check, for CI.
	var out bytes.Buffer
	if err := run(context.Background(), []string{"api", "check", "-json", "-baseline", base, compatible}, &out, &out); err != nil {
		t.Fatal(err)
	}
	var report struct {
		Passed  bool              `json:"passed"`
		Reports []*apispec.Report `json:"reports"`
	}
	if err := json.Unmarshal(out.Bytes(), &report); err != nil || !report.Passed || len(report.Reports) != 2 {
		t.Fatalf("check -json: %v %+v\n%s", err, report, out.String())
	}
	for _, r := range report.Reports {
		if r.Bump != apispec.BumpMinor || len(r.Changes) != 1 || r.Changes[0].Location == "" {
			t.Errorf("report %+v", r)
		}
	}

	// -update copies a passing version into the baseline, which then
	// passes against it unchanged.
	if err := run(context.Background(), []string{"api", "check", "-update", "-baseline", base, bumped}, &out, &out); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(doc(base))
	if err != nil || !bytes.Contains(got, []byte("version: 2.0.0")) {
		t.Fatalf("baseline after -update: %v\n%s", err, got)
	}
	out.Reset()
	if err := run(context.Background(), []string{"api", "check", "-baseline", base, bumped}, &out, &out); err != nil || !strings.Contains(out.String(), "0 changes") {
		t.Errorf("check after -update: %v\n%s", err, out.String())
	}
	// A failing check updates nothing.
	if err := run(context.Background(), []string{"api", "check", "-update", "-baseline", base, base}, &out, &out); err != nil {
		t.Fatal(err)
	}
	if err := run(context.Background(), []string{"api", "check", "-update", "-baseline", bumped, breaking}, &out, &out); exitCode(err) != 1 {
		t.Errorf("check -update of a failing version: %v", err)
	}
	if got, _ := os.ReadFile(doc(bumped)); !bytes.Contains(got, []byte("version: 2.0.0")) {
		t.Errorf("a failing check updated the baseline")
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
