package mysqlcdc

import (
	"fmt"

	"github.com/courier-go/courier/outbox"
	"github.com/courier-go/courier/outbox/internal/relay"
)

// WithEventuateTable makes the source tail Eventuate Tram's outbox table t
// (outbox.EventuateTable), in its own database (t.Schema), instead of
// Courier's: a row inserted as published (published = 1, like the
// starting row of Eventuate's database-id schema) is skipped, as
// Eventuate's CDC skips it; every other row is published with the ID
// Eventuate's CDC gives it (the one in its headers or, in database-id
// mode, made of its dbid and t.OutboxID). Rows are not marked published,
// as Eventuate's log-tailing CDC does not mark them. The position and the
// lease stay in the database of the source's DSN.
func WithEventuateTable(t outbox.EventuateTable) Option {
	return func(c *config) error {
		if err := t.Validate(); err != nil {
			return err
		}
		c.eventuate = &t
		return nil
	}
}

// outboxSchema is the database of the outbox table the source tails.
func (r *Source) outboxSchema() string {
	if t := r.cfg.eventuate; t != nil {
		if t.Schema != "" {
			return t.Schema
		}
		return "eventuate"
	}
	return r.dsn.DBName
}

// read picks a row out of values, as row does, and reports whether it is
// to be published: in Eventuate's table, not a row written as published,
// and with the ID Eventuate's CDC gives it.
func (l *layout) read(values []any) (relay.Row, bool, error) {
	row, err := l.row(values)
	if err != nil || l.eventuate == nil {
		return row, true, err
	}
	published, err := integer("published", values, l.published)
	if err != nil || published != 0 {
		return row, false, err
	}
	if l.eventuate.DatabaseIDs {
		dbid, err := integer("dbid", values, l.dbid)
		if err != nil {
			return row, false, err
		}
		row.ID = relay.EventuateID(row.Headers, dbid, l.eventuate.OutboxID)
	}
	return row, true, nil
}

// integer returns column i of values, an integer column (NULL reads 0).
func integer(name string, values []any, i int) (int64, error) {
	if i < 0 || i >= len(values) {
		return 0, fmt.Errorf("%w: a row of %d columns has no column %s", ErrColumnLayout, len(values), name)
	}
	switch v := values[i].(type) {
	case nil:
		return 0, nil
	case int8:
		return int64(v), nil
	case int16:
		return int64(v), nil
	case int32:
		return int64(v), nil
	case int64:
		return v, nil
	case uint8:
		return int64(v), nil
	case uint16:
		return int64(v), nil
	case uint32:
		return int64(v), nil
	case uint64:
		return int64(v), nil
	}
	return 0, fmt.Errorf("%w: column %s holds a %T, not an integer", ErrColumnLayout, name, values[i])
}
