package apispec

import (
	"fmt"
	"strings"

	"github.com/oasdiff/oasdiff/checker"
	"github.com/oasdiff/oasdiff/diff"
	"github.com/oasdiff/oasdiff/load"
)

// diffOpenAPI compares two OpenAPI documents with oasdiff's checker, every
// check at every level: its errors and warnings are breaking for the
// clients, its informational changes compatible. oasdiff reads the models
// without changing them; one comparison at a time reads a document's.
func diffOpenAPI(old, new *Document) (changes []Change, err error) {
	defer func() {
		if r := recover(); r != nil {
			changes, err = nil, fmt.Errorf("apispec: comparing %s with %s: oasdiff: %v", old.name, new.name, r)
		}
	}()
	first, second := old, new
	if first.seq > second.seq { // lock in one order
		first, second = second, first
	}
	first.mu.Lock()
	defer first.mu.Unlock()
	if second != first {
		second.mu.Lock()
		defer second.mu.Unlock()
	}
	s1 := &load.SpecInfo{Source: load.NewFileSource(old.name), Spec: old.openapi, Version: old.version}
	s2 := &load.SpecInfo{Source: load.NewFileSource(new.name), Spec: new.openapi, Version: new.version}
	d, sources, err := diff.GetWithOperationsSourcesMap(diff.NewConfig(), s1, s2)
	if err != nil {
		return nil, fmt.Errorf("apispec: comparing %s with %s: %w", old.name, new.name, err)
	}
	found := checker.CheckBackwardCompatibilityUntilLevel(checker.NewConfig(checker.GetAllChecks()), d, sources, checker.INFO)
	l := checker.NewDefaultLocalizer()
	changes = make([]Change, 0, len(found))
	for _, c := range found {
		if c.GetId() == "api-version-changed" { // the versioning rules read the versions
			continue
		}
		location := strings.TrimSpace(c.GetOperation() + " " + c.GetPath())
		if location == "" {
			section, element := c.Subject()
			location = strings.TrimSpace(section + " " + element)
		}
		e := Compatible
		if c.IsBreaking() {
			e = Breaking
		}
		var source string
		if s := c.GetRevisionSource(); s != nil && s.Line > 0 {
			source = fmt.Sprintf("%s:%d", s.File, s.Line)
		}
		changes = append(changes, Change{
			Rule:      c.GetId(),
			Location:  location,
			Source:    source,
			Text:      c.GetUncolorizedText(l),
			Breaking:  c.IsBreaking(),
			Consumers: e,
		})
	}
	return changes, nil
}
