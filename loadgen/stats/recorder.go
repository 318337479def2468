package stats

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram geometry shared by every histogram the load generator writes,
// so that any two merge exactly: microseconds from 1 µs to 10 minutes, 3
// significant digits.
const (
	LowestUS   = 1
	HighestUS  = int64(10 * time.Minute / time.Microsecond)
	SigFigures = 3
)

// NewHistogram returns an empty histogram of the shared geometry.
func NewHistogram() *hdr.Histogram { return hdr.New(LowestUS, HighestUS, SigFigures) }

// Counter names used across scenarios.
const (
	Scheduled  = "scheduled"   // operations the schedule asked for
	Sent       = "sent"        // operations started (stanzas written, logins begun)
	Completed  = "completed"   // operations observed complete (messages received, logins bound)
	Expected   = "expected"    // deliveries expected (presence fan-out multiplies sends)
	LateStarts = "late_starts" // operations that started later than the late threshold
	Errors     = "errors"      // sum of errors by kind
	Foreign    = "foreign"     // stanzas of other runs or without marker, ignored
	Sessions   = "sessions"    // sessions established
)

// Recorder collects measurements from many goroutines. Latencies go to
// sharded HDR histograms (a mutex per shard, so recording scales with
// cores); Tick, called once a second, closes an interval into the series.
type Recorder struct {
	metrics []string
	index   map[string]int
	shards  []recShard
	start   time.Time

	counters sync.Map // name -> *atomic.Int64

	errMu  sync.Mutex
	errors map[string]int64

	tickMu   sync.Mutex
	last     map[string]int64 // counters at the previous tick
	lastErrs map[string]int64 // errors by kind at the previous tick
	lastTick time.Time
	sink     func(Interval)
	totals   []*hdr.Histogram
	series   []Interval
	lastT    int64
}

type recShard struct {
	mu sync.Mutex
	h  []*hdr.Histogram
	_  [40]byte // keep shards on separate cache lines
}

// NewRecorder returns a recorder for the named latency metrics, with
// shards shards (at least 1).
func NewRecorder(metrics []string, shards int) *Recorder {
	if shards < 1 {
		shards = 1
	}
	r := &Recorder{
		metrics: metrics,
		index:   map[string]int{},
		shards:  make([]recShard, shards),
		errors:  map[string]int64{},
		last:    map[string]int64{},
		start:   time.Now(),

		lastErrs: map[string]int64{},
	}
	r.lastTick = r.start
	for i, m := range metrics {
		r.index[m] = i
		r.totals = append(r.totals, NewHistogram())
	}
	for i := range r.shards {
		for range metrics {
			r.shards[i].h = append(r.shards[i].h, NewHistogram())
		}
	}
	return r
}

// Metric returns the id of a metric name for Record, or -1.
func (r *Recorder) Metric(name string) int {
	if i, ok := r.index[name]; ok {
		return i
	}
	return -1
}

// Record adds a latency to metric (an id from Metric); hint spreads
// concurrent callers over shards (a session index does). Values beyond the
// histogram's range are clamped to its highest value.
func (r *Recorder) Record(metric, hint int, d time.Duration) {
	if metric < 0 {
		return
	}
	us := int64(d / time.Microsecond)
	if us < LowestUS {
		us = LowestUS
	}
	if us > HighestUS {
		us = HighestUS
	}
	s := &r.shards[uint(hint)%uint(len(r.shards))]
	s.mu.Lock()
	s.h[metric].RecordValue(us)
	s.mu.Unlock()
}

// Counter returns the named counter, creating it at zero.
func (r *Recorder) Counter(name string) *atomic.Int64 {
	if c, ok := r.counters.Load(name); ok {
		return c.(*atomic.Int64)
	}
	c, _ := r.counters.LoadOrStore(name, new(atomic.Int64))
	return c.(*atomic.Int64)
}

// Add adds n to the named counter.
func (r *Recorder) Add(name string, n int64) { r.Counter(name).Add(n) }

