package apispec

import (
	"errors"
	"fmt"
)

// ErrFormatMismatch means two documents compared are of different
// formats.
var ErrFormatMismatch = errors.New("apispec: documents of different formats")

// Diff compares the older version of a document with the newer one:
// every change, classified by the rules of the package documentation (for
// OpenAPI, oasdiff's), the least version increase they require and
// whether the newer version's number follows the versioning rules.
func Diff(old, new *Document) (*Report, error) {
	if old == nil || new == nil {
		return nil, errors.New("apispec: Diff of a nil document")
	}
	if old.format != new.format {
		return nil, fmt.Errorf("%w: %s is %s, %s is %s", ErrFormatMismatch, old.name, old.format, new.name, new.format)
	}
	var changes []Change
	var err error
	majorOnly := false
	switch old.format {
	case FormatAsyncAPI:
		changes, err = diffAsyncAPI(old.async, new.async)
	case FormatOpenAPI:
		changes, err = diffOpenAPI(old, new)
	case FormatProto:
		changes = diffProto(old.name, old.proto, new.name, new.proto)
		majorOnly = old.proto.majorOnly || new.proto.majorOnly
	}
	if err != nil {
		return nil, err
	}
	return newReport(old, new, changes, majorOnly), nil
}
