package loadgen

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// A Pacer is a run's arrival-rate schedule (the seam vegeta calls Pacer,
// given as a schedule rather than a wait so that the pacing workers share
// it without a lock): it says when each operation is due, measured from
// the start of the measured phase. Operations are numbered 0, 1, …; Due(n)
// is the time at which n operations are due in all, so operation k is due
// at Due(k). A pacer is scaled for shards and mixed groups by dividing n.
type Pacer interface {
	// Due returns the offset from the start at which the n-th operation
	// is due; ok is false when the schedule holds fewer than n+1.
	Due(n float64) (at time.Duration, ok bool)
	// Ops is how many operations the whole schedule holds (fractional:
	// the integral of the rate).
	Ops() float64
	// Duration is the schedule's length.
	Duration() time.Duration
	// Peak is the highest rate (operations per second) the schedule asks.
	Peak() float64
	// String describes the schedule, e.g. "10s:0-1000,30s:1000".
	String() string
}

// Stage is one part of a Stages pacer: the rate goes linearly from From to
// To (operations per second) over Duration. From == To holds a rate; a
// sequence of holds is a step ladder; From < To ramps up, From > To ramps
// down.
type Stage struct {
	Duration time.Duration
	From, To float64
}

// Stages is a piecewise-linear arrival rate.
type Stages []Stage

// Constant returns the pacer of a fixed rate over d.
func Constant(rate float64, d time.Duration) Stages {
	return Stages{{Duration: d, From: rate, To: rate}}
}

func (s Stage) ops() float64 { return (s.From + s.To) / 2 * s.Duration.Seconds() }

// Due implements Pacer: within a stage of rates a→b over D the number of
// operations due after t seconds is a·t + (b−a)·t²/(2D), solved for t.
func (p Stages) Due(n float64) (time.Duration, bool) {
	var off time.Duration
	for _, s := range p {
		o := s.ops()
		if n < o {
			d := s.Duration.Seconds()
			a, b := s.From, s.To
			var t float64
			switch {
			case n <= 0:
				t = 0
			case a == b:
				t = n / a
			default:
				// The numerically stable root of (b−a)/(2D)·t² + a·t − n = 0.
				t = 2 * n / (a + math.Sqrt(a*a+2*(b-a)*n/d))
			}
			return off + time.Duration(t*float64(time.Second)), true
		}
		n -= o
		off += s.Duration
	}
	return off, false
}

// Ops implements Pacer.
func (p Stages) Ops() float64 {
	var o float64
	for _, s := range p {
		o += s.ops()
	}
	return o
}

// Duration implements Pacer.
func (p Stages) Duration() time.Duration {
	var d time.Duration
	for _, s := range p {
		d += s.Duration
	}
	return d
}

// Peak implements Pacer.
func (p Stages) Peak() float64 {
	var m float64
	for _, s := range p {
		m = max(m, s.From, s.To)
	}
	return m
}

// String implements Pacer in the syntax ParseStages reads.
func (p Stages) String() string {
	var parts []string
	for _, s := range p {
		r := strconv.FormatFloat(s.From, 'g', -1, 64)
		if s.To != s.From {
			r += "-" + strconv.FormatFloat(s.To, 'g', -1, 64)
		}
		parts = append(parts, s.Duration.String()+":"+r)
	}
	return strings.Join(parts, ",")
}

// check validates a schedule: every stage has a positive duration and
// non-negative rates, and some operation is due.
func (p Stages) check() error {
	if len(p) == 0 {
		return fmt.Errorf("%w: no stage", ErrConfig)
	}
	for i, s := range p {
		if s.Duration <= 0 {
			return fmt.Errorf("%w: stage %d: duration must be positive (every run is bounded)", ErrConfig, i+1)
		}
		if s.From < 0 || s.To < 0 || math.IsNaN(s.From+s.To) || math.IsInf(s.From+s.To, 0) {
			return fmt.Errorf("%w: stage %d: rates must be finite and not negative", ErrConfig, i+1)
		}
	}
	if p.Ops() < 1 {
		return fmt.Errorf("%w: the schedule holds no operation (rate must be positive)", ErrConfig)
	}
	return nil
}

// ParseStages reads "DURATION:RATE" (hold) and "DURATION:FROM-TO" (ramp)
// stages separated by commas, e.g. "10s:0-1000,30s:1000,10s:2000,10s:2000-0"
// (ramp up, hold, step, ramp down).
func ParseStages(s string) (Stages, error) {
	var p Stages
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		ds, rs, ok := strings.Cut(part, ":")
		if !ok {
			return nil, fmt.Errorf("%w: stage %q: want DURATION:RATE or DURATION:FROM-TO", ErrConfig, part)
		}
		d, err := time.ParseDuration(ds)
		if err != nil {
			return nil, fmt.Errorf("%w: stage %q: %v", ErrConfig, part, err)
		}
		from, to, ramp := strings.Cut(rs, "-")
		a, err := strconv.ParseFloat(from, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: stage %q: rate %q", ErrConfig, part, from)
		}
		b := a
		if ramp {
			if b, err = strconv.ParseFloat(to, 64); err != nil {
				return nil, fmt.Errorf("%w: stage %q: rate %q", ErrConfig, part, to)
			}
		}
		p = append(p, Stage{Duration: d, From: a, To: b})
	}
	return p, p.check()
}

// scaled is a share f of p (a shard's or a mixed group's).
type scaled struct {
	p Pacer
	f float64
}

func scalePacer(p Pacer, f float64) Pacer {
	if f == 1 {
		return p
	}
	return scaled{p, f}
}

func (s scaled) Due(n float64) (time.Duration, bool) {
	if s.f <= 0 {
		return 0, false
	}
	return s.p.Due(n / s.f)
}
func (s scaled) Ops() float64            { return s.p.Ops() * s.f }
func (s scaled) Duration() time.Duration { return s.p.Duration() }
func (s scaled) Peak() float64           { return s.p.Peak() * s.f }
func (s scaled) String() string          { return fmt.Sprintf("%g×(%s)", s.f, s.p) }
