package apispec

import (
	"fmt"
	"io"
	"strings"
)

// Effect is what a change does to one side of an API.
type Effect string

// The effects of a change on a side.
const (
	Compatible Effect = "compatible"
	Breaking   Effect = "breaking"
)

// Change is one difference between two versions of a document.
type Change struct {
	// Rule names the rule that classified the change (the package
	// documentation lists them), e.g. "property-removed", or for OpenAPI
	// the oasdiff rule, e.g. "response-property-removed".
	Rule string `json:"rule"`
	// Location says where: the message, the operation or the protobuf
	// element, and the path in a payload.
	Location string `json:"location"`
	// Source is the place in the files: a JSON pointer in the newer
	// document (the older one for what was removed), or file:line.
	Source string `json:"source,omitempty"`
	// Text says what changed.
	Text string `json:"text"`
	// Breaking reports whether the change breaks the other side of the
	// API: the consumers of what the service sends, answers and serves,
	// the publishers of what it receives.
	Breaking bool `json:"breaking"`
	// Consumers and Publishers are the change's effect on the readers and
	// on the writers of a message; for OpenAPI and protobuf, Consumers is
	// its effect on clients and Publishers is empty.
	Consumers  Effect `json:"consumers"`
	Publishers Effect `json:"publishers,omitempty"`
}

// Report is the comparison of two versions of a document.
type Report struct {
	Old        string   `json:"old"` // file names; empty for a document that is new
	New        string   `json:"new"` // or removed
	Format     Format   `json:"format"`
	OldVersion string   `json:"oldVersion,omitempty"`
	NewVersion string   `json:"newVersion,omitempty"`
	Changes    []Change `json:"changes"`
	// Bump is the least version increase the changes require.
	Bump Bump `json:"bump"`
	// VersionError says how the new version breaks the versioning rules
	// (a breaking change needs a major version, a compatible one a minor
	// version), or is empty.
	VersionError string `json:"versionError,omitempty"`
}

// Breaking reports whether any change is breaking.
func (r *Report) Breaking() bool {
	for _, c := range r.Changes {
		if c.Breaking {
			return true
		}
	}
	return false
}

func newReport(old, new *Document, changes []Change, majorOnly bool) *Report {
	r := &Report{Changes: changes}
	if r.Changes == nil {
		r.Changes = []Change{}
	}
	if old != nil {
		r.Old, r.Format, r.OldVersion = old.name, old.format, old.version
	}
	if new != nil {
		r.New, r.Format, r.NewVersion = new.name, new.format, new.version
	}
	r.Bump = requiredBump(r.Changes)
	r.VersionError = versionProblem(r.OldVersion, r.NewVersion, r.Bump, majorOnly)
	return r
}

// WriteText writes the report for people: a line for the documents and
// their versions, one for each change, and the version verdict.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	name := r.New
	switch {
	case r.New == "":
		name = r.Old
	case r.Old != "" && r.Old != r.New:
		name = r.Old + " → " + r.New
	}
	breaking := 0
	for _, c := range r.Changes {
		if c.Breaking {
			breaking++
		}
	}
	fmt.Fprintf(&b, "%s (%s %s → %s): %d changes, %d breaking; needs a %s version change\n",
		name, r.Format, orNone(r.OldVersion), orNone(r.NewVersion), len(r.Changes), breaking, r.Bump)
	for _, c := range r.Changes {
		verdict := "compatible"
		if c.Breaking {
			verdict = "BREAKING"
		}
		fmt.Fprintf(&b, "  %-10s %-32s %s: %s\n", verdict, c.Rule, c.Location, c.Text)
		sides := "consumers " + string(c.Consumers)
		if c.Publishers != "" {
			sides += ", publishers " + string(c.Publishers)
		}
		if c.Source != "" {
			sides += "; at " + c.Source
		}
		fmt.Fprintf(&b, "  %-10s %-32s (%s)\n", "", "", sides)
	}
	if r.VersionError != "" {
		fmt.Fprintf(&b, "  VERSION    %s\n", r.VersionError)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func orNone(v string) string {
	if v == "" {
		return "-"
	}
	return v
}
