package pgcdc

import (
	"fmt"

	"github.com/jackc/pglogrepl"

	"github.com/courier-go/courier/outbox"
	"github.com/courier-go/courier/outbox/internal/relay"
)

// WithEventuateTable makes the source tail Eventuate Tram's outbox table t
// (outbox.EventuateTable) instead of Courier's: the publication is of that
// table's inserts; a row inserted as published (published = 1, like the
// starting row of Eventuate's database-id schema) is skipped, as
// Eventuate's CDC skips it; every other row is published with the ID
// Eventuate's CDC gives it (the one in its headers or, in database-id
// mode, made of its dbid and t.OutboxID) and its TEXT payload as it is.
// Rows are not marked published, as Eventuate's log-tailing CDC does not
// mark them. Name a publication and a slot of this outbox's own.
func WithEventuateTable(t outbox.EventuateTable) Option {
	return func(c *config) error {
		if err := t.Validate(); err != nil {
			return err
		}
		c.eventuate = &t
		return nil
	}
}

// eventuateLayout adds to rel, the layout of a relation of Eventuate's
// table, its published and dbid columns.
func eventuateLayout(m *pglogrepl.RelationMessage, rel *relation, t *outbox.EventuateTable) (*relation, error) {
	rel.eventuate, rel.published, rel.dbid = t, -1, -1
	for i, c := range m.Columns {
		switch c.Name {
		case "published":
			rel.published = i
		case "dbid":
			rel.dbid = i
		}
	}
	if rel.published < 0 || (t.DatabaseIDs && rel.dbid < 0) {
		return nil, fmt.Errorf("%w: %s.%s is not Eventuate's outbox table: it has no published column, or no dbid in database-id mode",
			ErrColumnLayout, m.Namespace, m.RelationName)
	}
	return rel, nil
}

// read decodes an inserted tuple and reports whether it is to be
// published.
func (rel *relation) read(t *pglogrepl.TupleData) (relay.Row, bool, error) {
	row, err := rel.row(t)
	if err != nil || rel.eventuate == nil {
		return row, true, err
	}
	if published, err := column(t, rel.published); err != nil {
		return row, false, err
	} else if published != "" && published != "0" {
		return row, false, nil
	}
	if !rel.eventuate.DatabaseIDs {
		return row, true, nil
	}
	text, err := column(t, rel.dbid)
	if err != nil {
		return row, false, err
	}
	var dbid int64
	if _, err := fmt.Sscan(text, &dbid); err != nil {
		return row, false, fmt.Errorf("pgcdc: dbid %q: %w", text, err)
	}
	row.ID = relay.EventuateID(row.Headers, dbid, rel.eventuate.OutboxID)
	return row, true, nil
}
