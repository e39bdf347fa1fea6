package binlog

import (
	"fmt"
	"math"
	"math/bits"
)

// ColumnType is a column's type code in a TABLE_MAP event.
type ColumnType uint8

// Column types.
const (
	TypeDecimal    ColumnType = 0
	TypeTiny       ColumnType = 1
	TypeShort      ColumnType = 2
	TypeLong       ColumnType = 3
	TypeFloat      ColumnType = 4
	TypeDouble     ColumnType = 5
	TypeNull       ColumnType = 6
	TypeTimestamp  ColumnType = 7
	TypeLongLong   ColumnType = 8
	TypeInt24      ColumnType = 9
	TypeDate       ColumnType = 10
	TypeTime       ColumnType = 11
	TypeDateTime   ColumnType = 12
	TypeYear       ColumnType = 13
	TypeNewDate    ColumnType = 14
	TypeVarchar    ColumnType = 15
	TypeBit        ColumnType = 16
	TypeTimestamp2 ColumnType = 17
	TypeDateTime2  ColumnType = 18
	TypeTime2      ColumnType = 19
	TypeJSON       ColumnType = 245
	TypeNewDecimal ColumnType = 246
	TypeEnum       ColumnType = 247
	TypeSet        ColumnType = 248
	TypeTinyBlob   ColumnType = 249
	TypeMediumBlob ColumnType = 250
	TypeLongBlob   ColumnType = 251
	TypeBlob       ColumnType = 252
	TypeVarString  ColumnType = 253
	TypeString     ColumnType = 254
	TypeGeometry   ColumnType = 255
)

// IsString reports whether values of the type decode to []byte: the
// CHAR, VARCHAR, TEXT and BLOB families.
func (t ColumnType) IsString() bool {
	switch t {
	case TypeVarchar, TypeVarString, TypeString, TypeBlob, TypeTinyBlob, TypeMediumBlob, TypeLongBlob:
		return true
	}
	return false
}

// IsInteger reports whether values of the type decode to int64.
func (t ColumnType) IsInteger() bool {
	switch t {
	case TypeTiny, TypeShort, TypeInt24, TypeLong, TypeLongLong:
		return true
	}
	return false
}

// TableMap describes the table that the following row events change.
type TableMap struct {
	TableID uint64
	Flags   uint16
	Schema  string
	Table   string
	Types   []ColumnType
	// Meta is each column's type metadata (lengths, precision).
	Meta     []uint16
	Nullable []bool
	// Names are the column names when the server logs them
	// (binlog_row_metadata = FULL); nil otherwise.
	Names []string
}

func (p *Parser) tableID(r *reader, t EventType, def int) uint64 {
	if p.format.postHeader(t, def) == 6 {
		return r.uint(4, "table id")
	}
	return r.uint(6, "table id")
}

