package eventuate

import (
	"encoding/binary"
	"errors"
	"testing"
)

// TestParseBatch reads the batch fixture, written by the SBE schema of
// Eventuate's CDC (testdata/README.md).
func TestParseBatch(t *testing.T) {
	b := fixture(t, "batch.sbe")
	if !IsBatch(b) || IsBatch(fixture(t, "event.envelope")) {
		t.Fatal("IsBatch does not tell a batch from an envelope")
	}
	msgs, err := ParseBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	want := []BatchMessage{
		{"1511300065921", string(fixture(t, "event.envelope"))},
		{"7f6e2a5c-3b1d-4f0e-9a8b-2c4d6e8f0a1b", string(fixture(t, "command.envelope"))},
	}
	if len(msgs) != len(want) || msgs[0] != want[0] || msgs[1] != want[1] {
		t.Fatalf("ParseBatch = %q, want %q", msgs, want)
	}
	// Cut anywhere, or with a byte more, it is refused.
	for _, bad := range [][]byte{b[:40], b[:len(b)-1], append(append([]byte{}, b...), 0), b[:len(b)/2]} {
		if _, err := ParseBatch(bad); !errors.Is(err, ErrMalformedBatch) {
			t.Errorf("ParseBatch of %d bytes: %v", len(bad), err)
		}
	}
	// Another template of the schema is refused.
	other := append([]byte{}, b...)
	binary.LittleEndian.PutUint16(other[34:], 2)
	if _, err := ParseBatch(other); !errors.Is(err, ErrMalformedBatch) {
		t.Errorf("template 2: %v", err)
	}
}

// FuzzParseBatch: any bytes after the batch magic are a batch or an error
// wrapping ErrMalformedBatch, never a panic.
//
//	go test -fuzz FuzzParseBatch ./internal/eventuate/
func FuzzParseBatch(f *testing.F) {
	b := fixture(f, "batch.sbe")
	f.Add(b[len(batchMagic):])
	f.Add(b[len(batchMagic) : len(b)-3])
	f.Add([]byte{0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 255, 255, 255, 255})
	f.Fuzz(func(t *testing.T, rest []byte) {
		msgs, err := ParseBatch(append([]byte(batchMagic), rest...))
		if err != nil {
			if !errors.Is(err, ErrMalformedBatch) {
				t.Fatalf("error %v does not wrap ErrMalformedBatch", err)
			}
			return
		}
		if len(msgs) > len(rest)/8 {
			t.Fatalf("%d messages from %d bytes", len(msgs), len(rest))
		}
	})
}
