package outbox

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/courier-go/courier/sqldb"
)

// eventuateInserts reads Eventuate's INSERT for each dialect and id mode,
// keyed by the comment above it (internal/eventuate/testdata/inserts.sql,
// whose README says where it comes from; read here by path, as
// eventuatetest, which imports this package, cannot serve its own tests).
func eventuateInserts(t testing.TB) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "internal", "eventuate", "testdata", "inserts.sql"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	label := ""
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l, ok := strings.CutPrefix(line, "-- "); ok {
			label = l
			continue
		}
		out[label] = line
	}
	return out
}

// TestWriterIssuesEventuatesInsert: the Writer's statement is the one
// Eventuate issues, character for character.
func TestWriterIssuesEventuatesInsert(t *testing.T) {
	want := eventuateInserts(t)
	for _, d := range []*sqldb.Dialect{sqldb.Postgres, sqldb.MySQL} {
		for _, dbIDs := range []bool{false, true} {
			label := d.Name() + " application-id"
			if dbIDs {
				label = d.Name() + " database-id"
			}
			got, err := eventuateInsert(d, EventuateTable{DatabaseIDs: dbIDs})
			if err != nil {
				t.Fatal(err)
			}
			if got != want[label] {
				t.Errorf("%s:\n%s\nwant Eventuate's\n%s", label, got, want[label])
			}
		}
	}
	if _, err := eventuateInsert(sqldb.SQLite, EventuateTable{}); err == nil {
		t.Error("an Eventuate table on SQLite")
	}
}
