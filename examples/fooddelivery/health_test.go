package fooddelivery

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/memory"
)

// unreachable is a broker whose server does not answer.
type unreachable struct{ broker.Broker }

func (unreachable) Ping(context.Context) error {
	return errors.New("dial tcp 10.0.0.9:4222: i/o timeout")
}

// TestReadinessFollowsTheBroker: a service that serves HTTP is not ready
// while its broker does not answer, and says which check failed.
func TestReadinessFollowsTheBroker(t *testing.T) {
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "svc.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	b, err := memory.New()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(context.Background())
	for _, tc := range []struct {
		b    broker.Broker
		code int
	}{{b, http.StatusOK}, {unreachable{b}, http.StatusServiceUnavailable}} {
		n := &node{db: db, b: tc.b}
		mux := http.NewServeMux()
		if err := n.health(mux); err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		if rec.Code != tc.code {
			t.Fatalf("/readyz = %d %s, want %d", rec.Code, rec.Body, tc.code)
		}
		if tc.code != http.StatusOK && !strings.Contains(rec.Body.String(), "broker") {
			t.Errorf("/readyz body %q does not name the broker", rec.Body)
		}
	}
}
