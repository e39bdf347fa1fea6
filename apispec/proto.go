package apispec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"regexp"
	"strconv"
	"strings"

	"github.com/bufbuild/protocompile"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// protoFile is a compiled .proto file.
type protoFile struct {
	fd protoreflect.FileDescriptor
	// majorOnly is set when the version comes from the package's vN suffix
	// alone, which says nothing of minor versions.
	majorOnly bool
}

var (
	protoVersionComment = regexp.MustCompile(`(?m)^\s*//\s*api-version:\s*(\S+)\s*$`)
	protoPackageMajor   = regexp.MustCompile(`\.v([0-9]+)$`)
)

// parseProto compiles a .proto file with protocompile; fsys, if not nil,
// holds the files it imports, by their import paths.
func parseProto(name string, data []byte, fsys fs.FS) (doc *Document, err error) {
	defer func() {
		if r := recover(); r != nil {
			doc, err = nil, &DocumentError{File: name, Err: fmt.Errorf("%w: %v", ErrMalformed, r)}
		}
	}()
	accessor := func(p string) (io.ReadCloser, error) {
		if p == name {
			return io.NopCloser(bytes.NewReader(data)), nil
		}
		if fsys == nil {
			return nil, fmt.Errorf("%s: imports are resolved only for files loaded from a directory: %w", p, fs.ErrNotExist)
		}
		return fsys.Open(p)
	}
	compiler := protocompile.Compiler{
		Resolver:       protocompile.WithStandardImports(&protocompile.SourceResolver{Accessor: accessor}),
		SourceInfoMode: protocompile.SourceInfoStandard,
		MaxParallelism: 1,
	}
	files, err := compiler.Compile(context.Background(), name)
	if err != nil {
		return nil, &DocumentError{File: name, Err: fmt.Errorf("%w: %w", ErrMalformed, err)}
	}
	fd := files.FindFileByPath(name)
	if fd == nil {
		return nil, &DocumentError{File: name, Err: fmt.Errorf("%w: not compiled", ErrMalformed)}
	}
	version, majorOnly, err := protoVersion(fd, data)
	if err != nil {
		return nil, &DocumentError{File: name, Err: err}
	}
	return newDocument(&Document{name: name, format: FormatProto, version: version, text: data, proto: &protoFile{fd: fd, majorOnly: majorOnly}}), nil
}

// protoVersion finds a .proto file's API version: an "// api-version:
// X.Y.Z" comment line, or else the major version of a package that ends
// in vN. When both are there they must agree.
func protoVersion(fd protoreflect.FileDescriptor, data []byte) (string, bool, error) {
	var pkgMajor string
	if m := protoPackageMajor.FindStringSubmatch(string(fd.Package())); m != nil {
		pkgMajor = m[1]
	}
	m := protoVersionComment.FindSubmatch(data)
	if m == nil {
		if pkgMajor == "" {
			return "", false, errors.New("no API version: add a line \"// api-version: 1.0.0\" or end the package name in a major version (.v1)")
		}
		return pkgMajor + ".0.0", true, nil
	}
	version := string(m[1])
	v, err := parseVersion(version)
	if err != nil {
		return "", false, fmt.Errorf("api-version comment: %w", err)
	}
	if pkgMajor != "" && strconv.Itoa(v.major) != strings.TrimLeft(pkgMajor, "0") && !(v.major == 0 && strings.Trim(pkgMajor, "0") == "") {
		return "", false, fmt.Errorf("api-version %s does not match the major version of package %s", version, fd.Package())
	}
	return version, false, nil
}
