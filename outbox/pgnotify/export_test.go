package pgnotify

import "database/sql"

// NewWatching returns a Listener that passes the payload of every
// notification to accept and wakes only when accept returns true: tests
// share Channel with the other tests of the server.
func NewWatching(db *sql.DB, accept func(payload string) bool) *Listener {
	return &Listener{db: db, accept: accept}
}
