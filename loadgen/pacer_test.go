package loadgen_test

import (
	"math"
	"testing"
	"time"

	"github.com/xmppcheck/xmppcheck/loadgen"
	"github.com/xmppcheck/xmppcheck/loadgen/stats"
)

// due counts, for each second of p, the operations due in it.
func perSecond(p loadgen.Pacer) []int {
	out := make([]int, int(p.Duration()/time.Second))
	for k := 0; ; k++ {
		at, ok := p.Due(float64(k))
		if !ok {
			return out
		}
		if s := int(at / time.Second); s < len(out) {
			out[s]++
		}
	}
}

func TestStagesPacer(t *testing.T) {
	for _, tt := range []struct {
		spec string
		ops  float64
		want []int // operations due per second
	}{
		{"3s:10", 30, []int{10, 10, 10}},                                                       // hold
		{"2s:10,2s:30", 80, []int{10, 10, 30, 30}},                                             // step
		{"4s:0-40", 80, []int{5, 15, 25, 35}},                                                  // ramp up: rate 10t, 5+15+25+35
		{"2s:40-0", 40, []int{30, 10}},                                                         // ramp down
		{"1s:0-20,2s:20,1s:20-0", 60, []int{10, 20, 20, 10}},                                   // up, hold, down
		{"1s:10,1s:0,1s:10", 20, []int{10, 0, 10}},                                             // a pause
		{"2s:100-200", 300, []int{125, 175}},                                                   // ramp from a floor
		{"10s:1000", 10000, []int{1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000}}, // the constant pacer
	} {
		p, err := loadgen.ParseStages(tt.spec)
		if err != nil {
			t.Fatalf("%s: %v", tt.spec, err)
		}
		if math.Abs(p.Ops()-tt.ops) > 1e-9 {
			t.Errorf("%s: ops %g, want %g", tt.spec, p.Ops(), tt.ops)
		}
		got := perSecond(p)
		for i := range tt.want {
			// One operation may fall either side of a second's edge.
			if i >= len(got) || got[i] < tt.want[i]-1 || got[i] > tt.want[i]+1 {
				t.Errorf("%s: per second %v, want %v", tt.spec, got, tt.want)
				break
			}
		}
		if p.String() != tt.spec {
			t.Errorf("String() = %q, want %q", p.String(), tt.spec)
		}
		// Due is monotonic.
		prev := time.Duration(-1)
		for k := 0; k < int(tt.ops); k++ {
			at, _ := p.Due(float64(k))
			if at < prev {
				t.Fatalf("%s: Due(%d) = %s before Due(%d) = %s", tt.spec, k, at, k-1, prev)
			}
			prev = at
		}
	}
	if c := loadgen.Constant(200, 2*time.Second); c.Ops() != 400 {
		t.Errorf("constant ops %g", c.Ops())
	}
	for _, bad := range []string{"", "10s", "x:10", "0s:10", "1s:-5", "1s:a-b", "1s:0"} {
		if _, err := loadgen.ParseStages(bad); err == nil {
			t.Errorf("ParseStages(%q) succeeded", bad)
		}
	}
}

// A run on a stages schedule sends exactly the schedule's operations, and
// its per-second series follows the ramp.
func TestRunStages(t *testing.T) {
	target, accts, _ := fakeTarget(t, 10)
	p, err := loadgen.ParseStages("2s:0-100,1s:100")
	if err != nil {
		t.Fatal(err)
	}
	res := run(t, loadgen.Config{Scenario: "chat", Target: target, Accounts: accts, Pacer: p, Drain: 2 * time.Second})
	if res.Counters[stats.Sent] != 200 || res.Counters[stats.Completed] != 200 {
		t.Errorf("counters %v, want 200 sent and completed (100 on the ramp, 100 on the hold)", res.Counters)
	}
	if res.Config["schedule"] != "2s:0-100,1s:100" {
		t.Errorf("schedule in the config: %v", res.Config["schedule"])
	}
}
