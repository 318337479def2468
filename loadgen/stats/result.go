package stats

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Format names the JSON result schema; it changes only incompatibly.
const Format = "xmppcheck-load/1"

// Result is a run's outcome as written with --json and read by merge. The
// histograms are raw so that merging shards is exact; percentiles are
// derived fields, recomputed after a merge.
type Result struct {
	Format   string             `json:"format"`
	Scenario string             `json:"scenario"`
	Config   map[string]any     `json:"config,omitempty"`
	Shards   []Shard            `json:"shards"`
	Started  time.Time          `json:"started"`
	Ended    time.Time          `json:"ended"`
	Window   Window             `json:"window"`
	Counters map[string]int64   `json:"counters"`
	Errors   map[string]int64   `json:"errors"`
	Metrics  map[string]*Metric `json:"metrics"`
	Series   []Interval         `json:"series"`
	// Thresholds are the verdicts of the run's --threshold expressions,
	// filled in by whoever evaluated them (empty when none were given).
	Thresholds []Verdict `json:"thresholds,omitempty"`
	// Incomplete is set when the result was rebuilt from a results stream
	// that ended before the run did (crash, interrupt, full disk).
	Incomplete bool `json:"incomplete,omitempty"`
}

// Verdict is one evaluated threshold.
type Verdict struct {
	Expr   string `json:"expr"`
	Actual string `json:"actual"`
	Pass   bool   `json:"pass"`
	Error  string `json:"error,omitempty"` // the threshold could not be evaluated
}

// Window is the measured phase (sending), excluding setup and drain; rates
// are computed over it.
type Window struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Seconds is the window's length in seconds.
func (w Window) Seconds() float64 { return w.End.Sub(w.Start).Seconds() }

// Shard describes one load generator process of a (possibly sharded) run.
type Shard struct {
	Index          int      `json:"index"`
	Of             int      `json:"of"`
	Host           string   `json:"host,omitempty"`
	Users          int      `json:"users"`
	Rate           float64  `json:"rate"`
	CPUSeconds     float64  `json:"cpu_seconds"`         // user+system CPU of the load generator process
	CPUIncludesSUT bool     `json:"cpu_includes_server"` // true when the embedded server ran in-process
	MemPerUser     int64    `json:"mem_per_user_bytes"`  // heap+stack growth per established session
	RSSPerUser     int64    `json:"rss_per_user_bytes"`  // resident set growth per established session
	PeakSessions   int64    `json:"peak_sessions"`       //
	FDLimit        uint64   `json:"fd_limit"`            // RLIMIT_NOFILE in force
	Notes          []string `json:"notes,omitempty"`
}

// Interval is one second of the series: counter deltas and the latencies
// recorded in that second.
type Interval struct {
	T int64 `json:"t"` // Unix second
	// Span is the length of time the interval covers, in milliseconds
	// (about 1000; less for the last, partial second of a run).
	Span     int64             `json:"span_ms,omitempty"`
	Counters map[string]int64  `json:"counters,omitempty"`
	Errors   map[string]int64  `json:"errors,omitempty"` // errors by kind counted in this interval
	Hists    map[string]string `json:"hists,omitempty"`  // metric -> HdrHistogram V2 compressed, base64
}

// Metric is one latency distribution.
type Metric struct {
	Hist   string  `json:"hist"` // HdrHistogram V2 compressed, base64, microseconds
	Count  int64   `json:"count"`
	MinUS  int64   `json:"min_us"`
	MeanUS float64 `json:"mean_us"`
	P50US  int64   `json:"p50_us"`
	P90US  int64   `json:"p90_us"`
	P95US  int64   `json:"p95_us"`
	P99US  int64   `json:"p99_us"`
	P999US int64   `json:"p99_9_us"`
	MaxUS  int64   `json:"max_us"`

	h *hdr.Histogram
}

func unixSecondEnd(t int64) time.Time { return time.Unix(t, 0) }

func encode(h *hdr.Histogram) string {
	b, err := h.Encode(hdr.V2CompressedEncodingCookieBase)
	if err != nil {
		panic(fmt.Sprintf("stats: encode histogram: %v", err)) // cannot fail for an in-memory histogram
	}
	return string(b)
}

func newMetric(h *hdr.Histogram) *Metric {
	m := &Metric{h: h.Clone(), Hist: encode(h)}
	m.derive()
	return m
}

func (m *Metric) derive() {
	h := m.h
	m.Count = h.TotalCount()
	m.MinUS = h.Min()
	m.MeanUS = h.Mean()
	m.P50US = h.ValueAtQuantile(50)
	m.P90US = h.ValueAtQuantile(90)
	m.P95US = h.ValueAtQuantile(95)
	m.P99US = h.ValueAtQuantile(99)
	m.P999US = h.ValueAtQuantile(99.9)
	m.MaxUS = h.Max()
}

// Histogram returns the metric's histogram (decoded on first use).
func (m *Metric) Histogram() (*hdr.Histogram, error) {
	if m.h == nil {
		h, err := hdr.Decode([]byte(m.Hist))
		if err != nil {
			return nil, fmt.Errorf("stats: decode histogram: %w", err)
		}
		m.h = h
	}
	return m.h, nil
}

// Quantile returns the value at quantile q (0–100) in microseconds.
func (m *Metric) Quantile(q float64) int64 {
	h, err := m.Histogram()
	if err != nil {
		return 0
	}
	return h.ValueAtQuantile(q)
}

// DecodeHist decodes one interval histogram.
func DecodeHist(s string) (*hdr.Histogram, error) {
	h, err := hdr.Decode([]byte(s))
	if err != nil {
		return nil, fmt.Errorf("stats: decode histogram: %w", err)
	}
	return h, nil
}

