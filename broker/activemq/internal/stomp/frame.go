// Package stomp is a STOMP 1.2 client: the frame codec and a connection
// with receipts, subscriptions and heart-beats, as much of the protocol as
// package activemq uses. No STOMP client module is available to the
// project, and the protocol is small: frames are a command line, header
// lines and a body ended by a NUL byte.
package stomp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Frame is one STOMP frame. Headers keep their order; a name repeated
// takes its first value, as STOMP 1.2 says.
type Frame struct {
	Command string
	Headers []Header
	Body    []byte
}

// Header is one header line.
type Header struct{ Name, Value string }

// Get returns the first value of the header name, and whether it is there.
func (f *Frame) Get(name string) (string, bool) {
	for _, h := range f.Headers {
		if h.Name == name {
			return h.Value, true
		}
	}
	return "", false
}

// Value returns the first value of the header name, or "".
func (f *Frame) Value(name string) string {
	v, _ := f.Get(name)
	return v
}

// Add appends a header.
func (f *Frame) Add(name, value string) { f.Headers = append(f.Headers, Header{name, value}) }

// Limits bound what the decoder reads, so that a peer cannot make it hold
// unbounded memory.
type Limits struct {
	// MaxHeaderLine bounds one header line, escaped; ActiveMQ refuses
	// lines over 10 KiB.
	MaxHeaderLine int
	// MaxHeaders bounds the number of header lines of one frame.
	MaxHeaders int
	// MaxBody bounds a frame's body.
	MaxBody int
}

// DefaultLimits are ActiveMQ's own (wireFormat defaults) with a 16 MiB body.
var DefaultLimits = Limits{MaxHeaderLine: 10 << 10, MaxHeaders: 1000, MaxBody: 16 << 20}

// ErrMalformed wraps every reason the decoder refuses a frame.
var ErrMalformed = errors.New("stomp: malformed frame")

