package binlog_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/courier-go/courier/outbox/mysqlcdc/binlog"
)

// Decoding events captured from MariaDB: a transaction inserting a row.
func ExampleParser() {
	files, _ := filepath.Glob("testdata/mariadb-*.bin")
	p := binlog.NewParser()
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			log.Fatal(err)
		}
		ev, err := p.Parse(raw)
		if err != nil {
			log.Fatal(err)
		}
		switch b := ev.Body.(type) {
		case *binlog.TableMap:
			fmt.Println(ev.Header.Type, b.Table, len(b.Types), "columns")
		case *binlog.Rows:
			fmt.Println(ev.Header.Type, len(b.Rows), "row, id", b.Rows[0][0])
		default:
			fmt.Println(ev.Header.Type)
		}
	}
	// Output:
	// ROTATE
	// FORMAT_DESCRIPTION
	// MARIADB_GTID
	// QUERY
	// MARIADB_GTID
	// TABLE_MAP kinds 22 columns
	// WRITE_ROWS_V1 1 row, id 1
	// XID
	// HEARTBEAT
}

// Streaming the binary log from the current position of a server.
func ExampleConn_Dump() {
	ctx := context.Background()
	c, err := binlog.Dial(ctx, binlog.Config{Addr: "127.0.0.1:3306", User: "courier", Password: "courier"})
	if err != nil {
		log.Fatal(err)
	}
	s, err := c.Dump(ctx, binlog.DumpConfig{ServerID: 1234567, File: "mysql-bin.000001", Position: 4})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	p := binlog.NewParser()
	for {
		raw, err := s.Next(ctx)
		if err != nil {
			log.Fatal(err)
		}
		ev, err := p.Parse(raw)
		if err != nil {
			log.Fatal(err)
		}
		if rows, ok := ev.Body.(*binlog.Rows); ok {
			fmt.Println(rows.Table.Schema, rows.Table.Table, len(rows.Rows))
		}
	}
}
