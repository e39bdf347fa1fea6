package pgnotify_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/courier-go/courier/internal/testdb"
	"github.com/courier-go/courier/message"
	"github.com/courier-go/courier/outbox"
	"github.com/courier-go/courier/outbox/pgnotify"
	"github.com/courier-go/courier/sqldb"
)

// A Listener hears an outbox insert only while the trigger is installed.
// Other tests notify the same channel on the same server, so the listener
// keeps the payloads naming this test's schema, and each check ends with a
// marker notification: notifications arrive in commit order, so whatever
// the insert caused arrives before the marker.
func TestListenerHearsInsertsOnlyWhileInstalled(t *testing.T) {
	db := testdb.Postgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var schema string
	if err := db.QueryRowContext(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		t.Fatal(err)
	}
	heard := make(chan string, 16)
	listening := make(chan struct{}, 1)
	l := pgnotify.NewWatching(db.DB, func(payload string) bool {
		if payload != schema && !strings.HasPrefix(payload, schema+"/") {
			return false
		}
		heard <- payload
		return true
	})
	lctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- l.Run(lctx, func() {
			select {
			case listening <- struct{}{}:
			default:
			}
		})
	}()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	select {
	case <-listening: // Run wakes once it listens
	case <-ctx.Done():
		t.Fatal("the listener never listened")
	}

	w := outbox.NewWriter(sqldb.Postgres)
	check := func(step string, wantInsert bool) {
		t.Helper()
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Send(ctx, tx, "orders", message.New([]byte(step))); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		marker := schema + "/" + step
		if _, err := db.ExecContext(ctx, "SELECT pg_notify($1, $2)", pgnotify.Channel, marker); err != nil {
			t.Fatal(err)
		}
		var got []string
		for len(got) == 0 || got[len(got)-1] != marker {
			select {
			case p := <-heard:
				got = append(got, p)
			case <-ctx.Done():
				t.Fatalf("%s: marker never heard; heard %q", step, got)
			}
		}
		want := []string{marker}
		if wantInsert {
			want = []string{schema, marker}
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("%s: heard %q, want %q", step, got, want)
		}
	}
	if n := triggers(t, db); n != 0 {
		t.Fatalf("the migrated schema has %d notify triggers", n)
	}
	check("migrated", false)
	for range 2 {
		if err := pgnotify.Install(ctx, db.DB); err != nil {
			t.Fatal(err)
		}
	}
	check("installed", true)
	for range 2 {
		if err := pgnotify.Uninstall(ctx, db.DB); err != nil {
			t.Fatal(err)
		}
	}
	check("uninstalled", false)
}

// Relays started together may install the trigger together.
func TestInstallConcurrently(t *testing.T) {
	db := testdb.Postgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	errs := make(chan error, 4)
	for range cap(errs) {
		go func() { errs <- pgnotify.Install(ctx, db.DB) }()
	}
	for range cap(errs) {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := triggers(t, db); n != 1 {
		t.Fatalf("%d notify triggers", n)
	}
}

// triggers counts the notify triggers on the outbox table.
func triggers(t *testing.T, db *testdb.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM pg_trigger WHERE tgrelid = 'message'::regclass AND tgname = $1",
		pgnotify.TriggerName).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestInstallWithoutSchema(t *testing.T) {
	db := testdb.Postgres(t)
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, "DROP TABLE message"); err != nil {
		t.Fatal(err)
	}
	if err := pgnotify.Install(ctx, db.DB); !errors.Is(err, sqldb.ErrSchemaMissing) {
		t.Fatalf("Install without the outbox table = %v", err)
	}
	if err := pgnotify.Uninstall(ctx, db.DB); err != nil {
		t.Fatalf("Uninstall without the outbox table = %v", err)
	}
}