func (p *Parser) parseTableMap(r *reader) (*TableMap, error) {
	tm := &TableMap{TableID: p.tableID(r, TableMapEvent, 8), Flags: r.u16("flags")}
	n := int(r.u8("schema length"))
	tm.Schema = string(r.bytes(n, "schema"))
	r.bytes(1, "terminator")
	n = int(r.u8("table length"))
	tm.Table = string(r.bytes(n, "table"))
	r.bytes(1, "terminator")
	cols := int(r.lenenc("column count"))
	if r.err != nil {
		return nil, r.err
	}
	for _, b := range r.bytes(cols, "column types") {
		tm.Types = append(tm.Types, ColumnType(b))
	}
	meta := &reader{b: r.bytes(int(r.lenenc("metadata length")), "metadata")}
	tm.Meta = make([]uint16, cols)
	for i, t := range tm.Types {
		switch t {
		case TypeFloat, TypeDouble, TypeBlob, TypeTinyBlob, TypeMediumBlob, TypeLongBlob, TypeGeometry, TypeJSON,
			TypeTimestamp2, TypeDateTime2, TypeTime2:
			tm.Meta[i] = uint16(meta.u8("metadata"))
		case TypeVarchar, TypeVarString, TypeBit, TypeNewDecimal:
			tm.Meta[i] = meta.u16("metadata")
		case TypeString, TypeEnum, TypeSet:
			// Real type in the first byte, length in the second.
			hi, lo := meta.u8("metadata"), meta.u8("metadata")
			tm.Meta[i] = uint16(hi)<<8 | uint16(lo)
		}
	}
	if meta.err != nil {
		return nil, meta.err
	}
	nulls := r.bytes((cols+7)/8, "null bitmap")
	tm.Nullable = make([]bool, cols)
	for i := range cols {
		tm.Nullable[i] = r.err == nil && nulls[i/8]&(1<<(i%8)) != 0
	}
	// Optional metadata: type, length, value.
	for len(r.b) > 0 && r.err == nil {
		typ := r.u8("metadata type")
		v := &reader{b: r.bytes(int(r.lenenc("metadata length")), "metadata value")}
		if typ == 4 { // column names
			for len(v.b) > 0 && v.err == nil {
				tm.Names = append(tm.Names, string(v.bytes(int(v.lenenc("name length")), "name")))
			}
			if v.err != nil || len(tm.Names) != cols {
				tm.Names = nil
			}
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	p.tables[tm.TableID] = tm
	return tm, nil
}

// RowsKind says what a Rows event does.
type RowsKind uint8

// Kinds of row events.
const (
	RowsInsert RowsKind = iota + 1
	RowsUpdate
	RowsDelete
)

// Rows is a WRITE_ROWS, UPDATE_ROWS or DELETE_ROWS event.
type Rows struct {
	Kind    RowsKind
	TableID uint64
	Flags   uint16
	// Table is the TABLE_MAP the event refers to.
	Table *TableMap
	// Rows holds one slice per row, one value per column: nil (NULL or
	// a column the event omits), int64, float32, float64, []byte or
	// RawValue. An update holds the row before, then the row after.
	Rows [][]any
}

// RawValue is a column value the package does not decode (temporal,
// decimal, bit, JSON): its bytes as the binary log stores them.
type RawValue []byte

func (p *Parser) parseRows(t EventType, r *reader) (*Rows, error) {
	rows := &Rows{TableID: p.tableID(r, t, 8), Flags: r.u16("flags")}
	switch t {
	case WriteRowsEventV1, WriteRowsEventV2:
		rows.Kind = RowsInsert
	case UpdateRowsEventV1, UpdateRowsEventV2:
		rows.Kind = RowsUpdate
	default:
		rows.Kind = RowsDelete
	}
	if t >= WriteRowsEventV2 {
		extra := int(r.u16("extra data length"))
		r.bytes(extra-2, "extra data")
	}
	cols := int(r.lenenc("column count"))
	if r.err != nil {
		return nil, r.err
	}
	tm := p.tables[rows.TableID]
	if tm == nil {
		return nil, fmt.Errorf("row event for table id %d without a TABLE_MAP", rows.TableID)
	}
	if cols != len(tm.Types) {
		return nil, fmt.Errorf("row event with %d columns for %s.%s, whose TABLE_MAP has %d", cols, tm.Schema, tm.Table, len(tm.Types))
	}
	rows.Table = tm
	present := r.bytes((cols+7)/8, "columns bitmap")
	presentAfter := present
	if rows.Kind == RowsUpdate {
		presentAfter = r.bytes((cols+7)/8, "columns bitmap")
	}
	for i := 0; len(r.b) > 0 && r.err == nil; i++ {
		bm := present
		if rows.Kind == RowsUpdate && i%2 == 1 {
			bm = presentAfter
		}
		row, err := decodeRow(r, tm, bm)
		if err != nil {
			return nil, err
		}
		rows.Rows = append(rows.Rows, row)
	}
	return rows, r.err
}

func decodeRow(r *reader, tm *TableMap, present []byte) ([]any, error) {
	n := 0
	for _, b := range present {
		n += bits.OnesCount8(b)
	}
	nulls := r.bytes((n+7)/8, "row null bitmap")
	row := make([]any, len(tm.Types))
	k := 0
	for i := range tm.Types {
		if present[i/8]&(1<<(i%8)) == 0 {
			continue
		}
		isNull := nulls != nil && nulls[k/8]&(1<<(k%8)) != 0
		k++
		if isNull {
			continue
		}
		v, err := decodeValue(r, tm.Types[i], tm.Meta[i])
		if err != nil {
			return nil, fmt.Errorf("column %d of %s.%s: %w", i+1, tm.Schema, tm.Table, err)
		}
		row[i] = v
	}
	return row, r.err
}

// decodeValue reads one value of type t with metadata meta.
func decodeValue(r *reader, t ColumnType, meta uint16) (any, error) {
	signed := func(n int) int64 {
		v := r.uint(n, "integer")
		shift := 64 - 8*n
		return int64(v<<shift) >> shift
	}
	switch t {
	case TypeTiny:
		return signed(1), nil
	case TypeShort:
		return signed(2), nil
	case TypeInt24:
		return signed(3), nil
	case TypeLong:
		return signed(4), nil
	case TypeLongLong:
		return signed(8), nil
	case TypeFloat:
		return math.Float32frombits(uint32(r.uint(4, "float"))), nil
	case TypeDouble:
		return math.Float64frombits(r.uint(8, "double")), nil
	case TypeYear:
		if v := r.uint(1, "year"); v != 0 {
			return int64(1900 + v), nil
		}
		return int64(0), nil
	case TypeNull:
		return nil, nil
	case TypeVarchar, TypeVarString:
		n := 1
		if meta > 255 {
			n = 2
		}
		return r.bytes(int(r.uint(n, "length")), "string"), nil
	case TypeBlob, TypeTinyBlob, TypeMediumBlob, TypeLongBlob, TypeGeometry:
		if meta < 1 || meta > 4 {
			return nil, fmt.Errorf("blob with %d length bytes", meta)
		}
		return r.bytes(int(r.uint(int(meta), "length")), "blob"), nil
	case TypeJSON:
		if meta < 1 || meta > 4 {
			return nil, fmt.Errorf("JSON with %d length bytes", meta)
		}
		return RawValue(r.bytes(int(r.uint(int(meta), "length")), "json")), nil
	case TypeString, TypeEnum, TypeSet:
		real, size := ColumnType(meta>>8), int(meta&0xff)
		if real&0x30 != 0x30 { // lengths over 255 borrow two bits of the type
			size |= int((real&0x30)^0x30) << 4
			real |= 0x30
		}
		switch real {
		case TypeEnum, TypeSet:
			return int64(r.uint(size, "enum or set")), nil
		}
		n := 1
		if size > 255 {
			n = 2
		}
		return r.bytes(int(r.uint(n, "length")), "string"), nil
	}
	n, err := fixedSize(t, meta)
	if err != nil {
		return nil, err
	}
	return RawValue(r.bytes(n, t.String())), nil
}

// fixedSize is the stored size of the types returned as RawValue.
func fixedSize(t ColumnType, meta uint16) (int, error) {
	frac := func() int { return (int(meta) + 1) / 2 }
	switch t {
	case TypeDate, TypeNewDate, TypeTime:
		return 3, nil
	case TypeTimestamp:
		return 4, nil
	case TypeDateTime:
		return 8, nil
	case TypeTimestamp2:
		return 4 + frac(), nil
	case TypeDateTime2:
		return 5 + frac(), nil
	case TypeTime2:
		return 3 + frac(), nil
	case TypeBit:
		nbits, nbytes := int(meta&0xff), int(meta>>8)
		return nbytes + (nbits+7)/8, nil
	case TypeNewDecimal:
		precision, scale := int(meta&0xff), int(meta>>8)
		dig2bytes := [10]int{0, 1, 1, 2, 2, 3, 3, 4, 4, 4}
		intg := precision - scale
		if intg < 0 || scale > 30 {
			return 0, fmt.Errorf("decimal(%d,%d)", precision, scale)
		}
		return intg/9*4 + dig2bytes[intg%9] + scale/9*4 + dig2bytes[scale%9], nil
	}
	return 0, fmt.Errorf("column type %d is not supported", uint8(t))
}

// String names the type.
func (t ColumnType) String() string {
	names := map[ColumnType]string{TypeDecimal: "DECIMAL", TypeTiny: "TINYINT", TypeShort: "SMALLINT", TypeLong: "INT",
		TypeFloat: "FLOAT", TypeDouble: "DOUBLE", TypeNull: "NULL", TypeTimestamp: "TIMESTAMP", TypeLongLong: "BIGINT",
		TypeInt24: "MEDIUMINT", TypeDate: "DATE", TypeTime: "TIME", TypeDateTime: "DATETIME", TypeYear: "YEAR",
		TypeNewDate: "NEWDATE", TypeVarchar: "VARCHAR", TypeBit: "BIT", TypeTimestamp2: "TIMESTAMP", TypeDateTime2: "DATETIME",
		TypeTime2: "TIME", TypeJSON: "JSON", TypeNewDecimal: "DECIMAL", TypeEnum: "ENUM", TypeSet: "SET",
		TypeTinyBlob: "TINYBLOB", TypeMediumBlob: "MEDIUMBLOB", TypeLongBlob: "LONGBLOB", TypeBlob: "BLOB",
		TypeVarString: "VARCHAR", TypeString: "CHAR", TypeGeometry: "GEOMETRY"}
	if n, ok := names[t]; ok {
		return n
	}
	return fmt.Sprintf("TYPE_%d", uint8(t))
}
