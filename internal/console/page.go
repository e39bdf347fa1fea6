package console

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"html/template"
	"math"
	"net/http"
	"strconv"
	"time"
)

//go:embed page.html
var pageHTML string

var page = template.Must(template.New("console").Funcs(template.FuncMap{
	"num":     formatNumber,
	"rate":    formatRate,
	"seconds": func(v *float64) string { return formatDuration(*v) },
	"bytes":   func(v *float64) string { return formatBytes(*v) },
}).Parse(pageHTML))

// Handler serves the console: the page on / (it refreshes itself every
// interval), and the state as JSON on /api/state.
func (c *Console) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		var buf bytes.Buffer
		err := page.Execute(&buf, struct {
			State          State
			Interval       time.Duration
			IntervalMillis int64
		}{c.State(), c.cfg.Interval, c.cfg.Interval.Milliseconds()})
		if err != nil {
			http.Error(w, "console: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'")
		w.Write(buf.Bytes()) //nolint:errcheck // the client went away
	})
	mux.HandleFunc("GET /api/state", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(c.State()) //nolint:errcheck // the client went away
	})
	return mux
}

// formatNumber writes a count without a fraction, a gauge with up to two
// decimals.
func formatNumber(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

// formatRate writes a rate per second, "–" while unknown.
func formatRate(v *float64) string {
	if v == nil {
		return "–"
	}
	return strconv.FormatFloat(*v, 'f', 1, 64)
}

func formatDuration(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(time.Millisecond).String()
}

func formatBytes(b float64) string {
	switch {
	case b >= 1<<20:
		return strconv.FormatFloat(b/(1<<20), 'f', 1, 64) + " MiB"
	case b >= 1<<10:
		return strconv.FormatFloat(b/(1<<10), 'f', 1, 64) + " KiB"
	}
	return strconv.FormatFloat(b, 'f', 0, 64) + " B"
}
