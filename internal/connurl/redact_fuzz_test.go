package connurl_test

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/courier-go/courier/internal/connurl"
)

// FuzzRedact writes a secret into connection strings of every form
// Courier reads (a URL built by net/url, the same written by hand and
// possibly malformed, a NATS token, a list of URLs, a MySQL DSN, a query
// parameter, a keyword/value string) and checks that neither the text
// nor an error quoting the secret in any encoding shows it.
//
//	go test -fuzz FuzzRedact ./internal/connurl/
func FuzzRedact(f *testing.F) {
	f.Add(uint8(0), "user", "s3cret", "host:4222")
	f.Add(uint8(1), "user", "p@ss/w?rd#1", "h:1")
	f.Add(uint8(1), "user", "12/34", "h")
	f.Add(uint8(2), "user", "pa:ss@w", "h:3306")
	f.Add(uint8(3), "", "s3cr%65t", "h")
	f.Add(uint8(4), "", `it's`, "h")
	f.Add(uint8(5), "", "t0ken", "h:4222")
	f.Add(uint8(6), "u", "s3cret", "h:4222")
	f.Add(uint8(1), "u", "s3cret", "h:bad:port")
	f.Fuzz(func(t *testing.T, form uint8, user, secret, host string) {
		if strings.ContainsAny(user, ":@/?#%") || strings.ContainsAny(host, "@/?#,%") || strings.Contains(connurl.Mask, secret) {
			return // not where a secret could be told apart
		}
		var raw string
		switch form % 7 {
		case 0:
			raw = (&url.URL{Scheme: "nats", User: url.UserPassword(user, secret), Host: host}).String()
		case 1:
			raw = "amqp://" + user + ":" + secret + "@" + host + "/"
		case 2:
			raw = user + ":" + secret + "@tcp(" + host + ")/db"
		case 3:
			raw = "postgres://" + host + "/db?sslmode=verify-full&password=" + url.QueryEscape(secret)
		case 4:
			raw = "host=" + host + " password='" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(secret) + "' sslmode=require"
		case 5:
			raw = (&url.URL{Scheme: "nats", User: url.User(secret), Host: host}).String()
		case 6:
			if strings.Contains(secret, ",") {
				return // a list's separator: ambiguous, as for its client
			}
			raw = "nats://a:b@h1:4222," + (&url.URL{Scheme: "nats", User: url.UserPassword(user, secret), Host: host}).String()
		}
		forms := []string{secret, url.QueryEscape(secret), url.PathEscape(secret), url.UserPassword(user, secret).String()}
		if d, err := url.PathUnescape(secret); err == nil && form%7 == 1 {
			forms = append(forms, d)
		}
		msg := raw + " | " + strings.Join(forms, " | ")
		if _, err := url.Parse(raw); err != nil {
			msg += " | " + err.Error()
		}
		base := errors.New(msg)
		err := connurl.Redact(base, raw)
		if !errors.Is(err, base) {
			t.Fatal("Redact hides the error it wraps")
		}
		for _, got := range []string{connurl.Redacted(raw), err.Error(), connurl.RedactText(msg, raw)} {
			for _, s := range forms[:1] {
				if len(s) >= 4 && strings.Contains(got, s) && s != user {
					t.Fatalf("secret %q shows in %q (from %q)", s, got, raw)
				}
			}
			if form%7 <= 2 && strings.Contains(got, ":"+secret+"@") {
				t.Fatalf("password %q shows in %q (from %q)", secret, got, raw)
			}
		}
	})
}
