package bench

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Table is one result table of a suite: a header row and data rows of
// preformatted cells. Its ID names it in BENCHMARKS.md markers (see
// UpdateMarkdown) and in CSV output.
type Table struct {
	// ID is unique among all tables, e.g. "brokers-nats".
	ID string
	// Title is a one-line caption.
	Title string
	// Columns are the column headers; a header ending in a digit-like
	// unit (msgs/s, ms, MiB) is right-aligned in Markdown.
	Columns []string
	// Rows holds the cells, one slice per row, as long as Columns.
	Rows [][]string
	// Notes are lines printed under the table (failures, skipped
	// systems), each as a Markdown list item.
	Notes []string
}

// AddRow appends a row of cells.
func (t *Table) AddRow(cells ...string) { t.Rows = append(t.Rows, cells) }

// Note appends a note printed under the table.
func (t *Table) Note(format string, args ...any) {
	t.Notes = append(t.Notes, fmt.Sprintf(format, args...))
}

// numericColumn reports whether a column holds numbers (right-aligned).
func numericColumn(name string) bool {
	switch name {
	case "payload", "system", "mode", "pair", "target", "met", "relay", "check":
		return false
	}
	return true
}

// WriteMarkdown writes t as a GitHub-flavoured Markdown table followed by
// its notes.
func (t Table) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	b.WriteString("| " + strings.Join(t.Columns, " | ") + " |\n|")
	for _, c := range t.Columns {
		if numericColumn(c) {
			b.WriteString("---:|")
		} else {
			b.WriteString("---|")
		}
	}
	b.WriteString("\n")
	for _, r := range t.Rows {
		b.WriteString("| " + strings.Join(r, " | ") + " |\n")
	}
	if len(t.Notes) > 0 {
		b.WriteString("\n")
		for _, n := range t.Notes {
			b.WriteString("- " + n + "\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteCSV writes tables as CSV: for each table a header record
// "table,<columns...>" and then its rows, each prefixed by the table's ID.
// Cells keep their Markdown formatting but lose the bold markers and the
// thousands separators, so that they parse as numbers.
func WriteCSV(w io.Writer, tables []Table) error {
	cw := csv.NewWriter(w)
	for _, t := range tables {
		if err := cw.Write(append([]string{"table"}, t.Columns...)); err != nil {
			return err
		}
		for _, r := range t.Rows {
			rec := []string{t.ID}
			for _, c := range r {
				rec = append(rec, plainCell(c))
			}
			if err := cw.Write(rec); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

// plainCell strips Markdown emphasis and digit grouping from a cell.
func plainCell(c string) string {
	c = strings.ReplaceAll(c, "**", "")
	if strings.ContainsAny(c, "0123456789") && !strings.ContainsAny(c, "abcdfghijklnopqrtuvwxyz") {
		c = strings.ReplaceAll(c, ",", "")
	}
	return c
}

// Machine describes the machine and toolchain a run is measured on, for
// the header of the report.
func Machine() string {
	model := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := ""
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		line, _, _ := strings.Cut(string(data), "\n")
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
			if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil {
				mem = fmt.Sprintf(", %.0f GiB", float64(kb)/(1<<20))
			}
		}
	}
	return fmt.Sprintf("%d CPUs (%s)%s, %s/%s, %s, %s", runtime.NumCPU(), model, mem,
		runtime.GOOS, runtime.GOARCH, runtime.Version(), time.Now().UTC().Format("2006-01-02"))
}

// Number formatting shared by the tables.

// fmtRate formats a rate with thousands separators, e.g. "419,653".
func fmtRate(v float64) string { return groupThousands(int64(v + 0.5)) }

func groupThousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// fmtLatency formats a duration in milliseconds with precision fitting
// its size: "0.020 ms", "2.33 ms", "46 ms", "1,010 ms".
func fmtLatency(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	switch {
	case ms < 1:
		return fmt.Sprintf("%.3f ms", ms)
	case ms < 10:
		return fmt.Sprintf("%.2f ms", ms)
	case ms < 100:
		return fmt.Sprintf("%.1f ms", ms)
	}
	return groupThousands(int64(ms+0.5)) + " ms"
}

// fmtMiB formats a byte count in MiB.
func fmtMiB(b uint64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

// fmtPercent formats a ratio as a percentage, e.g. "87%".
func fmtPercent(r float64) string { return fmt.Sprintf("%.0f%%", 100*r) }

// fmtOneDecimal formats a per-message figure, e.g. "13.0".
// fmtMeasured formats a figure with two significant decimals, or "-"
// for one that was not measured (negative).
func fmtMeasured(v float64) string {
	if v < 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", v)
}

func fmtOneDecimal(v float64) string { return fmt.Sprintf("%.1f", v) }

// Markers delimit generated tables in a Markdown file: everything between
// the begin and end markers of a table's ID is replaced by UpdateMarkdown.
func beginMarker(id string) string { return "<!-- bench:" + id + " begin -->" }
func endMarker(id string) string   { return "<!-- bench:" + id + " end -->" }

// UpdateMarkdown replaces, in doc, the text between each table's markers
// with the table (see WriteMarkdown) and returns the new document and the
// IDs of the tables that had no markers in doc (those are not written).
func UpdateMarkdown(doc []byte, header string, tables []Table) ([]byte, []string) {
	var missing []string
	out := string(doc)
	for _, t := range tables {
		begin, end := beginMarker(t.ID), endMarker(t.ID)
		i := strings.Index(out, begin)
		j := strings.Index(out, end)
		if i < 0 || j < i {
			missing = append(missing, t.ID)
			continue
		}
		var b strings.Builder
		b.WriteString(begin + "\n")
		if header != "" {
			b.WriteString(header + "\n\n")
		}
		_ = t.WriteMarkdown(&b)
		out = out[:i] + b.String() + out[j:]
	}
	return []byte(out), missing
}