// Error counts one error of the given kind (and the Errors counter).
func (r *Recorder) Error(kind string) {
	r.errMu.Lock()
	r.errors[kind]++
	r.errMu.Unlock()
	r.Counter(Errors).Add(1)
}

// ErrorsByKind returns a copy of the error counts.
func (r *Recorder) ErrorsByKind() map[string]int64 {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	m := make(map[string]int64, len(r.errors))
	for k, v := range r.errors {
		m[k] = v
	}
	return m
}

func (r *Recorder) counterSnapshot() map[string]int64 {
	m := map[string]int64{}
	r.counters.Range(func(k, v any) bool {
		m[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	return m
}

// Tick closes the current interval: the latencies recorded since the last
// tick and the counter deltas become one Interval stamped with now's Unix
// second. Call it once a second from one goroutine, and once at the end.
func (r *Recorder) Tick(now time.Time) {
	r.tickMu.Lock()
	defer r.tickMu.Unlock()
	iv := Interval{T: now.Unix(), Counters: map[string]int64{}, Hists: map[string]string{}}
	if iv.T <= r.lastT && len(r.series) > 0 {
		iv.T = r.lastT + 1 // two ticks in one second (the final one)
	}
	r.lastT = iv.T
	if span := now.Sub(r.lastTick); span > 0 {
		iv.Span = max(1, span.Milliseconds())
	}
	r.lastTick = now
	agg := make([]*hdr.Histogram, len(r.metrics))
	for i := range agg {
		agg[i] = NewHistogram()
	}
	for si := range r.shards {
		s := &r.shards[si]
		s.mu.Lock()
		for i, h := range s.h {
			if h.TotalCount() > 0 {
				agg[i].Merge(h)
				h.Reset()
			}
		}
		s.mu.Unlock()
	}
	for i, h := range agg {
		if h.TotalCount() == 0 {
			continue
		}
		r.totals[i].Merge(h)
		iv.Hists[r.metrics[i]] = encode(h)
	}
	for k, v := range r.counterSnapshot() {
		if d := v - r.last[k]; d != 0 {
			iv.Counters[k] = d
		}
		r.last[k] = v
	}
	for k, v := range r.ErrorsByKind() {
		if d := v - r.lastErrs[k]; d != 0 {
			if iv.Errors == nil {
				iv.Errors = map[string]int64{}
			}
			iv.Errors[k] = d
		}
		r.lastErrs[k] = v
	}
	r.series = append(r.series, iv)
	if r.sink != nil {
		r.sink(iv)
	}
}

// OnTick makes Tick hand every closed interval to sink (from Tick's
// goroutine, in order): the way results stream out while a run goes.
// Call it before the first Tick.
func (r *Recorder) OnTick(sink func(Interval)) { r.sink = sink }

// Restart sets the start of the first interval (the time the recorder's
// first measurement may come in).
func (r *Recorder) Restart(t time.Time) {
	r.tickMu.Lock()
	r.lastTick = t
	r.tickMu.Unlock()
}

// Snapshot returns the totals so far (as of the last Tick): the result of
// a run without its configuration and shard description.
func (r *Recorder) Snapshot() Result {
	r.tickMu.Lock()
	defer r.tickMu.Unlock()
	res := Result{
		Format:   Format,
		Counters: map[string]int64{},
		Errors:   r.ErrorsByKind(),
		Metrics:  map[string]*Metric{},
		Series:   append([]Interval(nil), r.series...),
	}
	for k, v := range r.last {
		res.Counters[k] = v
	}
	for i, name := range r.metrics {
		if r.totals[i].TotalCount() == 0 {
			continue
		}
		res.Metrics[name] = newMetric(r.totals[i])
	}
	sort.Slice(res.Series, func(i, j int) bool { return res.Series[i].T < res.Series[j].T })
	return res
}

// Live returns the current value of the named counters without waiting for
// a tick (for progress bars).
func (r *Recorder) Live(name string) int64 { return r.Counter(name).Load() }
