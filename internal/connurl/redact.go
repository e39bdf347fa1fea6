package connurl

import (
	"cmp"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// Mask replaces every secret Redact and Redacted hide.
const Mask = "xxxxx"

// minBare is the length from which a secret is hidden wherever it shows;
// a shorter one is hidden only where a URL, a DSN or a parameter puts it
// (between ':' and '@', before '@', after '='), lest every 'p' of a
// message become Mask.
const minBare = 4

// Redact returns err with the secrets of raw (see Redacted) replaced by
// Mask in its text; errors.Is and errors.As see err unchanged.
func Redact(err error, raw string) error { return NewRedactor(raw).Error(err) }

// Redacted returns raw as it was written, with its secrets replaced by
// Mask. Unlike url.URL.Redacted it keeps "//" before an empty host, as in
// dns://, and it reads more than well-formed URLs. The secrets are:
//
//   - a URL's password, as written, decoded, and in each of the forms a
//     URL encoder gives it, so that a message quoting the URL in another
//     encoding hides it too (a password that repeats the user name is
//     hidden where it stands after the name only, so that mentions of the
//     user stay);
//   - a user name given without a password, which NATS takes as a token;
//   - the values of parameters whose names contain "pass", "secret" or
//     "token" (password=, sslpassword=, token=...), in a URL's query or a
//     keyword/value connection string (host=h password=p);
//   - a DSN's password (user:pass@tcp(host)/db);
//   - where the text does not parse as a URL, or parses without user
//     information although it holds an '@', everything between "://" and
//     the last '@' (the user information of a malformed URL).
//
// A comma-separated list of URLs, as NATS takes, has each one's secrets
// hidden.
func Redacted(raw string) string { return NewRedactor(raw).String(raw) }

// RedactText returns text with the secrets of raw (see Redacted) replaced
// by Mask, for log lines and metric labels that quote a URL.
func RedactText(text, raw string) string { return NewRedactor(raw).String(text) }

// A Redactor hides the secrets of some connection strings (see Redacted)
// in texts, errors and log records. A nil Redactor hides nothing. It is
// safe for concurrent use.
type Redactor struct{ r *strings.Replacer }

// NewRedactor returns the Redactor of the secrets of raws, nil if they
// hold none.
func NewRedactor(raws ...string) *Redactor {
	var s secrets
	for _, raw := range raws {
		s.collect(raw)
	}
	return s.redactor()
}

// String returns s with the secrets replaced by Mask. The replacer runs
// until the text no longer changes (a replacement may join a secret's
// neighbours into it again), a few times at most.
func (r *Redactor) String(s string) string {
	if r == nil {
		return s
	}
	for range 4 {
		next := r.r.Replace(s)
		if next == s {
			break
		}
		s = next
	}
	return s
}

// Error returns err with the secrets replaced by Mask in its text, nil
// for nil; errors.Is and errors.As see err unchanged.
func (r *Redactor) Error(err error) error {
	if err == nil || r == nil {
		return err
	}
	return redactedError{err, r}
}

// redactedError hides secrets in the text of the error it wraps.
type redactedError struct {
	err error
	r   *Redactor
}

func (e redactedError) Error() string { return e.r.String(e.err.Error()) }
func (e redactedError) Unwrap() error { return e.err }

// secretParam finds the parameters that hold secrets, in a query or a
// keyword/value string; group 1 is the value, quoted or not.
var secretParam = regexp.MustCompile(`(?i)(?:^|[?&;\s])[a-z0-9_.-]*(?:pass|secret|token)[a-z0-9_.-]*\s*=\s*('(?:[^'\\]|\\.)*'|[^&;\s#]*)`)

// quotedEscape is an escaped character of a quoted keyword value.
var quotedEscape = regexp.MustCompile(`\\(.)`)

// keywordValue matches a keyword/value connection string (host=h ...),
// which has no user information.
var keywordValue = regexp.MustCompile(`^\s*[A-Za-z_]+\s*=`)

// kind says where a secret stands, which decides in which contexts it is
// hidden.
type kind uint8

const (
	password kind = 1 << iota // between ':' and '@'
	token                     // between "//" and '@'
	param                     // after '='
	// bare: also wherever it shows, if at least minBare long. A password
	// that repeats the user name is not: the name shows anyway, and
	// hiding it everywhere would hide every mention of the user.
	bare
)

// collect records the secrets of raw.
func (s *secrets) collect(raw string) {
	if strings.Count(raw, "://") > 1 {
		for _, part := range strings.Split(raw, ",") {
			s.fromURL(part)
		}
	} else {
		s.fromURL(raw)
	}
	for _, m := range secretParam.FindAllStringSubmatch(raw, -1) {
		v := m[1]
		s.add(v, param|bare)
		if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
			v = quotedEscape.ReplaceAllString(v[1:len(v)-1], "$1")
		}
		s.add(v, param|bare)
	}
}

