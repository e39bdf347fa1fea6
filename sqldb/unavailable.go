package sqldb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"syscall"
)

// IsUnavailable reports whether err says that the database could not be
// reached or went away (a connection refused, reset or closed; a server
// shutting down, restarting or refusing more connections), rather than
// that it refused a statement. Such an error is not the message's fault:
// the inbox marks it with broker.Unavailable, so that a consumer waits for
// its database instead of dead-lettering the messages it handles during a
// restart or failover. Cancellation and deadlines (context.Canceled,
// context.DeadlineExceeded) are not unavailability.
//
// It knows the three dialects' drivers by behaviour and by their error
// texts rather than by importing them, so that a program linking one
// driver does not link the others: PostgreSQL errors by their SQLSTATE
// (class 08, connection exception; 57P01 to 57P03, shutdown; 53300, too
// many connections), MySQL and MariaDB errors by their number (1040,
// 1053, 1927, 2002, 2003, 2006, 2013) or SQLSTATE class 08, and any
// driver's network errors.
func IsUnavailable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED) {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	var state interface{ SQLState() string } // pgconn.PgError
	if errors.As(err, &state) {
		return unavailableState(state.SQLState())
	}
	return unavailableText(err.Error())
}

// unavailableState reports whether a SQLSTATE says the server cannot be
// used now.
func unavailableState(code string) bool {
	switch {
	case strings.HasPrefix(code, "08"): // connection exception
		return true
	case code == "57P01", code == "57P02", code == "57P03": // admin or crash shutdown, cannot connect now
		return true
	case code == "53300": // too many connections
		return true
	}
	return false
}

// mysqlError matches the text of go-sql-driver/mysql's MySQLError:
// "Error 1053 (08S01): Server shutdown in progress".
var mysqlError = regexp.MustCompile(`\bError (\d+)(?: \(([0-9A-Z]{5})\))?:`)

// unavailableText recognises, by their texts, the errors of drivers that
// carry no method to ask: MySQL's server errors and its client's lost
// connections, and the closed connections of several drivers.
func unavailableText(text string) bool {
	if m := mysqlError.FindStringSubmatch(text); m != nil {
		n, _ := strconv.Atoi(m[1])
		switch n {
		case 1040, // too many connections
			1053,       // server shutdown in progress
			1927,       // connection was killed
			2002, 2003, // cannot connect
			2006, // server has gone away
			2013: // lost connection during query
			return true
		}
		return m[2] != "" && unavailableState(m[2])
	}
	for _, s := range []string{"invalid connection", "bad connection", "conn closed", "connection refused", "connection reset", "broken pipe", "server closed the connection"} {
		if strings.Contains(text, s) {
			return true
		}
	}
	return false
}
