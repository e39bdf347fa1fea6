package binlog

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/courier-go/courier/internal/testdb"
)

func dialTest(t *testing.T, dsn string) *Conn {
	t.Helper()
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, Config{Addr: cfg.Addr, User: cfg.User, Password: cfg.Passwd})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func masterStatus(t *testing.T, db *sql.DB) (string, uint32) {
	t.Helper()
	var file string
	var pos uint32
	var a, b any
	if err := db.QueryRow("SHOW MASTER STATUS").Scan(&file, &pos, &a, &b); err != nil {
		t.Fatal(err)
	}
	return file, pos
}

// TestLiveStream streams a transaction from the real server and checks
// the decoded events. With COURIER_BINLOG_CAPTURE=1 it rewrites the
// fixtures under testdata.
func TestLiveStream(t *testing.T) {
	db := testdb.MySQL(t)
	file, pos := masterStatus(t, db.DB)
	c := dialTest(t, db.DSN)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := c.Dump(ctx, DumpConfig{ServerID: 4000 + uint32(os.Getpid()%1000), Hostname: "test", File: file, Position: pos, Heartbeat: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var dbName string
	db.QueryRow("SELECT DATABASE()").Scan(&dbName)
	if _, err := db.Exec(`CREATE TABLE kinds (id BIGINT PRIMARY KEY, t TINYINT, s SMALLINT, m MEDIUMINT, i INT, u INT UNSIGNED,
		f FLOAT, d DOUBLE, dec1 DECIMAL(10,3), c CHAR(3), vc VARCHAR(300), tx TEXT, lb LONGBLOB, dt DATETIME(3), ts TIMESTAMP(6) NULL,
		dd DATE, tm TIME, y YEAR, b BIT(10), e ENUM('a','b'), st SET('x','y'), n INT NULL)`); err != nil {
		t.Fatal(err)
	}
	tx, _ := db.Begin()
	if _, err := tx.Exec(`INSERT INTO kinds VALUES (1, -5, -300, -70000, -2000000000, 4000000000, 1.5, 2.25, 12.345, 'ab', ?, 'text', ?,
		'2024-01-02 03:04:05.678', '2024-01-02 03:04:05.123456', '2024-01-02', '10:11:12', 2024, b'1010101010', 'b', 'x,y', NULL)`,
		string(make([]byte, 280)), []byte{0, 1, 255}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	capture := os.Getenv("COURIER_BINLOG_CAPTURE") == "1"
	p := NewParser()
	var sawRow, sawXID, sawFormat, sawHeartbeat bool
	for n := 0; !(sawXID && sawHeartbeat); n++ {
		raw, err := s.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := p.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if capture {
			os.WriteFile(filepath.Join("testdata", fmt.Sprintf("mariadb-%02d-%s.bin", n, ev.Header.Type)), raw, 0o644)
		}
		t.Logf("%v %+v", ev.Header.Type, ev.Body)
		switch b := ev.Body.(type) {
		case *FormatDescription:
			sawFormat = true
		case *Rows:
			if b.Table.Schema == dbName && b.Table.Table == "kinds" {
				sawRow = true
				t.Logf("row: %#v", b.Rows[0])
			}
		case *XID:
			sawXID = sawRow
		case *Heartbeat:
			sawHeartbeat = sawXID
		}
	}
	if !sawFormat {
		t.Fatal("no FORMAT_DESCRIPTION")
	}
}
