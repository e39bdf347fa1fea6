package relay

import (
	"encoding/json"
	"unicode/utf8"

	"github.com/courier-go/courier/message"
)

// decodeHeaders decodes the headers column, a JSON object of strings, as
// json.Unmarshal into message.Headers does. The Writer writes plain
// objects whose strings need no escapes; those are read here without
// reflection, everything else by encoding/json.
func decodeHeaders(s string) (message.Headers, error) {
	if h, ok := plainHeaders(s); ok {
		return h, nil
	}
	var h message.Headers
	if err := json.Unmarshal([]byte(s), &h); err != nil {
		return nil, err
	}
	return h, nil
}

// plainHeaders reads s if it is an object whose keys and values are
// strings without escapes, control characters or invalid UTF-8, with
// JSON's white space between tokens; otherwise it reports false.
func plainHeaders(s string) (message.Headers, bool) {
	i := skipSpace(s, 0)
	if i >= len(s) || s[i] != '{' {
		return nil, false
	}
	h := message.Headers{}
	i = skipSpace(s, i+1)
	if i < len(s) && s[i] == '}' {
		return h, skipSpace(s, i+1) == len(s)
	}
	for {
		k, next, ok := plainString(s, i)
		if !ok {
			return nil, false
		}
		i = skipSpace(s, next)
		if i >= len(s) || s[i] != ':' {
			return nil, false
		}
		v, next, ok := plainString(s, skipSpace(s, i+1))
		if !ok {
			return nil, false
		}
		h[k] = v
		i = skipSpace(s, next)
		if i >= len(s) {
			return nil, false
		}
		switch s[i] {
		case ',':
			i = skipSpace(s, i+1)
		case '}':
			return h, skipSpace(s, i+1) == len(s)
		default:
			return nil, false
		}
	}
}

// plainString reads the string at s[i:], which needs no unescaping, and
// returns it and the index after its closing quote.
func plainString(s string, i int) (string, int, bool) {
	if i >= len(s) || s[i] != '"' {
		return "", 0, false
	}
	for j := i + 1; j < len(s); j++ {
		switch c := s[j]; {
		case c == '"':
			v := s[i+1 : j]
			return v, j + 1, utf8.ValidString(v)
		case c == '\\' || c < 0x20:
			return "", 0, false
		}
	}
	return "", 0, false
}

func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}
