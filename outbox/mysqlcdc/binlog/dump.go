package binlog

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"
)

// DumpConfig says where the stream starts and how it is kept alive.
type DumpConfig struct {
	// ServerID identifies this replica to the source; it must differ
	// from the server_id of every server and replica of the topology.
	ServerID uint32
	// Hostname is reported to the source (SHOW SLAVE HOSTS).
	Hostname string
	// File and Position start the stream (Position 4 is the first event
	// of a file). An empty File starts at the first file the source has.
	File     string
	Position uint32
	// GTID, on MariaDB, starts the stream after these GTIDs (one per
	// replication domain, as in gtid_binlog_pos); File and Position are
	// then ignored.
	GTID string
	// Heartbeat asks the source to send a heartbeat event when it has
	// sent nothing for this long (0: no heartbeats). The stream then
	// fails when nothing arrives for three periods.
	Heartbeat time.Duration
}

// ErrStreamEnded means the source closed the stream.
var ErrStreamEnded = errors.New("binlog: the source ended the stream")

// Dump asks the source for its binary log and returns the stream of
// events. The connection is the stream's from then on: close the Stream,
// not the Conn.
func (c *Conn) Dump(ctx context.Context, dc DumpConfig) (*Stream, error) {
	if dc.ServerID == 0 {
		return nil, errors.New("binlog: DumpConfig.ServerID must not be 0")
	}
	stmts := []string{
		// Announce that this client verifies checksums, so the source
		// sends them as it writes them (MySQL 8.0.26+ reads the new name).
		"SET @master_binlog_checksum = @@global.binlog_checksum, @source_binlog_checksum = @@global.binlog_checksum",
	}
	if dc.Heartbeat > 0 {
		stmts = append(stmts, fmt.Sprintf("SET @master_heartbeat_period = %d, @source_heartbeat_period = %[1]d", dc.Heartbeat.Nanoseconds()))
	}
	if c.MariaDB() {
		// Capability 4 (MARIA_SLAVE_CAPABILITY_MINE): MariaDB sends its
		// own GTID events instead of rewriting them as BEGIN.
		stmts = append(stmts, "SET @mariadb_slave_capability = 4")
		if dc.GTID != "" {
			if strings.ContainsAny(dc.GTID, "'\\") {
				return nil, fmt.Errorf("binlog: invalid GTID position %q", dc.GTID)
			}
			stmts = append(stmts, "SET @slave_connect_state = '"+dc.GTID+"'",
				"SET @slave_gtid_strict_mode = 0", "SET @slave_gtid_ignore_duplicates = 0")
		}
	} else if dc.GTID != "" {
		return nil, errors.New("binlog: starting from a GTID position needs MariaDB; give MySQL a file and position")
	}
	for _, q := range stmts {
		if err := c.Exec(ctx, q); err != nil {
			return nil, err
		}
	}
	if err := c.RegisterReplica(ctx, dc.ServerID, dc.Hostname); err != nil {
		return nil, err
	}
	cmd := []byte{comBinlogDump}
	file, pos := dc.File, dc.Position
	if dc.GTID != "" {
		file, pos = "", 4
	}
	if pos < 4 {
		pos = 4
	}
	cmd = binary.LittleEndian.AppendUint32(cmd, pos)
	cmd = binary.LittleEndian.AppendUint16(cmd, 0) // flags: block at the end
	cmd = binary.LittleEndian.AppendUint32(cmd, dc.ServerID)
	cmd = append(cmd, file...)
	stop := c.bound(ctx)
	err := c.pc.command(cmd)
	stop()
	if err != nil {
		return nil, err
	}
	if dc.Heartbeat > 0 {
		c.pc.idle = 3 * dc.Heartbeat
	}
	s := &Stream{conn: c, events: make(chan []byte, 256), done: make(chan struct{})}
	s.wg.Add(1)
	go s.read()
	return s, nil
}

// Stream is a running binary log dump. Next is used by one goroutine at a
// time; Close may be called from any.
type Stream struct {
	conn   *Conn
	events chan []byte
	done   chan struct{}
	wg     sync.WaitGroup
	err    error // set before events is closed
	once   sync.Once
}

// read owns the connection's reads until the stream fails or is closed.
func (s *Stream) read() {
	defer s.wg.Done()
	defer close(s.events)
	for {
		b, err := s.conn.pc.readPacket()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && s.conn.pc.idle > 0 {
				err = fmt.Errorf("binlog: nothing from the source for %v, not even a heartbeat: connection presumed dead: %w", s.conn.pc.idle, err)
			}
			s.err = err
			return
		}
		switch {
		case len(b) == 0:
			s.err = errors.New("binlog: empty packet in the stream")
			return
		case b[0] == errPacket:
			s.err = fmt.Errorf("binlog: the source stopped the stream: %w", parseError(b))
			return
		case b[0] == eofPacket && len(b) < 9:
			s.err = ErrStreamEnded
			return
		case b[0] != okPacket:
			s.err = fmt.Errorf("binlog: unexpected packet 0x%02x in the stream", b[0])
			return
		}
		select {
		case s.events <- b[1:]:
		case <-s.done:
			return
		}
	}
}

// Next returns the next event's bytes, to be decoded with a Parser. It
// fails when ctx ends, the stream breaks or the stream was closed.
func (s *Stream) Next(ctx context.Context) ([]byte, error) {
	select {
	case b, ok := <-s.events:
		if ok {
			return b, nil
		}
		select {
		case <-s.done:
			return nil, net.ErrClosed
		default:
		}
		if s.err == nil {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, s.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Close ends the stream and its connection and waits for the reader.
func (s *Stream) Close() error {
	var err error
	s.once.Do(func() {
		close(s.done)
		err = s.conn.pc.conn.Close()
		s.wg.Wait()
	})
	return err
}
