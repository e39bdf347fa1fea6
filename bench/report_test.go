package bench

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

func sampleTable() Table {
	t := Table{ID: "sample", Title: "a sample", Columns: []string{"payload", "system", "msgs/s"}}
	t.AddRow("16 B", "a", "**1,234**")
	t.AddRow("16 B", "b", "56")
	t.Note("b is slow")
	return t
}

func TestWriteMarkdown(t *testing.T) {
	var b bytes.Buffer
	if err := sampleTable().WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	want := "| payload | system | msgs/s |\n|---|---|---:|\n| 16 B | a | **1,234** |\n| 16 B | b | 56 |\n\n- b is slow\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestWriteCSV(t *testing.T) {
	var b bytes.Buffer
	if err := WriteCSV(&b, []Table{sampleTable()}); err != nil {
		t.Fatal(err)
	}
	want := "table,payload,system,msgs/s\nsample,16 B,a,1234\nsample,16 B,b,56\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestUpdateMarkdown(t *testing.T) {
	doc := "# Title\n\ntext\n\n" + beginMarker("sample") + "\nold table\n" + endMarker("sample") + "\n\nafter\n"
	out, missing := UpdateMarkdown([]byte(doc), "header", []Table{sampleTable(), {ID: "absent"}})
	if len(missing) != 1 || missing[0] != "absent" {
		t.Errorf("missing = %v, want [absent]", missing)
	}
	s := string(out)
	if strings.Contains(s, "old table") || !strings.Contains(s, "header\n\n| payload |") ||
		!strings.HasSuffix(s, endMarker("sample")+"\n\nafter\n") || !strings.HasPrefix(s, "# Title\n\ntext\n\n") {
		t.Errorf("unexpected document:\n%s", s)
	}
	// Updating twice gives the same document.
	again, _ := UpdateMarkdown(out, "header", []Table{sampleTable()})
	if string(again) != s {
		t.Errorf("second update changed the document:\n%s", again)
	}
}

func TestFormatting(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{fmtRate(419653.4), "419,653"},
		{fmtRate(999), "999"},
		{fmtLatency(20 * time.Microsecond), "0.020 ms"},
		{fmtLatency(2330 * time.Microsecond), "2.33 ms"},
		{fmtLatency(46 * time.Millisecond), "46.0 ms"},
		{fmtLatency(1010 * time.Millisecond), "1,010 ms"},
		{fmtPercent(0.874), "87%"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

func TestSelectSuites(t *testing.T) {
	got, err := SelectSuites([]string{"calls", "memory", "calls"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name() != "memory" || got[1].Name() != "calls" {
		t.Errorf("got %v", got)
	}
	if _, err := SelectSuites([]string{"nope"}); err == nil {
		t.Error("unknown suite accepted")
	}
}

// TestBrokerSuiteTables runs the memory suite small and checks its tables.
func TestBrokerSuiteTables(t *testing.T) {
	ts, err := memorySuite().Run(context.Background(), Options{Quick: true, Messages: 500})
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 2 || len(ts[0].Rows) != len(Systems()) || len(ts[1].Rows) != len(memorySuite().(BrokerSuite).Checks) {
		t.Fatalf("unexpected tables: %+v", ts)
	}
	for _, row := range ts[1].Rows {
		if met := row[5]; met != "yes" && met != "**no**" {
			t.Errorf("target row %v has no verdict", row)
		}
	}
}
