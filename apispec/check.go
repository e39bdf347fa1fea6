package apispec

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
)

// ErrNotAPIDocument is wrapped by the error of a JSON or YAML file that is
// neither an AsyncAPI nor an OpenAPI document.
var ErrNotAPIDocument = errors.New("not an AsyncAPI or OpenAPI document")

// isDocumentFile reports whether a file name has an API document's
// extension.
func isDocumentFile(name string) bool {
	switch path.Ext(name) {
	case ".json", ".yaml", ".yml", ".proto":
		return true
	}
	return false
}

// Check compares every API document of a baseline (the last released
// versions, committed) with the file of the same path in current: each
// pair gives a Report, a document missing from current a Report with a
// breaking document-removed change, a new one in current a Report with a
// compatible document-added change. JSON and YAML files of current that
// are not API documents are skipped; those of the baseline must all be.
// The check passes when no Report has a VersionError.
func Check(baseline, current fs.FS) ([]*Report, error) {
	base, err := documentFiles(baseline, true)
	if err != nil {
		return nil, fmt.Errorf("apispec: baseline: %w", err)
	}
	cur, err := documentFiles(current, false)
	if err != nil {
		return nil, err
	}
	var reports []*Report
	for _, name := range sortedKeys(base) {
		old := base[name]
		new, ok := cur[name]
		if !ok {
			reports = append(reports, newReport(old, nil, []Change{{
				Rule: "document-removed", Location: name, Text: "the document is no longer in the current version",
				Breaking: true, Consumers: Breaking,
			}}, false))
			reports[len(reports)-1].VersionError = "the document was removed; keep it while its API is served, or remove it from the baseline with the API"
			continue
		}
		r, err := Diff(old, new)
		if err != nil {
			return nil, err
		}
		reports = append(reports, r)
	}
	for _, name := range sortedKeys(cur) {
		if _, ok := base[name]; !ok {
			reports = append(reports, newReport(nil, cur[name], []Change{{
				Rule: "document-added", Location: name, Text: "a new document", Consumers: Compatible,
			}}, false))
		}
	}
	sort.SliceStable(reports, func(i, j int) bool { return reports[i].VersionError != "" && reports[j].VersionError == "" })
	return reports, nil
}

// CheckPassed reports whether every report of a check follows the
// versioning rules.
func CheckPassed(reports []*Report) bool {
	for _, r := range reports {
		if r.VersionError != "" {
			return false
		}
	}
	return true
}

// documentFiles loads the API documents of fsys by path; strict refuses
// JSON and YAML files that are not API documents.
func documentFiles(fsys fs.FS, strict bool) (map[string]*Document, error) {
	docs := map[string]*Document{}
	err := fs.WalkDir(fsys, ".", func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() || !isDocumentFile(p) {
			return nil
		}
		doc, err := Load(fsys, p)
		if err != nil {
			if !strict && errors.Is(err, ErrNotAPIDocument) {
				return nil
			}
			return err
		}
		docs[p] = doc
		return nil
	})
	return docs, err
}
