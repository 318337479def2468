package loadgen

import (
	"context"
	"runtime"
	"sync"
	"time"
)

// pace fires total operations on p's schedule from start — operation k
// at start + p.Due(k) — from a few workers (no goroutine per operation).
// Each operation's lateness (actual − scheduled start) is recorded, and
// counted as a late start beyond the threshold; a worker never skips an
// operation to catch up, it only starts it late (open model: the latency
// of a late operation still counts from its scheduled time). It returns
// when every operation fired or ctx ended, with the time of the last
// scheduled operation.
func (r *runner) pace(ctx context.Context, start time.Time, p Pacer, total int64, fire func(worker int, k int64, sched time.Time)) time.Time {
	if total <= 0 || p == nil {
		return start
	}
	rate := p.Peak()
	workers := int(rate/2000) + 1
	if r.cfg.PaceTick > 0 {
		workers = int(rate/20000) + 1
	}
	workers = min(workers, 2*runtime.GOMAXPROCS(0), int(total))
	lagID := r.m[MetricLag]
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := int64(w); k < total; k += int64(workers) {
				due, ok := p.Due(float64(k))
				if !ok {
					return
				}
				sched := start.Add(due)
				if d := time.Until(sched); d > 0 {
					d = max(d, r.cfg.PaceTick)
					if d > 50*time.Millisecond {
						sleepCtx(ctx, d)
					} else {
						time.Sleep(d)
					}
				}
				if ctx.Err() != nil {
					return
				}
				r.cScheduled.Add(1)
				lag := time.Since(sched)
				r.rec.Record(lagID, w, lag)
				if lag > r.cfg.Late {
					r.cLate.Add(1)
				}
				fire(w, k, sched)
			}
		}()
	}
	wg.Wait()
	last, _ := p.Due(float64(total - 1))
	return start.Add(last)
}
