package stats

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// StreamFormat names the results stream: JSON lines written while a run
// goes (vegeta's "attack | tee | report" shape). The first line is the
// head (scenario, config, start, zero counters), then one line per closed
// second (an Interval: counter and error deltas, latency histograms), then
// a tail (end, window, shards). A stream cut short (crash, full disk,
// interrupt) still holds every second written before the cut, and
// ReadStream rebuilds a Result from it, marked Incomplete.
const StreamFormat = "xmppcheck-load-stream/1"

type streamLine struct {
	Format   string    `json:"format,omitempty"`
	Head     *Result   `json:"head,omitempty"`
	Interval *Interval `json:"interval,omitempty"`
	Tail     *Result   `json:"tail,omitempty"`
}

// StreamWriter encodes a results stream. Every line is written with one
// Write call as soon as it is known; its methods are safe for concurrent
// use and remember the first error.
type StreamWriter struct {
	mu  sync.Mutex
	w   io.Writer
	err error
}

// NewStreamWriter returns a StreamWriter on w.
func NewStreamWriter(w io.Writer) *StreamWriter { return &StreamWriter{w: w} }

func (s *StreamWriter) line(l streamLine) error {
	b, err := json.Marshal(l)
	if err != nil {
		return fmt.Errorf("stats: stream: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	if _, err := s.w.Write(append(b, '\n')); err != nil {
		s.err = fmt.Errorf("stats: stream: %w", err)
	}
	return s.err
}

// Head writes the first line: what the run is (scenario, config, start).
// Metrics, series and shards of head are not written.
func (s *StreamWriter) Head(head Result) error {
	head.Format = Format
	head.Metrics, head.Series, head.Shards, head.Thresholds = nil, nil, nil, nil
	return s.line(streamLine{Format: StreamFormat, Head: &head})
}

// Interval writes one closed second.
func (s *StreamWriter) Interval(iv Interval) error { return s.line(streamLine{Interval: &iv}) }

// Tail writes the last line: end, window and shards of tail.
func (s *StreamWriter) Tail(tail Result) error {
	t := Result{Ended: tail.Ended, Window: tail.Window, Shards: tail.Shards, Started: tail.Started}
	return s.line(streamLine{Tail: &t})
}

// Err returns the first write error.
func (s *StreamWriter) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// ErrNotStream is returned by ReadStream for input that is not a results
// stream.
var ErrNotStream = errors.New("stats: not a results stream")

// ReadStream rebuilds a Result from a results stream: counters and errors
// are the sums of the intervals', metrics the bucket-by-bucket merge of
// their histograms (the same arithmetic as the recorder's own totals, so
// the result is exact). Without a tail the result is Incomplete: its end
// and window close at its last interval.
func ReadStream(r io.Reader) (*Result, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	var res *Result
	hists := map[string]*hdr.Histogram{}
	var tail *Result
	line := 0
	var cut error // a line that did not decode: fatal unless it is the last
	for sc.Scan() {
		line++
		if len(sc.Bytes()) == 0 {
			continue
		}
		if cut != nil {
			return nil, cut
		}
		var l streamLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			if res == nil {
				return nil, fmt.Errorf("%w: line %d: %v", ErrNotStream, line, err)
			}
			// Only a last line cut in the middle of its write is
			// tolerated: what came before it is whole.
			cut = fmt.Errorf("%w: line %d: %v", ErrNotStream, line, err)
			continue
		}
		switch {
		case l.Head != nil:
			if l.Format != StreamFormat || res != nil {
				return nil, fmt.Errorf("%w: line %d: head %q", ErrNotStream, line, l.Format)
			}
			res = l.Head
			res.Format = Format
			if res.Counters == nil {
				res.Counters = map[string]int64{}
			}
			res.Errors = map[string]int64{}
			res.Metrics = map[string]*Metric{}
		case res == nil:
			return nil, fmt.Errorf("%w: line %d comes before the head", ErrNotStream, line)
		case l.Interval != nil:
			iv := *l.Interval
			for k, v := range iv.Counters {
				res.Counters[k] += v
			}
			for k, v := range iv.Errors {
				res.Errors[k] += v
			}
			for name, enc := range iv.Hists {
				h, err := DecodeHist(enc)
				if err != nil {
					return nil, fmt.Errorf("stats: stream line %d: %w", line, err)
				}
				if hists[name] == nil {
					hists[name] = NewHistogram()
				}
				hists[name].Merge(h)
			}
			res.Series = append(res.Series, iv)
		case l.Tail != nil:
			tail = l.Tail
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("stats: stream: %w", err)
	}
	if res == nil {
		return nil, fmt.Errorf("%w: no head", ErrNotStream)
	}
	for name, h := range hists {
		res.Metrics[name] = newMetric(h)
	}
	sort.Slice(res.Series, func(i, j int) bool { return res.Series[i].T < res.Series[j].T })
	if tail != nil {
		res.Ended, res.Window, res.Shards = tail.Ended, tail.Window, tail.Shards
	}
	if tail == nil || cut != nil {
		res.Incomplete = true
		if n := len(res.Series); n > 0 {
			last := res.Series[n-1]
			res.Ended = unixSecondEnd(last.T)
			if res.Window.Start.IsZero() || res.Window.Start.After(res.Ended) {
				res.Window.Start = res.Started
			}
			if res.Window.End.IsZero() || res.Window.End.After(res.Ended) {
				res.Window.End = res.Ended
			}
		}
	}
	return res, nil
}

// ReadAny reads a result file: a --json result or a results stream.
func ReadAny(path string) (*Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	first, _ := br.Peek(64)
	if len(first) > 0 && jsonStartsStream(first) {
		r, err := ReadStream(br)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return r, nil
	}
	f.Close()
	return ReadFile(path)
}

func jsonStartsStream(b []byte) bool {
	const p = `{"format":"` + StreamFormat
	return len(b) >= len(p) && string(b[:len(p)]) == p
}
