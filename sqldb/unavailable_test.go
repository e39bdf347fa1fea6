package sqldb_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"

	"github.com/courier-go/courier/sqldb"
)

// pgError stands for pgconn.PgError, which has a SQLState method.
type pgError struct{ code string }

func (e pgError) Error() string    { return "ERROR: something (SQLSTATE " + e.code + ")" }
func (e pgError) SQLState() string { return e.code }

func TestIsUnavailable(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"bad connection", fmt.Errorf("begin: %w", driver.ErrBadConn), true},
		{"connection done", sql.ErrConnDone, true},
		{"refused", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, true},
		{"reset", fmt.Errorf("read: %w", syscall.ECONNRESET), true},
		{"postgres shutting down", pgError{"57P01"}, true},
		{"postgres starting", pgError{"57P03"}, true},
		{"postgres connection failure", pgError{"08006"}, true},
		{"postgres too many connections", pgError{"53300"}, true},
		{"postgres unique violation", pgError{"23505"}, false},
		{"postgres syntax error", pgError{"42601"}, false},
		{"mysql shutdown", errors.New("Error 1053 (08S01): Server shutdown in progress"), true},
		{"mysql gone away", errors.New("Error 2006: MySQL server has gone away"), true},
		{"mysql duplicate key", errors.New("Error 1062 (23000): Duplicate entry 'x' for key 'PRIMARY'"), false},
		{"mysql invalid connection", errors.New("invalid connection"), true},
		{"cancelled", fmt.Errorf("query: %w", context.Canceled), false},
		{"deadline", context.DeadlineExceeded, false},
		{"no rows", sql.ErrNoRows, false},
		{"other", errors.New("constraint failed"), false},
	} {
		if got := sqldb.IsUnavailable(tc.err); got != tc.want {
			t.Errorf("%s: IsUnavailable(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}
