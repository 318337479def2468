package xmppclient_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
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
	fmt.Printf("too-large=%v protocol=%v err=%v\n", errors.Is(err, xmppclient.ErrTooLarge), errors.Is(err, xmppclient.ErrProtocol), err)
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
			rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss << 10 // KiB on Linux
			t.Logf("%s: peak RSS %.1f MiB; %s", mode, float64(rss)/(1<<20), out)
			if string(out[:len("too-large=true")]) != "too-large=true" {
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
