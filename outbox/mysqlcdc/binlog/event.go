package binlog

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"strings"
)

// EventType is a binary log event's type code.
type EventType uint8

// Event types the package knows by name. MariaDB's own types start at 160.
const (
	QueryEvent             EventType = 2
	StopEvent              EventType = 3
	RotateEvent            EventType = 4
	IntvarEvent            EventType = 5
	RandEvent              EventType = 13
	UserVarEvent           EventType = 14
	FormatDescriptionEvent EventType = 15
	XIDEvent               EventType = 16
	TableMapEvent          EventType = 19
	WriteRowsEventV1       EventType = 23
	UpdateRowsEventV1      EventType = 24
	DeleteRowsEventV1      EventType = 25
	IncidentEvent          EventType = 26
	HeartbeatEvent         EventType = 27
	RowsQueryEvent         EventType = 29
	WriteRowsEventV2       EventType = 30
	UpdateRowsEventV2      EventType = 31
	DeleteRowsEventV2      EventType = 32
	GTIDLogEvent           EventType = 33 // MySQL
	AnonymousGTIDLogEvent  EventType = 34 // MySQL
	PreviousGTIDsLogEvent  EventType = 35 // MySQL
	TransactionPayload     EventType = 40 // MySQL: compressed transaction
	HeartbeatEventV2       EventType = 41 // MySQL 8.0.26+
	MariaAnnotateRows      EventType = 160
	MariaBinlogCheckpoint  EventType = 161
	MariaGTIDEvent         EventType = 162
	MariaGTIDListEvent     EventType = 163
	MariaStartEncryption   EventType = 164
	MariaQueryCompressed   EventType = 165
	MariaWriteRowsCompV1   EventType = 166
	MariaDeleteRowsCompV2  EventType = 171
)

func (t EventType) String() string {
	names := map[EventType]string{
		QueryEvent: "QUERY", StopEvent: "STOP", RotateEvent: "ROTATE", FormatDescriptionEvent: "FORMAT_DESCRIPTION",
		XIDEvent: "XID", TableMapEvent: "TABLE_MAP", WriteRowsEventV1: "WRITE_ROWS_V1", UpdateRowsEventV1: "UPDATE_ROWS_V1",
		DeleteRowsEventV1: "DELETE_ROWS_V1", HeartbeatEvent: "HEARTBEAT", WriteRowsEventV2: "WRITE_ROWS_V2",
		UpdateRowsEventV2: "UPDATE_ROWS_V2", DeleteRowsEventV2: "DELETE_ROWS_V2", GTIDLogEvent: "GTID",
		AnonymousGTIDLogEvent: "ANONYMOUS_GTID", PreviousGTIDsLogEvent: "PREVIOUS_GTIDS", TransactionPayload: "TRANSACTION_PAYLOAD",
		HeartbeatEventV2: "HEARTBEAT_V2", MariaAnnotateRows: "ANNOTATE_ROWS", MariaBinlogCheckpoint: "BINLOG_CHECKPOINT",
		MariaGTIDEvent: "MARIADB_GTID", MariaGTIDListEvent: "MARIADB_GTID_LIST", MariaStartEncryption: "START_ENCRYPTION",
	}
	if n, ok := names[t]; ok {
		return n
	}
	return fmt.Sprintf("EVENT_%d", uint8(t))
}

// HeaderSize is the size of the common event header (binlog version 4).
const HeaderSize = 19

// FlagArtificial marks an event the server made up for the stream (a fake
// ROTATE at the start); its LogPos is not a position in the file.
const FlagArtificial = 0x20

// Header is the common header of every event.
type Header struct {
	Timestamp uint32
	Type      EventType
	ServerID  uint32
	EventSize uint32
	// LogPos is the position just after the event in its file (0 for
	// artificial events).
	LogPos uint32
	Flags  uint16
}

// Event is one decoded event. Body is one of *FormatDescription, *Rotate,
// *Query, *TableMap, *Rows, *XID, *GTID, *GTIDList, *Heartbeat, or nil for
// types the package does not decode.
type Event struct {
	Header Header
	Body   any
}

// Checksum algorithms of FORMAT_DESCRIPTION.
const (
	ChecksumOff   = 0
	ChecksumCRC32 = 1
)

// FormatDescription describes the events that follow it.
type FormatDescription struct {
	BinlogVersion     uint16
	ServerVersion     string
	CreateTime        uint32
	HeaderLength      uint8
	PostHeaderLengths []byte // indexed by event type - 1
	ChecksumAlgorithm uint8
}

func (f *FormatDescription) postHeader(t EventType, def int) int {
	if i := int(t) - 1; f != nil && i >= 0 && i < len(f.PostHeaderLengths) {
		return int(f.PostHeaderLengths[i])
	}
	return def
}