// secrets collects the forms of each secret found, with their kinds.
type secrets struct {
	forms map[string]kind
}

// add records the secret v, as written, with its decoded and encoded
// forms.
func (s *secrets) add(v string, k kind) {
	if v == "" {
		return
	}
	if s.forms == nil {
		s.forms = map[string]kind{}
	}
	forms := []string{v}
	for _, unescape := range []func(string) (string, error){url.PathUnescape, url.QueryUnescape} {
		if d, err := unescape(v); err == nil {
			forms = append(forms, d)
		}
	}
	for _, d := range slices.Clone(forms) {
		forms = append(forms, url.QueryEscape(d), url.PathEscape(d), url.UserPassword("", d).String()[1:])
	}
	for _, f := range forms {
		if f != "" {
			s.forms[f] |= k
		}
	}
}

// addPassword records the password of user.
func (s *secrets) addPassword(user, pass string) {
	if pass == user {
		s.add(pass, password)
		return
	}
	s.add(pass, password|bare)
}

// fromURL records the secrets of the user information of raw, a URL or
// a DSN.
func (s *secrets) fromURL(raw string) {
	// The authority starts after "://", or after a leading "//" (a URL
	// without a scheme).
	start := -1
	if i := strings.Index(raw, "://"); i >= 0 {
		start = i + 3
	} else if strings.HasPrefix(raw, "//") {
		start = 2
	}
	// A DSN (user:pass@tcp(host)/db): the user information ends at the
	// last '@'. A password may hold "://", so a DSN's network decides.
	if j := strings.LastIndex(raw, "@"); j > 0 {
		net := raw[j+1:]
		dsn := strings.HasPrefix(net, "tcp(") || strings.HasPrefix(net, "unix(") ||
			start < 0 && (strings.HasPrefix(net, "/") || !keywordValue.MatchString(raw))
		if user, pass, ok := strings.Cut(raw[:j], ":"); ok && dsn {
			s.addPassword(user, pass)
		}
	}
	if start < 0 {
		return
	}
	u, err := url.Parse(raw)
	written := writtenUserinfo(raw[start:])
	if err == nil && u.User != nil {
		user, pass, hasPass := strings.Cut(written, ":")
		if hasPass {
			s.addPassword(user, pass)
		} else {
			s.add(user, token|bare)
		}
		if p, ok := u.User.Password(); ok {
			s.addPassword(u.User.Username(), p)
		} else {
			s.add(u.User.Username(), token|bare)
		}
	}
	// Malformed, or an '@' past the user information a parser finds (a
	// password with '/', '?' or '#' not percent-encoded): all that might
	// be user information goes.
	if j := strings.LastIndex(raw, "@"); j > start && (err != nil || u.User == nil || j > start+len(written)) {
		ui := raw[start:j]
		s.add(ui, token|bare)
		if user, pass, ok := strings.Cut(ui, ":"); ok {
			s.addPassword(user, pass)
		}
	}
}

// writtenUserinfo returns the user information of a parsed URL's text
// after "://", as written: what precedes the last '@' of the authority.
func writtenUserinfo(rest string) string {
	rest, _, _ = strings.Cut(rest, "#")
	rest, _, _ = strings.Cut(rest, "?")
	rest, _, _ = strings.Cut(rest, "/")
	if j := strings.LastIndex(rest, "@"); j >= 0 {
		return rest[:j]
	}
	return ""
}

// redactor builds the replacer of the secrets: each form in its contexts,
// and bare where it is long enough, longer forms first.
func (s *secrets) redactor() *Redactor {
	if len(s.forms) == 0 {
		return nil
	}
	pairs := map[string]string{}
	for f, k := range s.forms {
		if k&password != 0 {
			pairs[":"+f+"@"] = ":" + Mask + "@"
		}
		if k&token != 0 {
			pairs["//"+f+"@"] = "//" + Mask + "@"
		}
		if k&param != 0 {
			pairs["="+f] = "=" + Mask
		}
		if k&bare != 0 && len(f) >= minBare {
			pairs[f] = Mask
		}
	}
	olds := slices.SortedFunc(maps.Keys(pairs), func(a, b string) int {
		return cmp.Or(cmp.Compare(len(b), len(a)), strings.Compare(a, b))
	})
	var args []string
	for _, o := range olds {
		args = append(args, o, pairs[o])
	}
	return &Redactor{strings.NewReplacer(args...)}
}
