//go:build !linux

package loadgen

import (
	"runtime"
	"time"
)

func raiseFDLimit(need uint64) (uint64, []string) {
	return 0, []string{"file descriptor limit not managed on " + runtime.GOOS}
}

func cpuTime() time.Duration { return 0 }

type memSample struct{ heapStack, rss uint64 }

func sampleMemory() memSample {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memSample{heapStack: ms.HeapInuse + ms.StackInuse}
}
