package apispec

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestVersionRules(t *testing.T) {
	for _, tc := range []struct {
		old, new  string
		bump      Bump
		majorOnly bool
		problem   string // what the version error says; "" for none
	}{
		{"1.2.3", "1.2.3", BumpNone, false, ""},
		{"1.2.3", "1.2.4", BumpNone, false, ""},
		{"1.2.3", "1.3.0", BumpMinor, false, ""},
		{"1.2.3", "2.0.0", BumpMinor, false, ""},
		{"1.2.3", "1.2.4", BumpMinor, false, "a compatible change needs at least a new minor version: 1.3.0"},
		{"1.2.3", "1.2.3", BumpMinor, false, "a compatible change needs at least a new minor version"},
		{"1.2.3", "2.0.0", BumpMajor, false, ""},
		{"1.2.3", "1.3.0", BumpMajor, false, "a breaking change needs a new major version: 2.0.0 after 1.2.3, not 1.3.0"},
		{"1.2.3", "1.2.2", BumpNone, false, "the version went down"},
		{"2.0.0-rc.1", "2.0.0", BumpNone, false, ""},
		{"2.0.0", "2.0.0-rc.1", BumpNone, false, "the version went down"},
		// Before 1.0.0, a breaking change needs a minor version and a
		// compatible one a patch.
		{"0.3.1", "0.4.0", BumpMajor, false, ""},
		{"0.3.1", "0.3.2", BumpMajor, false, "a breaking change before 1.0.0 needs a new minor version: 0.4.0"},
		{"0.3.1", "0.3.2", BumpMinor, false, ""},
		{"0.3.1", "0.3.1", BumpMinor, false, "needs at least a new patch version: 0.3.2"},
		// A .proto package's vN carries only the major version.
		{"1.0.0", "1.0.0", BumpMinor, true, ""},
		{"1.0.0", "1.0.0", BumpMajor, true, "a breaking change needs a new major version"},
		{"1.0", "1.1.0", BumpMinor, false, `version "1.0" is not a semantic version`},
		{"1.0.0", "v1.1.0", BumpMinor, false, ""},
		{"1.0.0", "01.1.0", BumpMinor, false, "not a semantic version"},
	} {
		got := versionProblem(tc.old, tc.new, tc.bump, tc.majorOnly)
		if (tc.problem == "") != (got == "") || !strings.Contains(got, tc.problem) {
			t.Errorf("%s → %s (%s): %q, want %q", tc.old, tc.new, tc.bump, got, tc.problem)
		}
	}
}

func asyncDocFS(t *testing.T, s *Spec) fstest.MapFS {
	t.Helper()
	doc, err := s.AsyncAPI()
	if err != nil {
		t.Fatal(err)
	}
	y, err := doc.YAML()
	if err != nil {
		t.Fatal(err)
	}
	return fstest.MapFS{"kitchen/asyncapi.yaml": {Data: y}}
}

type ticketV2 struct {
	TicketID string `json:"ticketId"`
	OrderID  string `json:"orderId"`
	Courier  string `json:"courier,omitempty"`
}

func (ticketV2) EventType() string { return "kitchen.TicketCreated" }

type ticketV1 struct {
	TicketID string `json:"ticketId"`
	OrderID  string `json:"orderId"`
}

func (ticketV1) EventType() string { return "kitchen.TicketCreated" }

type ticketV3 struct {
	TicketID string `json:"ticketId"`
}

func (ticketV3) EventType() string { return "kitchen.TicketCreated" }

func spec[T any](version string) *Spec {
	s := New("kitchen-service", version)
	Publishes[T](s, "Ticket")
	return s
}

func TestCheck(t *testing.T) {
	baseline := asyncDocFS(t, spec[ticketV1]("1.0.0"))
	for _, tc := range []struct {
		name    string
		current fstest.MapFS
		passes  bool
		says    string
	}{
		{"unchanged", asyncDocFS(t, spec[ticketV1]("1.0.0")), true, "0 changes"},
		{"compatible with a minor version", asyncDocFS(t, spec[ticketV2]("1.1.0")), true, "property-added"},
		{"compatible without one", asyncDocFS(t, spec[ticketV2]("1.0.1")), false, "a compatible change needs at least a new minor version: 1.1.0"},
		{"breaking with a major version", asyncDocFS(t, spec[ticketV3]("2.0.0")), true, "property-removed"},
		{"breaking without one", asyncDocFS(t, spec[ticketV3]("1.1.0")), false, "a breaking change needs a new major version: 2.0.0"},
		{"removed", fstest.MapFS{}, false, "document-removed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reports, err := Check(baseline, tc.current)
			if err != nil {
				t.Fatal(err)
			}
			var text strings.Builder
			for _, r := range reports {
				if err := r.WriteText(&text); err != nil {
					t.Fatal(err)
				}
			}
			if CheckPassed(reports) != tc.passes || !strings.Contains(text.String(), tc.says) {
				t.Errorf("passed %v, want %v; report:\n%s(want it to say %q)", CheckPassed(reports), tc.passes, text.String(), tc.says)
			}
		})
	}

	// A new document passes, files that are not API documents are skipped,
	// and a malformed baseline is an error naming it.
	current := asyncDocFS(t, spec[ticketV1]("1.0.0"))
	current["orders/openapi.json"] = &fstest.MapFile{Data: []byte(`{"openapi":"3.1.0","info":{"title":"o","version":"1.0.0"},"paths":{}}`)}
	current["package.json"] = &fstest.MapFile{Data: []byte(`{"name":"x"}`)}
	reports, err := Check(baseline, current)
	if err != nil || !CheckPassed(reports) || len(reports) != 2 || reports[1].Changes[0].Rule != "document-added" {
		t.Errorf("added document: %v %+v", err, reports)
	}
	bad := fstest.MapFS{"kitchen/asyncapi.yaml": {Data: []byte("asyncapi: 3.0.0\ninfo: {title: t}\n")}}
	if _, err := Check(bad, current); err == nil || !strings.Contains(err.Error(), "kitchen/asyncapi.yaml: /info") {
		t.Errorf("bad baseline: %v", err)
	}
}
