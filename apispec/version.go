package apispec

import (
	"fmt"
	"strconv"
	"strings"
)

// semver is a semantic version, MAJOR.MINOR.PATCH with an optional
// pre-release and build (which the rules ignore but for ordering).
type semver struct {
	major, minor, patch int
	pre                 string
}

// parseVersion parses a semantic version; a leading v is accepted.
func parseVersion(s string) (semver, error) {
	v := strings.TrimPrefix(s, "v")
	v, _, _ = strings.Cut(v, "+")
	v, pre, _ := strings.Cut(v, "-")
	parts := strings.Split(v, ".")
	if len(parts) != 3 {
		return semver{}, fmt.Errorf("version %q is not a semantic version (MAJOR.MINOR.PATCH)", s)
	}
	var n [3]int
	for i, p := range parts {
		x, err := strconv.Atoi(p)
		if err != nil || x < 0 || (len(p) > 1 && p[0] == '0') {
			return semver{}, fmt.Errorf("version %q is not a semantic version (MAJOR.MINOR.PATCH)", s)
		}
		n[i] = x
	}
	return semver{major: n[0], minor: n[1], patch: n[2], pre: pre}, nil
}

func (v semver) String() string {
	s := fmt.Sprintf("%d.%d.%d", v.major, v.minor, v.patch)
	if v.pre != "" {
		s += "-" + v.pre
	}
	return s
}

// compare orders versions: -1, 0 or 1.
func (v semver) compare(w semver) int {
	for _, d := range [3]int{v.major - w.major, v.minor - w.minor, v.patch - w.patch} {
		if d != 0 {
			if d < 0 {
				return -1
			}
			return 1
		}
	}
	switch {
	case v.pre == w.pre:
		return 0
	case v.pre == "": // a release follows its pre-releases
		return 1
	case w.pre == "":
		return -1
	case v.pre < w.pre:
		return -1
	}
	return 1
}

// Bump is the least version increase a set of changes requires.
type Bump string

// The bumps, in increasing order.
const (
	BumpNone  Bump = "none"
	BumpPatch Bump = "patch"
	BumpMinor Bump = "minor"
	BumpMajor Bump = "major"
)

// requiredBump is what changes require: a major version for a breaking
// change, a minor one for a compatible change, nothing when nothing
// changed. Before 1.0.0 everything shifts down one place, as is usual:
// a breaking change needs a new minor version, a compatible one a patch.
func requiredBump(changes []Change) Bump {
	b := BumpNone
	for _, c := range changes {
		if c.Breaking {
			return BumpMajor
		}
		b = BumpMinor
	}
	return b
}

// versionProblem says what is wrong with going from version old to new
// when the changes require bump, or returns "". majorOnly means the
// versions carry only a major number (a .proto package's vN).
func versionProblem(old, new string, bump Bump, majorOnly bool) string {
	if old == "" || new == "" {
		return ""
	}
	ov, err := parseVersion(old)
	if err != nil {
		return err.Error()
	}
	nv, err := parseVersion(new)
	if err != nil {
		return err.Error()
	}
	if nv.compare(ov) < 0 {
		return fmt.Sprintf("the version went down from %s to %s", ov, nv)
	}
	if ov.major == 0 && !majorOnly { // 0.y.z: the minor number is the major one
		switch bump {
		case BumpMajor:
			bump = BumpMinor
		case BumpMinor:
			bump = BumpPatch
		}
	}
	majorUp := nv.major > ov.major
	minorUp := majorUp || (nv.major == ov.major && nv.minor > ov.minor)
	patchUp := minorUp || (nv.major == ov.major && nv.minor == ov.minor && nv.patch > ov.patch)
	switch {
	case bump == BumpMajor && !majorUp:
		return fmt.Sprintf("a breaking change needs a new major version: %s after %s, not %s", semver{major: ov.major + 1}, ov, nv)
	case majorOnly:
		return ""
	case bump == BumpMinor && ov.major == 0 && !minorUp:
		return fmt.Sprintf("a breaking change before 1.0.0 needs a new minor version: %s after %s, not %s", semver{minor: ov.minor + 1}, ov, nv)
	case bump == BumpMinor && !minorUp:
		return fmt.Sprintf("a compatible change needs at least a new minor version: %s after %s, not %s", semver{major: ov.major, minor: ov.minor + 1}, ov, nv)
	case bump == BumpPatch && !patchUp:
		return fmt.Sprintf("a compatible change before 1.0.0 needs at least a new patch version: %s after %s, not %s", semver{minor: ov.minor, patch: ov.patch + 1}, ov, nv)
	}
	return ""
}
