package console

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// maxScrape bounds the body of one scrape: a Courier process's metrics
// are a few kilobytes, a misconfigured endpoint may be anything.
const maxScrape = 8 << 20

// sample is one value of a counter, gauge or untyped metric.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// key identifies a sample's series within one scrape.
func (s sample) key() string { return seriesKey(s.name, s.labels) }

func seriesKey(name string, labels map[string]string) string {
	names := make([]string, 0, len(labels))
	for k := range labels {
		names = append(names, k)
	}
	slices.Sort(names)
	var b strings.Builder
	b.WriteString(name)
	for _, k := range names {
		b.WriteString("\xff" + k + "=" + labels[k])
	}
	return b.String()
}

// scrape is what one read of a metrics endpoint gave.
type scrape struct {
	at      time.Time
	samples []sample
	values  map[string]float64 // by key
}

// fetch reads the metrics endpoint at url with client and parses its
// Prometheus text format with the Prometheus client's own parser. Only
// the counters, gauges and untyped metrics the console shows are kept.
func fetch(ctx context.Context, client *http.Client, url string, auth func(*http.Request)) (*scrape, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
	if auth != nil {
		auth(req)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s", resp.Status)
	}
	return parse(io.LimitReader(resp.Body, maxScrape), time.Now())
}

// parse reads metrics in the Prometheus text format.
func parse(r io.Reader, at time.Time) (*scrape, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	s := &scrape{at: at, values: map[string]float64{}}
	for name, f := range families {
		if !strings.HasPrefix(name, "courier_") {
			continue
		}
		for _, m := range f.GetMetric() {
			var v float64
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				v = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				v = m.GetGauge().GetValue()
			case dto.MetricType_UNTYPED:
				v = m.GetUntyped().GetValue()
			default:
				continue // histograms and summaries: not shown
			}
			labels := make(map[string]string, len(m.GetLabel()))
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			smp := sample{name: name, labels: labels, value: v}
			s.samples = append(s.samples, smp)
			s.values[smp.key()] = v
		}
	}
	slices.SortFunc(s.samples, func(a, b sample) int { return strings.Compare(a.key(), b.key()) })
	return s, nil
}

// rate is the per-second increase of the counter s since prev, nil
// without an earlier scrape. A counter that went down was reset (the
// process restarted): its whole value is the increase.
func rate(prev, cur *scrape, key string) *float64 {
	if prev == nil || cur == nil {
		return nil
	}
	dt := cur.at.Sub(prev.at).Seconds()
	if dt <= 0 {
		return nil
	}
	v := cur.values[key]
	inc := v - prev.values[key]
	if inc < 0 {
		inc = v
	}
	r := inc / dt
	return &r
}
