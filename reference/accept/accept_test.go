package accept_test

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/xmppcheck/xmppcheck/reference/accept"
)

// flaky fails its first n accepts with err.
type flaky struct {
	net.Listener
	mu  sync.Mutex
	n   int
	err error
}

func (f *flaky) Accept() (net.Conn, error) {
	f.mu.Lock()
	if f.n > 0 {
		f.n--
		f.mu.Unlock()
		return nil, f.err
	}
	f.mu.Unlock()
	return f.Listener.Accept()
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func emfile() error {
	return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
}

func TestRetriesEMFILEAndLogsOncePerBurst(t *testing.T) {
	var logs bytes.Buffer
	lg := slog.New(slog.NewTextHandler(&logs, nil))
	ln := accept.Guard(&flaky{Listener: listen(t), n: 6, err: emfile()}, accept.WithName("s2s"), accept.WithLogger(lg))
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			defer c.Close()
			c.Read(make([]byte, 1))
		}
	}()
	c, err := ln.Accept()
	if err != nil {
		t.Fatalf("accept after a burst of EMFILE: %v", err)
	}
	c.Close()
	if n := strings.Count(logs.String(), "accept failing"); n != 1 {
		t.Errorf("burst logged %d times, want once:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "failed_accepts=6") {
		t.Errorf("no recovery line with the count:\n%s", logs.String())
	}
}

func TestDeadListenerReturnsError(t *testing.T) {
	var logs bytes.Buffer
	dead := errors.New("accept: bad file descriptor")
	ln := accept.Guard(&flaky{Listener: listen(t), n: 1, err: dead}, accept.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if _, err := ln.Accept(); !errors.Is(err, dead) {
		t.Fatalf("err = %v, want the listener's error", err)
	}
	if !strings.Contains(logs.String(), "listener died") {
		t.Errorf("death not logged: %s", logs.String())
	}
}

func TestPerAddressCapAndBudget(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    []accept.Option
		refused string
	}{
		{"per address", []accept.Option{accept.WithPerAddr(2)}, "per_address_cap"},
		{"budget", []accept.Option{accept.WithBudget(accept.NewBudget(2))}, "preauth_budget"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var reasons []string
			opts := append(tc.opts, accept.WithRefused(func(r string) { mu.Lock(); reasons = append(reasons, r); mu.Unlock() }))
			ln := accept.Guard(listen(t), opts...)
			var held []net.Conn
			for range 3 {
				c, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				held = append(held, c)
			}
			a1, _ := ln.Accept()
			a2, _ := ln.Accept()
			next := make(chan net.Conn, 1)
			go func() {
				c, _ := ln.Accept()
				next <- c
			}()
			// The third is refused and closed: its client reads EOF.
			if _, err := held[2].Read(make([]byte, 1)); err == nil {
				t.Fatal("third connection not closed")
			}
			mu.Lock()
			if len(reasons) != 1 || reasons[0] != tc.refused {
				t.Errorf("refusals %v, want [%s]", reasons, tc.refused)
			}
			mu.Unlock()
			// Another address, or a promoted connection, makes room.
			var d net.Dialer
			if tc.refused == "preauth_budget" {
				accept.Promote(a1)
			} else {
				d.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}
			}
			c, err := d.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			a3 := <-next
			if a3 == nil {
				t.Fatal("no fourth connection")
			}
			a1.Close()
			a2.Close()
			a3.Close()
		})
	}
}

func TestKey(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.5:9":                   "127.0.0.5",
		"[::ffff:127.0.0.5]:9":          "127.0.0.5",
		"[2001:db8:1:2:aaaa::1]:5222":   "2001:db8:1:2::/64",
		"[2001:db8:1:2:bbbb::ffff]:999": "2001:db8:1:2::/64",
	} {
		a, _ := net.ResolveTCPAddr("tcp", in)
		if got := accept.Key(a); got != want {
			t.Errorf("Key(%s) = %s, want %s", in, got, want)
		}
	}
}
