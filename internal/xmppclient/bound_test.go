package xmppclient_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/xmppcheck/xmppcheck/internal/hostilexmpp"
	"github.com/xmppcheck/xmppcheck/internal/xmppclient"
)

// rssBound is the most resident memory a client process may reach against
// a hostile server (BENCHMARKS.md, RELIABILITY).
const rssBound = 64 << 20

// hostileBudget is what the hostile server sends at most: far beyond the
// bound, so that a client without one would exceed it.
const hostileBudget = 256 << 20

func TestMain(m *testing.M) {
	if addr := os.Getenv("XMPPCLIENT_HOSTILE_ADDR"); addr != "" {
		hostileClient(addr)
		return
	}
	os.Exit(m.Run())
}

// hostileClient dials addr once and prints whether the read bound ended it.
func hostileClient(addr string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, err := xmppclient.Dial(ctx, addr, xmppclient.WithDomain("localhost"), xmppclient.WithTimeout(60*time.Second))
	fmt.Printf("too-large=%v protocol=%v hwm=%d err=%v\n", errors.Is(err, xmppclient.ErrTooLarge), errors.Is(err, xmppclient.ErrProtocol), peakRSS(), err)
}

// TestHostileServerMemoryBound runs the client in a child process against a
// server sending an endless token of each kind, and checks that the client
// stops with ErrTooLarge while its peak RSS stays under rssBound.
func TestHostileServerMemoryBound(t *testing.T) {
	for _, mode := range hostilexmpp.Modes {
		t.Run(string(mode), func(t *testing.T) {
			srv, err := hostilexmpp.Start(mode, hostileBudget)
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "XMPPCLIENT_HOSTILE_ADDR="+srv.Addr())
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("client process: %v", err)
			}
			var rss int64
			fmt.Sscanf(string(out[strings.Index(string(out), "hwm="):]), "hwm=%d", &rss)
			t.Logf("%s: peak RSS %.1f MiB; %s", mode, float64(rss)/(1<<20), out)
			if rss <= 0 {
				t.Fatalf("control: no peak RSS measured: %s", out)
			}
			if !strings.HasPrefix(string(out), "too-large=true") {
				t.Errorf("the client did not stop on the read bound: %s", out)
			}
			if rss > rssBound {
				t.Errorf("peak RSS %d MiB > bound %d MiB", rss>>20, rssBound>>20)
			}
		})
	}
}

func TestMaxElementSizeOption(t *testing.T) {
	srv, err := hostilexmpp.Start(hostilexmpp.Text, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	// Positive control: 4 KiB allowed, the 1 MiB text run ends the stream.
	_, err = xmppclient.Dial(ctxT(t), srv.Addr(), xmppclient.WithMaxElementSize(4<<10))
	if !errors.Is(err, xmppclient.ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
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
