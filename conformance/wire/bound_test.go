package wire_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/xmppcheck/xmppcheck/conformance/wire"
	"github.com/xmppcheck/xmppcheck/internal/hostilexmpp"
)

// rssBound is the most resident memory a probe process may reach against a
// hostile server (BENCHMARKS.md, RELIABILITY).
const rssBound = 64 << 20

func TestMain(m *testing.M) {
	if addr := os.Getenv("WIRE_HOSTILE_ADDR"); addr != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		_, err := wire.Dial(ctx, addr, "localhost", wire.WithTimeout(60*time.Second))
		fmt.Printf("too-large=%v protocol=%v hwm=%d err=%v\n", errors.Is(err, wire.ErrTooLarge), errors.Is(err, wire.ErrProtocol), peakRSS(), err)
		return
	}
	os.Exit(m.Run())
}

// TestHostileServerMemoryBound runs a probe in a child process against a
// server sending an endless token of each kind: the probe stops with
// ErrTooLarge (or, for deep nesting, encoding/xml's own depth limit) and
// its peak RSS stays under rssBound.
func TestHostileServerMemoryBound(t *testing.T) {
	for _, mode := range hostilexmpp.Modes {
		t.Run(string(mode), func(t *testing.T) {
			srv, err := hostilexmpp.Start(mode, 256<<20)
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "WIRE_HOSTILE_ADDR="+srv.Addr())
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("probe process: %v", err)
			}
			var rss int64
			fmt.Sscanf(string(out[strings.Index(string(out), "hwm="):]), "hwm=%d", &rss)
			t.Logf("%s: peak RSS %.1f MiB; %s", mode, float64(rss)/(1<<20), out)
			if !strings.Contains(string(out), "protocol=true") {
				t.Errorf("the probe did not stop with a protocol error: %s", out)
			}
			if rss > rssBound {
				t.Errorf("peak RSS %d MiB > bound %d MiB", rss>>20, rssBound>>20)
			}
		})
	}
}

// peakRSS is this process's peak resident set (VmHWM) in bytes. The
// parent cannot use the child's rusage: Linux counts in it the memory the
// process had before exec, which is the parent's.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			var kib int64
			fmt.Sscanf(strings.TrimSpace(v), "%d", &kib)
			return kib << 10
		}
	}
	return -1
}
