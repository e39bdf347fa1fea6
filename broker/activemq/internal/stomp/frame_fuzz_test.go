package stomp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzDecode feeds the decoder bytes of any content, as a server or a
// man in the middle could send: it must return frames or an error, never
// panic or read past its limits, and a frame it returns must come back the
// same after Encode and Decode again.
func FuzzDecode(f *testing.F) {
	f.Add([]byte("MESSAGE\ndestination:/queue/a\nmessage-id:1\ncontent-length:3\n\nabc\x00"))
	f.Add([]byte("MESSAGE\nname\\cwith\\ncolon:v\\\\x\n\nbody without length\x00"))
	f.Add([]byte("\n\r\nRECEIPT\nreceipt-id:r1\n\n\x00"))
	f.Add([]byte("ERROR\nmessage:bad\ncontent-length:99999999999\n\n\x00"))
	f.Add([]byte("CONNECTED\nversion:1.2\nheart-beat:0,0\nserver:x:y\n\n\x00"))
	f.Add([]byte("MESSAGE\nbad\\q:escape\n\n\x00"))
	limits := Limits{MaxHeaderLine: 256, MaxHeaders: 16, MaxBody: 1024}
	f.Fuzz(func(t *testing.T, data []byte) {
		d := NewDecoder(bytes.NewReader(data), limits)
		for range 8 {
			fr, err := d.Decode()
			if err != nil {
				if !errors.Is(err, ErrMalformed) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("error %v is neither malformed nor the end of the input", err)
				}
				return
			}
			if len(fr.Body) > limits.MaxBody || len(fr.Headers) > limits.MaxHeaders {
				t.Fatalf("frame over the limits: %d headers, %d bytes of body", len(fr.Headers), len(fr.Body))
			}
			if fr.Command == "" || fr.Command == "CONNECT" || fr.Command == "CONNECTED" {
				continue // heart-beats; unescaped frames need not round-trip
			}
			var buf bytes.Buffer
			w := bufio.NewWriter(&buf)
			if err := Encode(w, fr); err != nil {
				t.Fatal(err)
			}
			w.Flush()
			again, err := NewDecoder(&buf, Limits{MaxHeaderLine: 4 << 10, MaxHeaders: 64, MaxBody: 4 << 10}).Decode()
			if err != nil {
				t.Fatalf("a decoded frame does not decode again after Encode: %v", err)
			}
			if again.Command != fr.Command || !bytes.Equal(again.Body, fr.Body) {
				t.Fatalf("round trip changed the frame: %q %q, then %q %q", fr.Command, fr.Body, again.Command, again.Body)
			}
			for _, h := range fr.Headers {
				if v, _ := again.Get(h.Name); v != fr.Value(h.Name) {
					t.Fatalf("round trip changed header %q: %q, then %q", h.Name, fr.Value(h.Name), v)
				}
			}
		}
	})
}
