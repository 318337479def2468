//go:build linux

package loadgen

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// raiseFDLimit raises RLIMIT_NOFILE to at least need, up to the hard limit
// (and the hard limit itself when privileged). It returns the limit in
// force and, when it stays below need, why.
func raiseFDLimit(need uint64) (uint64, []string) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, []string{"cannot read RLIMIT_NOFILE: " + err.Error()}
	}
	if lim.Cur >= need {
		return lim.Cur, nil
	}
	want := lim
	if need > lim.Max {
		want.Max = need
	}
	want.Cur = need
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err == nil {
		return want.Cur, nil
	}
	// Not privileged: settle for the hard limit.
	want = syscall.Rlimit{Cur: lim.Max, Max: lim.Max}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err == nil && want.Cur >= need {
		return want.Cur, nil
	}
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	note := fmt.Sprintf("file descriptor limit %d is below the %d this run needs and cannot be raised (hard limit %d; raising it needs CAP_SYS_RESOURCE or a higher nofile limit, e.g. ulimit -Hn or LimitNOFILE=): expect fd-limit errors", lim.Cur, need, lim.Max)
	return lim.Cur, []string{note}
}

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type memSample struct {
	heapStack uint64 // Go heap in use + goroutine stacks
	rss       uint64 // resident set size
}

// sampleMemory collects garbage first so that the sample is the live set.
func sampleMemory() memSample {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s := memSample{heapStack: ms.HeapInuse + ms.StackInuse}
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		f := strings.Fields(string(b))
		if len(f) > 1 {
			if pages, err := strconv.ParseUint(f[1], 10, 64); err == nil {
				s.rss = pages * uint64(os.Getpagesize())
			}
		}
	}
	return s
}