// Rotate names the next log file.
type Rotate struct {
	Position uint64
	NextFile string
}

// Query is a statement: BEGIN, COMMIT, DDL, or DML in statement format.
type Query struct {
	ThreadID  uint32
	ExecTime  uint32
	ErrorCode uint16
	Schema    string
	Query     string
}

// XID commits a transaction.
type XID struct{ XID uint64 }

// GTID starts a transaction (a group of events). On MariaDB Domain,
// ServerID and Sequence are set; on MySQL SID and Sequence.
type GTID struct {
	MariaDB  bool
	Domain   uint32
	ServerID uint32
	Sequence uint64
	// Flags are MariaDB's GTID flags; FlagStandalone means a single
	// statement with no COMMIT or XID after it (DDL).
	Flags uint8
	SID   [16]byte
}

// MariaDB GTID flags.
const (
	GTIDFlagStandalone    = 1
	GTIDFlagGroupCommitID = 2
)

// Standalone reports a group of one event with no XID or COMMIT after it.
func (g *GTID) Standalone() bool { return g.MariaDB && g.Flags&GTIDFlagStandalone != 0 }

// String formats the GTID as the server does: domain-server-sequence on
// MariaDB, uuid:sequence on MySQL.
func (g *GTID) String() string {
	if g.MariaDB {
		return fmt.Sprintf("%d-%d-%d", g.Domain, g.ServerID, g.Sequence)
	}
	h := hex.EncodeToString(g.SID[:])
	return fmt.Sprintf("%s-%s-%s-%s-%s:%d", h[:8], h[8:12], h[12:16], h[16:20], h[20:], g.Sequence)
}

// GTIDList is MariaDB's list of the last GTID of each domain, sent at the
// start of each file.
type GTIDList struct{ GTIDs []GTID }

// Heartbeat is sent while the source has nothing new; the header's LogPos
// is the current position in LogFile.
type Heartbeat struct{ LogFile string }

// ErrChecksum means an event's CRC32 did not match its bytes.
var ErrChecksum = fmt.Errorf("binlog: event checksum mismatch")

// Parser decodes a stream's events. It keeps the format description and
// the table maps that later events need, so one Parser reads one stream.
type Parser struct {
	format *FormatDescription
	tables map[uint64]*TableMap
}

// NewParser returns a parser for a new stream.
func NewParser() *Parser { return &Parser{tables: map[uint64]*TableMap{}} }

// Table returns the last table map of id.
func (p *Parser) Table(id uint64) *TableMap { return p.tables[id] }

// Parse decodes one event (the bytes after the stream's OK marker).
func (p *Parser) Parse(data []byte) (*Event, error) {
	if len(data) < HeaderSize {
		return nil, fmt.Errorf("binlog: event of %d bytes is shorter than its header", len(data))
	}
	r := &reader{b: data}
	h := Header{Timestamp: r.u32(""), Type: EventType(r.u8("")), ServerID: r.u32(""), EventSize: r.u32(""),
		LogPos: r.u32(""), Flags: r.u16("")}
	if int(h.EventSize) != len(data) {
		return nil, fmt.Errorf("binlog: %v event says %d bytes, has %d", h.Type, h.EventSize, len(data))
	}
	ev := &Event{Header: h}
	body := data[HeaderSize:]
	if h.Type == FormatDescriptionEvent {
		f, err := parseFormat(body)
		if err != nil {
			return nil, err
		}
		if f.ChecksumAlgorithm == ChecksumCRC32 && !validCRC(data) {
			return nil, fmt.Errorf("%w: %v at %d", ErrChecksum, h.Type, h.LogPos)
		}
		p.format, p.tables = f, map[uint64]*TableMap{}
		ev.Body = f
		return ev, nil
	}
	switch {
	case p.format == nil:
		// Before the first FORMAT_DESCRIPTION (the fake ROTATE): strip a
		// checksum if the event carries a valid one.
		if len(data) >= HeaderSize+4 && validCRC(data) {
			body = body[:len(body)-4]
		}
	case p.format.ChecksumAlgorithm == ChecksumCRC32:
		if len(body) < 4 || !validCRC(data) {
			return nil, fmt.Errorf("%w: %v event ending at %d", ErrChecksum, h.Type, h.LogPos)
		}
		body = body[:len(body)-4]
	}
	var err error
	ev.Body, err = p.parseBody(h, body)
	if err != nil {
		return nil, fmt.Errorf("binlog: %v event ending at %d: %w", h.Type, h.LogPos, err)
	}
	return ev, nil
}

func validCRC(data []byte) bool {
	n := len(data) - 4
	return n >= 0 && crc32.ChecksumIEEE(data[:n]) == binary.LittleEndian.Uint32(data[n:])
}

