package redact_test

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"strings"
	"syscall"
	"testing"

	"github.com/xmppcheck/xmppcheck/reference/redact"
)

func TestErr(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		gone []string
		kept []string
	}{
		{"read reset", &net.OpError{Op: "read", Net: "tcp",
			Source: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 15443},
			Addr:   &net.TCPAddr{IP: net.IPv4(127, 0, 0, 77), Port: 48478}, Err: syscall.ECONNRESET},
			[]string{"127.0.0.77", "48478", "15443"}, []string{"connection reset by peer", "read tcp"}},
		{"ipv6", &net.OpError{Op: "write", Net: "tcp", Addr: &net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 5222}, Err: syscall.EPIPE},
			[]string{"2001:db8::1", "5222"}, []string{"broken pipe"}},
		{"mapped", errors.New("remote error from [::ffff:127.0.0.9]:4000: tls: bad certificate"),
			[]string{"127.0.0.9", "4000"}, []string{"tls: bad certificate"}},
		{"loopback v6", errors.New("dial tcp [::1]:5269: connect: connection refused"),
			[]string{"::1", "5269"}, []string{"connection refused"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := tc.err.Error()
			got := redact.Err(tc.err)
			for _, g := range tc.gone {
				// Positive control: the raw text carries it.
				if !strings.Contains(raw, g) {
					t.Fatalf("control: %q not in the raw error %q", g, raw)
				}
				if strings.Contains(got, g) {
					t.Errorf("%q still in %q", g, got)
				}
			}
			for _, k := range tc.kept {
				if !strings.Contains(got, k) {
					t.Errorf("%q lost from %q", k, got)
				}
			}
		})
	}
}

func TestHandler(t *testing.T) {
	var b bytes.Buffer
	l := slog.New(redact.Handler(slog.NewTextHandler(&b, nil)))
	err := &net.OpError{Op: "read", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 999}, Err: syscall.ECONNRESET}
	l.With("e0", err).WithGroup("g").Info("x", "err", err, "addr", "10.1.2.3")
	out := b.String()
	if strings.Count(out, "10.1.2.3") != 1 || !strings.Contains(out, "g.addr=10.1.2.3") {
		t.Errorf("want the address only in the plain addr attribute: %s", out)
	}
	if !errors.Is(redact.Wrap(err), syscall.ECONNRESET) {
		t.Error("Wrap hides the cause")
	}
}
