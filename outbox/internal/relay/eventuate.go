package relay

import (
	"encoding/json"

	"github.com/courier-go/courier/internal/eventuate"
	"github.com/courier-go/courier/message"
)

// EventuateID returns the ID under which Eventuate's CDC publishes a row
// of its database-id outbox table (BinlogEntryToMessageConverter): the ID
// header, or else the row's dbid and the outbox's id as Int128.asString
// writes them. A headers column that does not parse gives the latter; the
// relay then dead-letters the row, saying why.
func EventuateID(headers string, dbid int64, outboxID uint64) string {
	var h map[string]json.RawMessage
	var id string
	if json.Unmarshal([]byte(headers), &h) == nil && json.Unmarshal(h[message.HeaderID], &id) == nil && id != "" {
		return id
	}
	return eventuate.FormatID(uint64(dbid), outboxID)
}