func parseFormat(b []byte) (*FormatDescription, error) {
	r := &reader{b: b}
	f := &FormatDescription{BinlogVersion: r.u16("binlog version")}
	f.ServerVersion = strings.TrimRight(string(r.bytes(50, "server version")), "\x00")
	f.CreateTime = r.u32("create time")
	f.HeaderLength = r.u8("header length")
	if r.err != nil {
		return nil, fmt.Errorf("binlog: FORMAT_DESCRIPTION: %w", r.err)
	}
	if f.BinlogVersion != 4 || f.HeaderLength != HeaderSize {
		return nil, fmt.Errorf("binlog: binary log version %d with %d-byte headers is not supported", f.BinlogVersion, f.HeaderLength)
	}
	// Servers since MySQL 5.6.1 and MariaDB 5.3 end the event with the
	// checksum algorithm and a 4-byte checksum.
	if len(r.b) < 5 {
		return nil, fmt.Errorf("binlog: FORMAT_DESCRIPTION without a checksum algorithm (server %q is too old)", f.ServerVersion)
	}
	f.PostHeaderLengths = r.b[: len(r.b)-5 : len(r.b)-5]
	f.ChecksumAlgorithm = r.b[len(r.b)-5]
	if f.ChecksumAlgorithm != ChecksumOff && f.ChecksumAlgorithm != ChecksumCRC32 {
		return nil, fmt.Errorf("binlog: unknown checksum algorithm %d", f.ChecksumAlgorithm)
	}
	return f, nil
}

func (p *Parser) parseBody(h Header, b []byte) (any, error) {
	r := &reader{b: b}
	switch h.Type {
	case RotateEvent:
		rot := &Rotate{Position: r.u64("position"), NextFile: string(r.b)}
		return rot, r.err
	case QueryEvent:
		q := &Query{ThreadID: r.u32("thread id"), ExecTime: r.u32("exec time")}
		schemaLen := int(r.u8("schema length"))
		q.ErrorCode = r.u16("error code")
		varsLen := int(r.u16("status variables length"))
		if post := p.format.postHeader(QueryEvent, 13); post > 13 {
			r.bytes(post-13, "post-header")
		}
		r.bytes(varsLen, "status variables")
		q.Schema = string(r.bytes(schemaLen, "schema"))
		r.bytes(1, "schema terminator")
		q.Query = string(r.b)
		return q, r.err
	case XIDEvent:
		x := &XID{XID: r.u64("xid")}
		return x, r.err
	case TableMapEvent:
		return p.parseTableMap(r)
	case WriteRowsEventV1, UpdateRowsEventV1, DeleteRowsEventV1, WriteRowsEventV2, UpdateRowsEventV2, DeleteRowsEventV2:
		return p.parseRows(h.Type, r)
	case MariaGTIDEvent:
		g := &GTID{MariaDB: true, ServerID: h.ServerID, Sequence: r.u64("sequence"), Domain: r.u32("domain")}
		g.Flags = r.u8("flags")
		return g, r.err
	case GTIDLogEvent, AnonymousGTIDLogEvent:
		r.u8("flags")
		g := &GTID{}
		copy(g.SID[:], r.bytes(16, "sid"))
		g.Sequence = r.u64("gno")
		return g, r.err
	case MariaGTIDListEvent:
		n := int(r.u32("count") & (1<<28 - 1))
		l := &GTIDList{}
		for range n {
			if r.err != nil {
				break
			}
			l.GTIDs = append(l.GTIDs, GTID{MariaDB: true, Domain: r.u32("domain"), ServerID: r.u32("server id"), Sequence: r.u64("sequence")})
		}
		return l, r.err
	case HeartbeatEvent:
		return &Heartbeat{LogFile: string(b)}, nil
	case HeartbeatEventV2:
		// Tagged fields (MySQL 8.0.26+): 1 log file name, 2 position.
		hb := &Heartbeat{}
		for len(r.b) > 0 && r.err == nil {
			tag := r.u8("tag")
			v := r.bytes(int(r.lenenc("length")), "value")
			if tag == 1 {
				hb.LogFile = string(v)
			}
		}
		return hb, r.err
	case TransactionPayload, MariaQueryCompressed, MariaStartEncryption:
		return nil, fmt.Errorf("%v events are not supported: turn off binary log compression/encryption (binlog_transaction_compression, log_bin_compress, encrypt_binlog)", h.Type)
	}
	if h.Type >= MariaWriteRowsCompV1 && h.Type <= MariaDeleteRowsCompV2 {
		return nil, fmt.Errorf("compressed row events are not supported: set log_bin_compress = OFF")
	}
	return nil, nil
}
