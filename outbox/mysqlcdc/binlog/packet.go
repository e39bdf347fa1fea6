package binlog

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// maxPayload is the largest payload of one protocol packet; longer
// payloads continue in the next packets.
const maxPayload = 1<<24 - 1

// packetConn reads and writes protocol packets: a 3-byte length, a
// sequence number, then the payload.
type packetConn struct {
	conn net.Conn
	r    *bufio.Reader
	seq  uint8
	// idle, when set, bounds the wait for each packet.
	idle time.Duration
}

func newPacketConn(c net.Conn) *packetConn {
	return &packetConn{conn: c, r: bufio.NewReaderSize(c, 64<<10)}
}

// readPacket returns one logical packet, joining the physical packets of
// a payload longer than 16 MiB.
func (p *packetConn) readPacket() ([]byte, error) {
	var out []byte
	for {
		if p.idle > 0 {
			if err := p.conn.SetReadDeadline(time.Now().Add(p.idle)); err != nil {
				return nil, err
			}
		}
		var h [4]byte
		if _, err := io.ReadFull(p.r, h[:]); err != nil {
			return nil, fmt.Errorf("binlog: reading a packet header: %w", err)
		}
		n := int(uint32(h[0]) | uint32(h[1])<<8 | uint32(h[2])<<16)
		if h[3] != p.seq {
			return nil, fmt.Errorf("binlog: packet out of order: sequence %d, want %d", h[3], p.seq)
		}
		p.seq++
		start := len(out)
		out = append(out, make([]byte, n)...)
		if _, err := io.ReadFull(p.r, out[start:]); err != nil {
			return nil, fmt.Errorf("binlog: reading a packet of %d bytes: %w", n, err)
		}
		if n < maxPayload {
			return out, nil
		}
	}
}

// writePacket sends payload, split into packets of at most 16 MiB.
func (p *packetConn) writePacket(payload []byte) error {
	for {
		n := min(len(payload), maxPayload)
		buf := make([]byte, 4, 4+n)
		buf[0], buf[1], buf[2], buf[3] = byte(n), byte(n>>8), byte(n>>16), p.seq
		buf = append(buf, payload[:n]...)
		p.seq++
		if _, err := p.conn.Write(buf); err != nil {
			return fmt.Errorf("binlog: writing a packet: %w", err)
		}
		payload = payload[n:]
		if n < maxPayload {
			return nil
		}
	}
}

// command starts a new command: sequence numbers restart at zero.
func (p *packetConn) command(payload []byte) error {
	p.seq = 0
	return p.writePacket(payload)
}

// Packet markers.
const (
	okPacket  = 0x00
	eofPacket = 0xfe
	errPacket = 0xff
)

// ServerError is an error packet the server sent.
type ServerError struct {
	Code     uint16
	SQLState string
	Message  string
}

func (e *ServerError) Error() string {
	if e.SQLState != "" {
		return fmt.Sprintf("server error %d (%s): %s", e.Code, e.SQLState, e.Message)
	}
	return fmt.Sprintf("server error %d: %s", e.Code, e.Message)
}

// parseError decodes an ERR packet (its first byte is 0xff).
func parseError(b []byte) error {
	if len(b) < 3 || b[0] != errPacket {
		return errors.New("binlog: malformed error packet")
	}
	e := &ServerError{Code: binary.LittleEndian.Uint16(b[1:])}
	rest := b[3:]
	if len(rest) >= 6 && rest[0] == '#' {
		e.SQLState, rest = string(rest[1:6]), rest[6:]
	}
	e.Message = string(rest)
	return e
}

// reader decodes the protocol's integer and string encodings.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("binlog: truncated data reading %s", what)
	}
}

func (r *reader) bytes(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b) < n {
		r.fail(what)
		r.b = nil
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) uint(n int, what string) uint64 {
	b := r.bytes(n, what)
	var v uint64
	for i := len(b) - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v
}

func (r *reader) u8(what string) uint8   { return uint8(r.uint(1, what)) }
func (r *reader) u16(what string) uint16 { return uint16(r.uint(2, what)) }
func (r *reader) u32(what string) uint32 { return uint32(r.uint(4, what)) }
func (r *reader) u64(what string) uint64 { return r.uint(8, what) }

// lenenc reads a length-encoded integer.
func (r *reader) lenenc(what string) uint64 {
	switch first := r.u8(what); {
	case first < 0xfb:
		return uint64(first)
	case first == 0xfc:
		return r.uint(2, what)
	case first == 0xfd:
		return r.uint(3, what)
	case first == 0xfe:
		return r.uint(8, what)
	default:
		r.fail(what)
		return 0
	}
}

// nulString reads a NUL-terminated string.
func (r *reader) nulString(what string) string {
	if r.err != nil {
		return ""
	}
	for i, c := range r.b {
		if c == 0 {
			s := string(r.b[:i])
			r.b = r.b[i+1:]
			return s
		}
	}
	r.fail(what)
	return ""
}

// putLenenc appends a length-encoded integer.
func putLenenc(b []byte, v uint64) []byte {
	switch {
	case v < 0xfb:
		return append(b, byte(v))
	case v < 1<<16:
		return append(b, 0xfc, byte(v), byte(v>>8))
	case v < 1<<24:
		return append(b, 0xfd, byte(v), byte(v>>8), byte(v>>16))
	}
	return binary.LittleEndian.AppendUint64(append(b, 0xfe), v)
}