// escapes the characters STOMP 1.2 escapes in header names and values.
var escaper = strings.NewReplacer(`\`, `\\`, "\r", `\r`, "\n", `\n`, ":", `\c`)

// Encode writes f to w. Header names and values are escaped, except in
// CONNECT and CONNECTED frames, as STOMP 1.2 requires. A frame with a body
// gets a content-length header unless it has one.
func Encode(w *bufio.Writer, f *Frame) error {
	escape := f.Command != "CONNECT" && f.Command != "CONNECTED"
	w.WriteString(f.Command)
	w.WriteByte('\n')
	hasLength := false
	for _, h := range f.Headers {
		if h.Name == "content-length" {
			hasLength = true
		}
		if escape {
			escaper.WriteString(w, h.Name)
			w.WriteByte(':')
			escaper.WriteString(w, h.Value)
		} else {
			w.WriteString(h.Name)
			w.WriteByte(':')
			w.WriteString(h.Value)
		}
		w.WriteByte('\n')
	}
	if !hasLength && (len(f.Body) > 0 || f.Command == "SEND") {
		w.WriteString("content-length:")
		w.WriteString(strconv.Itoa(len(f.Body)))
		w.WriteByte('\n')
	}
	w.WriteByte('\n')
	w.Write(f.Body)
	return w.WriteByte(0)
}

// HeaderLineLen returns the length of the header line name:value as Encode
// writes it, without the line feed.
func HeaderLineLen(name, value string) int {
	return escapedLen(name) + 1 + escapedLen(value)
}

func escapedLen(s string) int {
	n := len(s)
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\', '\r', '\n', ':':
			n++
		}
	}
	return n
}

// Decoder reads frames.
type Decoder struct {
	r      *bufio.Reader
	limits Limits
}

// NewDecoder returns a Decoder that reads from r within limits.
func NewDecoder(r io.Reader, limits Limits) *Decoder {
	return &Decoder{r: bufio.NewReaderSize(r, 64<<10), limits: limits}
}

// Decode reads the next frame. A heart-beat (an empty line between frames)
// is returned as a Frame with an empty Command. Errors other than the
// reader's wrap ErrMalformed.
func (d *Decoder) Decode() (*Frame, error) {
	line, err := d.line(d.limits.MaxHeaderLine)
	if err != nil {
		return nil, err
	}
	if line == "" {
		return &Frame{}, nil // heart-beat
	}
	f := &Frame{Command: line}
	unescape := line != "CONNECT" && line != "CONNECTED"
	for {
		line, err := d.line(d.limits.MaxHeaderLine)
		if err != nil {
			return nil, err
		}
		if line == "" {
			break
		}
		if len(f.Headers) >= d.limits.MaxHeaders {
			return nil, fmt.Errorf("%w: %s frame with more than %d headers", ErrMalformed, f.Command, d.limits.MaxHeaders)
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("%w: %s frame: header line without a colon", ErrMalformed, f.Command)
		}
		if unescape {
			if name, err = unescapeHeader(name); err != nil {
				return nil, err
			}
			if value, err = unescapeHeader(value); err != nil {
				return nil, err
			}
		}
		f.Headers = append(f.Headers, Header{name, value})
	}
	if v, ok := f.Get("content-length"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%w: %s frame: content-length %q", ErrMalformed, f.Command, v)
		}
		if n > d.limits.MaxBody {
			return nil, fmt.Errorf("%w: %s frame: body of %d bytes, over the limit of %d", ErrMalformed, f.Command, n, d.limits.MaxBody)
		}
		f.Body = make([]byte, n)
		if _, err := io.ReadFull(d.r, f.Body); err != nil {
			return nil, noEOF(err)
		}
		b, err := d.r.ReadByte()
		if err != nil {
			return nil, noEOF(err)
		}
		if b != 0 {
			return nil, fmt.Errorf("%w: %s frame: no NUL after content-length bytes", ErrMalformed, f.Command)
		}
		return f, nil
	}
	var body bytes.Buffer
	for {
		chunk, err := d.r.ReadSlice(0)
		if body.Len()+len(chunk) > d.limits.MaxBody+1 {
			return nil, fmt.Errorf("%w: %s frame: body over the limit of %d bytes", ErrMalformed, f.Command, d.limits.MaxBody)
		}
		body.Write(chunk)
		if err == nil {
			break
		}
		if err != bufio.ErrBufferFull {
			return nil, noEOF(err)
		}
	}
	f.Body = body.Bytes()[:body.Len()-1]
	return f, nil
}

// line reads one line, without its line feed (or CR LF), of at most max
// bytes.
func (d *Decoder) line(max int) (string, error) {
	var buf []byte
	for {
		chunk, err := d.r.ReadSlice('\n')
		if len(buf)+len(chunk) > max+2 {
			return "", fmt.Errorf("%w: a line over %d bytes", ErrMalformed, max)
		}
		buf = append(buf, chunk...)
		if err == nil {
			break
		}
		if err != bufio.ErrBufferFull {
			if len(buf) > 0 {
				return "", noEOF(err)
			}
			return "", err
		}
	}
	buf = buf[:len(buf)-1]
	if n := len(buf); n > 0 && buf[n-1] == '\r' {
		buf = buf[:n-1]
	}
	return string(buf), nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func unescapeHeader(s string) (string, error) {
	if !strings.ContainsRune(s, '\\') {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		i++
		if i == len(s) {
			return "", fmt.Errorf("%w: header ends with a backslash", ErrMalformed)
		}
		switch s[i] {
		case '\\':
			b.WriteByte('\\')
		case 'r':
			b.WriteByte('\r')
		case 'n':
			b.WriteByte('\n')
		case 'c':
			b.WriteByte(':')
		default:
			return "", fmt.Errorf("%w: undefined escape \\%c in a header", ErrMalformed, s[i])
		}
	}
	return b.String(), nil
}
