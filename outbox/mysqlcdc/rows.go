package mysqlcdc

import (
	"fmt"
	"strings"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/courier-go/courier/outbox"
	"github.com/courier-go/courier/outbox/internal/relay"
)

// layout is where the relay finds its columns in a row of the message
// table, by ordinal position.
type layout struct {
	columns                           int
	id, destination, headers, payload int
	// eventuate is set for Eventuate's table (WithEventuateTable), with
	// its published and dbid columns (dbid -1 in application-id mode).
	eventuate       *outbox.EventuateTable
	published, dbid int
}

// check verifies a TABLE_MAP of the outbox table against the layout: as
// many columns, the relay's columns logged as strings, and, where the
// server logs column names (binlog_row_metadata = FULL), the same names.
func (l *layout) check(tm *replication.TableMapEvent) error {
	if len(tm.ColumnType) != l.columns {
		return fmt.Errorf("%w: the binary log has %d columns for %s.message, information_schema %d", ErrColumnLayout, len(tm.ColumnType), tm.Schema, l.columns)
	}
	for _, c := range []struct {
		name string
		i    int
	}{{"id", l.id}, {"destination", l.destination}, {"headers", l.headers}, {"payload", l.payload}} {
		if c.i < 0 || c.i >= len(tm.ColumnType) {
			return fmt.Errorf("%w: the binary log has %d columns for %s.message, none for %s", ErrColumnLayout, len(tm.ColumnType), tm.Schema, c.name)
		}
		if !stringColumn(tm, c.i) {
			return fmt.Errorf("%w: column %s of %s.message is logged as type %d, not as a string", ErrColumnLayout, c.name, tm.Schema, tm.ColumnType[c.i])
		}
		if c.i < len(tm.ColumnName) && !strings.EqualFold(string(tm.ColumnName[c.i]), c.name) {
			return fmt.Errorf("%w: column %d of %s.message is %s in the binary log, %s in information_schema", ErrColumnLayout, c.i+1, tm.Schema, tm.ColumnName[c.i], c.name)
		}
	}
	return nil
}

// stringColumn reports whether column i of tm is logged as a string: the
// CHAR, VARCHAR, TEXT and BLOB families (not ENUM and SET, which are
// logged as strings with their real type in the metadata).
func stringColumn(tm *replication.TableMapEvent, i int) bool {
	switch tm.ColumnType[i] {
	case gomysql.MYSQL_TYPE_VARCHAR, gomysql.MYSQL_TYPE_VAR_STRING, gomysql.MYSQL_TYPE_BLOB,
		gomysql.MYSQL_TYPE_TINY_BLOB, gomysql.MYSQL_TYPE_MEDIUM_BLOB, gomysql.MYSQL_TYPE_LONG_BLOB:
		return true
	case gomysql.MYSQL_TYPE_STRING:
		if i < len(tm.ColumnMeta) {
			real := byte(tm.ColumnMeta[i] >> 8)
			return real != gomysql.MYSQL_TYPE_ENUM && real != gomysql.MYSQL_TYPE_SET
		}
		return true
	}
	return false
}

// row picks the relay's columns out of a row that go-mysql decoded from
// a WRITE_ROWS event of a table check accepted. A value is a string or
// []byte; NULL reads as empty (the row is then dead-lettered if it cannot
// be published). Any other value, or a row shorter than the layout, is
// an error: the table changed under the relay.
func (l *layout) row(values []any) (relay.Row, error) {
	var row relay.Row
	var err error
	text := func(name string, i int) string {
		if err != nil {
			return ""
		}
		if i >= len(values) {
			err = fmt.Errorf("%w: a row of %d columns has no column %s (%d)", ErrColumnLayout, len(values), name, i+1)
			return ""
		}
		switch v := values[i].(type) {
		case string:
			return v
		case []byte:
			return string(v)
		case nil:
			return ""
		default:
			err = fmt.Errorf("%w: column %s holds a %T, not a string", ErrColumnLayout, name, v)
			return ""
		}
	}
	row.ID = text("id", l.id)
	row.Destination = text("destination", l.destination)
	row.Headers = text("headers", l.headers)
	if err == nil && l.payload < len(values) {
		if b, ok := values[l.payload].([]byte); ok {
			row.Payload = b
		} else {
			row.Payload = []byte(text("payload", l.payload))
		}
	} else {
		text("payload", l.payload)
	}
	return row, err
}

// decodeRows returns the decoder of rows events the replication client
// uses instead of go-mysql's own: it decodes the rows of schema's message
// table only (the reader ignores the others' rows), and refuses, instead
// of decoding, an event whose row image would take no byte, on which
// go-mysql's decoder appends empty rows until memory runs out, or which
// names more columns than its table has. A panic of the decoder is
// returned as an error.
func decodeRows(schema string) func(*replication.RowsEvent, []byte) error {
	return func(e *replication.RowsEvent, data []byte) (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("mysqlcdc: a rows event of %d bytes the decoder cannot read (it panicked: %v)", len(data), p)
			}
		}()
		pos, err := e.DecodeHeader(data)
		if err != nil {
			return err
		}
		if e.Table == nil || string(e.Table.Schema) != schema || string(e.Table.Table) != "message" {
			return nil
		}
		if e.ColumnCount == 0 || e.ColumnCount > uint64(len(e.Table.ColumnType)) {
			return fmt.Errorf("mysqlcdc: a rows event of %s.message with %d columns, its TABLE_MAP %d", schema, e.ColumnCount, len(e.Table.ColumnType))
		}
		present := false
		for i := range int(e.ColumnCount) {
			present = present || i/8 < len(e.ColumnBitmap1) && e.ColumnBitmap1[i/8]&(1<<(i%8)) != 0
		}
		if !present {
			return fmt.Errorf("mysqlcdc: a rows event of %s.message without any column", schema)
		}
		return e.DecodeData(pos, data)
	}
}
