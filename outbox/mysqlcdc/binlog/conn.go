// Package binlog is a small MySQL/MariaDB replication client: it connects
// with the client/server protocol, registers as a replica and streams the
// binary log's events, decoded far enough to follow row changes.
//
// It speaks the handshake (protocol version 10) with mysql_native_password
// and caching_sha2_password (fast path, and full authentication with the
// server's RSA key), COM_REGISTER_SLAVE and COM_BINLOG_DUMP from a file
// and position or, on MariaDB, from a GTID position. It verifies CRC32
// event checksums and decodes FORMAT_DESCRIPTION, ROTATE, QUERY,
// TABLE_MAP, WRITE/UPDATE/DELETE_ROWS (v1 and v2), XID, GTID (MariaDB's
// and MySQL's), GTID_LIST and HEARTBEAT events. Integer, string, binary
// and floating-point column values are decoded; other types (temporal,
// decimal, bit, JSON) are returned as their raw bytes.
//
// TLS is not supported: connect over a trusted network or a local socket
// forward. MySQL's GTID auto-positioning (COM_BINLOG_DUMP_GTID) is not
// implemented; against MySQL, resume from a file and position.
//
// A Conn is used by one goroutine at a time.
package binlog

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// Capability flags.
const (
	capLongPassword   = 0x00000001
	capLongFlag       = 0x00000004
	capConnectWithDB  = 0x00000008
	capProtocol41     = 0x00000200
	capSSL            = 0x00000800
	capTransactions   = 0x00002000
	capSecureConn     = 0x00008000
	capPluginAuth     = 0x00080000
	capPluginAuthLenc = 0x00200000
)

// Commands.
const (
	comQuery          = 0x03
	comBinlogDump     = 0x12
	comRegisterSlave  = 0x15
	comQuit           = 0x01
	utf8mb4GeneralCI  = 45
	defaultMaxPacket  = 1 << 30
	handshakeProtocol = 10
)

// Config says how to connect.
type Config struct {
	// Addr is host:port.
	Addr     string
	User     string
	Password string
	// DialTimeout bounds connecting and the handshake (default 10s).
	DialTimeout time.Duration
}

// Conn is one connection to the server.
type Conn struct {
	cfg           Config
	pc            *packetConn
	serverVersion string
	connID        uint32
	caps          uint32
}

// Dial connects and authenticates.
func Dial(ctx context.Context, cfg Config) (*Conn, error) {
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 10 * time.Second
	}
	if cfg.Addr == "" {
		return nil, errors.New("binlog: Config.Addr is empty")
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("binlog: connecting to %s: %w", cfg.Addr, err)
	}
	c := &Conn{cfg: cfg, pc: newPacketConn(nc)}
	deadline, _ := ctx.Deadline()
	nc.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	err = c.handshake()
	if !stop() || err == nil && ctx.Err() != nil {
		err = errors.Join(err, ctx.Err())
	}
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("binlog: handshake with %s: %w", cfg.Addr, err)
	}
	nc.SetDeadline(time.Time{})
	return c, nil
}

// ServerVersion is the version string the server announced.
func (c *Conn) ServerVersion() string { return c.serverVersion }

// MariaDB reports whether the server is MariaDB.
func (c *Conn) MariaDB() bool { return strings.Contains(c.serverVersion, "MariaDB") }

// ConnectionID is the server's id of this connection.
func (c *Conn) ConnectionID() uint32 { return c.connID }

// handshake is what the server announces in its first packet.
type handshake struct {
	version  string
	connID   uint32
	caps     uint32
	scramble []byte
	plugin   string
}

func parseHandshake(b []byte) (*handshake, error) {
	if len(b) > 0 && b[0] == errPacket {
		return nil, parseError(b)
	}
	r := &reader{b: b}
	if v := r.u8("protocol version"); r.err == nil && v != handshakeProtocol {
		return nil, fmt.Errorf("binlog: protocol version %d is not supported", v)
	}
	h := &handshake{version: r.nulString("server version"), connID: r.u32("connection id")}
	h.scramble = append(h.scramble, r.bytes(8, "scramble")...)
	r.bytes(1, "filler")
	h.caps = uint32(r.u16("capabilities"))
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) == 0 {
		return h, nil
	}
	r.u8("character set")
	r.u16("status")
	h.caps |= uint32(r.u16("capabilities")) << 16
	authLen := int(r.u8("scramble length"))
	r.bytes(10, "reserved")
	if h.caps&capSecureConn != 0 {
		n := max(13, authLen-8)
		part := r.bytes(n, "scramble")
		if len(part) > 0 && part[len(part)-1] == 0 {
			part = part[:len(part)-1]
		}
		h.scramble = append(h.scramble, part...)
	}
	if h.caps&capPluginAuth != 0 && r.err == nil {
		h.plugin = r.nulString("plugin name")
		if r.err != nil { // some servers omit the terminating NUL
			r.err, h.plugin = nil, strings.TrimRight(string(r.b), "\x00")
		}
	}
	return h, r.err
}