// Rate returns completed operations per second over the window.
func (r *Result) Rate() float64 {
	s := r.Window.Seconds()
	if s <= 0 {
		return 0
	}
	return float64(r.Counters[Completed]) / s
}

// Lost returns expected deliveries that never completed (never negative).
func (r *Result) Lost() int64 {
	exp := r.Counters[Expected]
	if exp == 0 {
		exp = r.Counters[Sent]
	}
	return max(0, exp-r.Counters[Completed])
}

// ErrorRatio is errors (including lost deliveries) per expected operation.
func (r *Result) ErrorRatio() float64 {
	exp := r.Counters[Expected]
	if exp == 0 {
		exp = r.Counters[Scheduled]
	}
	if exp == 0 {
		return 0
	}
	return float64(r.Counters[Errors]+r.Lost()) / float64(exp)
}

// CPUSeconds sums the shards' CPU time.
func (r *Result) CPUSeconds() float64 {
	var s float64
	for _, sh := range r.Shards {
		s += sh.CPUSeconds
	}
	return s
}

// Write encodes r as indented JSON.
func (r *Result) Write(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	return enc.Encode(r)
}

// WriteFile writes r to path atomically (temporary file, then rename), so a
// crash never leaves half a result.
func (r *Result) WriteFile(path string) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("stats: %w", err)
	}
	if err := r.Write(f); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("stats: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("stats: write %s: %w", path, err)
	}
	return os.Rename(tmp, path)
}

// ReadFile reads a result written by WriteFile, checking its format and
// decoding its histograms.
func ReadFile(path string) (*Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("stats: %s: %w", path, err)
	}
	if r.Format != Format {
		return nil, fmt.Errorf("stats: %s: format %q, want %q", path, r.Format, Format)
	}
	for name, m := range r.Metrics {
		if _, err := m.Histogram(); err != nil {
			return nil, fmt.Errorf("stats: %s: metric %s: %w", path, name, err)
		}
	}
	return &r, nil
}

// ErrMismatch is returned by Merge for results of different scenarios or
// formats.
var ErrMismatch = errors.New("stats: results do not belong to one run")

// Merge combines shard results exactly: counters and errors add, histograms
// merge bucket by bucket, series intervals of the same second combine, the
// window spans all shards. Percentiles are recomputed from the merged
// histograms.
func Merge(parts ...*Result) (*Result, error) {
	if len(parts) == 0 {
		return nil, fmt.Errorf("stats: merge: nothing to merge")
	}
	out := &Result{
		Format:   Format,
		Scenario: parts[0].Scenario,
		Config:   parts[0].Config,
		Counters: map[string]int64{},
		Errors:   map[string]int64{},
		Metrics:  map[string]*Metric{},
	}
	hists := map[string]*hdr.Histogram{}
	series := map[int64]*Interval{}
	seriesH := map[int64]map[string]*hdr.Histogram{}
	for i, p := range parts {
		if p.Format != Format || p.Scenario != out.Scenario {
			return nil, fmt.Errorf("%w: part %d is %s/%s, part 0 is %s/%s", ErrMismatch, i, p.Format, p.Scenario, Format, out.Scenario)
		}
		out.Shards = append(out.Shards, p.Shards...)
		if out.Started.IsZero() || p.Started.Before(out.Started) {
			out.Started = p.Started
		}
		if p.Ended.After(out.Ended) {
			out.Ended = p.Ended
		}
		if out.Window.Start.IsZero() || p.Window.Start.Before(out.Window.Start) {
			out.Window.Start = p.Window.Start
		}
		if p.Window.End.After(out.Window.End) {
			out.Window.End = p.Window.End
		}
		for k, v := range p.Counters {
			out.Counters[k] += v
		}
		for k, v := range p.Errors {
			out.Errors[k] += v
		}
		for name, m := range p.Metrics {
			h, err := m.Histogram()
			if err != nil {
				return nil, err
			}
			if hists[name] == nil {
				hists[name] = NewHistogram()
			}
			if dropped := hists[name].Merge(h); dropped != 0 {
				return nil, fmt.Errorf("stats: merge %s: %d values outside the shared range", name, dropped)
			}
		}
		for _, iv := range p.Series {
			o := series[iv.T]
			if o == nil {
				o = &Interval{T: iv.T, Counters: map[string]int64{}, Hists: map[string]string{}}
				series[iv.T] = o
				seriesH[iv.T] = map[string]*hdr.Histogram{}
			}
			for k, v := range iv.Counters {
				o.Counters[k] += v
			}
			for k, v := range iv.Errors {
				if o.Errors == nil {
					o.Errors = map[string]int64{}
				}
				o.Errors[k] += v
			}
			o.Span = max(o.Span, iv.Span)
			for name, enc := range iv.Hists {
				h, err := DecodeHist(enc)
				if err != nil {
					return nil, err
				}
				if seriesH[iv.T][name] == nil {
					seriesH[iv.T][name] = NewHistogram()
				}
				seriesH[iv.T][name].Merge(h)
			}
		}
	}
	for name, h := range hists {
		out.Metrics[name] = newMetric(h)
	}
	for t, o := range series {
		for name, h := range seriesH[t] {
			o.Hists[name] = encode(h)
		}
		out.Series = append(out.Series, *o)
	}
	sort.Slice(out.Series, func(i, j int) bool { return out.Series[i].T < out.Series[j].T })
	sort.Slice(out.Shards, func(i, j int) bool { return out.Shards[i].Index < out.Shards[j].Index })
	return out, nil
}
