package message

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"
)

// IDs have Eventuate's form: two 16-digit hexadecimal numbers joined by a
// dash, "%016x-%016x". The high half is the Unix time in milliseconds shifted
// left by 16 bits plus a sequence number, so IDs sort by creation time within
// a process and never repeat there even when the clock steps back. The low
// half is a random number drawn once per process, which keeps processes
// apart.
const idLen = 33

var (
	idHigh atomic.Uint64 // last high half handed out
	idLow  = processNode()
)

func processNode() (node [16]byte) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		// crypto/rand never fails on supported platforms (Go 1.24+ it
		// crashes the program instead), so this is unreachable; fall back
		// to the clock rather than hand out a constant.
		binary.BigEndian.PutUint64(b[:], uint64(time.Now().UnixNano()))
	}
	putHex(node[:], binary.BigEndian.Uint64(b[:]))
	return node
}

// NewID returns a new, unique, time-ordered message ID. It is safe for
// concurrent use and does not block.
func NewID() string {
	now := uint64(time.Now().UnixMilli()) << 16
	var next uint64
	for {
		last := idHigh.Load()
		next = max(now, last+1)
		if idHigh.CompareAndSwap(last, next) {
			break
		}
	}
	var b [idLen]byte
	putHex(b[:16], next)
	b[16] = '-'
	copy(b[17:], idLow[:])
	return string(b[:])
}

const hexDigits = "0123456789abcdef"

// putHex writes v as exactly len(dst) lower-case hexadecimal digits.
func putHex(dst []byte, v uint64) {
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = hexDigits[v&0xf]
		v >>= 4
	}
}

// IDTime returns the creation time encoded in an ID made by NewID, to the
// millisecond. It fails for IDs of another form.
func IDTime(id string) (time.Time, error) {
	if len(id) != idLen || id[16] != '-' {
		return time.Time{}, fmt.Errorf("message id %q: not of the form %%016x-%%016x", id)
	}
	high, err := strconv.ParseUint(id[:16], 16, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("message id %q: %w", id, err)
	}
	return time.UnixMilli(int64(high >> 16)), nil
}