func (c *Conn) handshake() error {
	b, err := c.pc.readPacket()
	if err != nil {
		return err
	}
	h, err := parseHandshake(b)
	if err != nil {
		return err
	}
	const need = capProtocol41 | capSecureConn
	if h.caps&need != need {
		return fmt.Errorf("binlog: server %q lacks the 4.1 protocol", h.version)
	}
	c.serverVersion, c.connID = h.version, h.connID
	c.caps = capLongPassword | capLongFlag | capProtocol41 | capTransactions | capSecureConn
	if h.caps&capPluginAuth != 0 {
		c.caps |= capPluginAuth
	}
	if h.caps&capPluginAuthLenc != 0 {
		c.caps |= capPluginAuthLenc
	}
	plugin := h.plugin
	if plugin == "" {
		plugin = nativePassword
	}
	resp, err := authResponse(plugin, h.scramble, c.cfg.Password)
	if err != nil {
		// Answer as native and let the server switch us.
		plugin = nativePassword
		resp = scrambleNative(h.scramble, c.cfg.Password)
	}
	c.pc.seq = 1
	if err := c.pc.writePacket(c.handshakeResponse(plugin, resp)); err != nil {
		return err
	}
	return c.authenticate(plugin, h.scramble)
}

// handshakeResponse builds HandshakeResponse41.
func (c *Conn) handshakeResponse(plugin string, auth []byte) []byte {
	p := binary.LittleEndian.AppendUint32(nil, c.caps)
	p = binary.LittleEndian.AppendUint32(p, defaultMaxPacket)
	p = append(p, utf8mb4GeneralCI)
	p = append(p, make([]byte, 23)...)
	p = append(append(p, c.cfg.User...), 0)
	if c.caps&capPluginAuthLenc != 0 {
		p = append(putLenenc(p, uint64(len(auth))), auth...)
	} else {
		p = append(append(p, byte(len(auth))), auth...)
	}
	if c.caps&capPluginAuth != 0 {
		p = append(append(p, plugin...), 0)
	}
	return p
}

// Exec runs a statement that returns no rows, such as SET.
func (c *Conn) Exec(ctx context.Context, query string) error {
	return c.roundTrip(ctx, append([]byte{comQuery}, query...), "query "+query)
}

// roundTrip sends one command and reads its OK or ERR answer.
func (c *Conn) roundTrip(ctx context.Context, cmd []byte, what string) error {
	stop := c.bound(ctx)
	defer stop()
	if err := c.pc.command(cmd); err != nil {
		return err
	}
	b, err := c.pc.readPacket()
	if err != nil {
		return fmt.Errorf("binlog: %s: %w", what, err)
	}
	switch {
	case len(b) > 0 && b[0] == okPacket:
		return nil
	case len(b) > 0 && b[0] == errPacket:
		return fmt.Errorf("binlog: %s: %w", what, parseError(b))
	}
	return fmt.Errorf("binlog: %s: expected OK, got a result set; use database/sql for queries", what)
}

// bound makes ctx's end interrupt the connection's I/O until stop.
func (c *Conn) bound(ctx context.Context) (stop func()) {
	if d, ok := ctx.Deadline(); ok {
		c.pc.conn.SetDeadline(d)
	}
	after := context.AfterFunc(ctx, func() { c.pc.conn.SetDeadline(time.Unix(1, 0)) })
	return func() {
		after()
		c.pc.conn.SetDeadline(time.Time{})
	}
}

// RegisterReplica announces this connection as replica serverID
// (COM_REGISTER_SLAVE), as a replica does before it asks for the log.
func (c *Conn) RegisterReplica(ctx context.Context, serverID uint32, host string) error {
	p := binary.LittleEndian.AppendUint32([]byte{comRegisterSlave}, serverID)
	for _, s := range []string{host, c.cfg.User, ""} {
		s = s[:min(len(s), 255)]
		p = append(append(p, byte(len(s))), s...)
	}
	p = binary.LittleEndian.AppendUint16(p, 0) // port
	p = binary.LittleEndian.AppendUint32(p, 0) // replication rank
	p = binary.LittleEndian.AppendUint32(p, 0) // source id
	return c.roundTrip(ctx, p, "registering as replica")
}

// Close ends the connection.
func (c *Conn) Close() error {
	c.pc.conn.SetWriteDeadline(time.Now().Add(time.Second))
	c.pc.command([]byte{comQuit})
	return c.pc.conn.Close()
}
