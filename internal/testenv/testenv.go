// Package testenv holds the switches of the test environment that several
// packages' tests share.
package testenv

import (
	"os"
	"testing"
)

// RestartEnv enables the tests that restart a shared server (PostgreSQL,
// MariaDB, RabbitMQ). Such a restart breaks the tests of other packages
// that go test runs at the same time, so the test script runs them on
// their own, after the others, with RestartEnv=1.
const RestartEnv = "COURIER_RESTART_TESTS"

// RequireRestarts skips t unless RestartEnv is 1; server names the server
// the test restarts, for the message.
func RequireRestarts(t testing.TB, server string) {
	t.Helper()
	if os.Getenv(RestartEnv) != "1" {
		t.Skip("restarts " + server + "; set " + RestartEnv + "=1 (scripts/test runs it on its own)")
	}
}
