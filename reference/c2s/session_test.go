package c2s

import (
	"errors"
	"net"
	"strings"
	"testing"
)

func TestSafeErrDropsAddresses(t *testing.T) {
	err := &net.OpError{Op: "read", Net: "tcp",
		Source: &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 5222},
		Addr:   &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 40000},
		Err:    errors.New("connection reset by peer")}
	if !strings.Contains(err.Error(), "192.0.2.7") {
		t.Fatal("positive control: the raw error carries the address")
	}
	got := safeErr(err)
	if strings.Contains(got, "192.0.2.7") || strings.Contains(got, "10.1.2.3") || got != "connection reset by peer" {
		t.Fatalf("safeErr = %q", got)
	}
}

func TestLimitKey(t *testing.T) {
	for _, tc := range []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 1}, "192.0.2.7"},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.7"), Port: 1}, "192.0.2.7"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:3:4:5:6"), Port: 1}, "2001:db8:1:2::/64"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:ffff::1"), Port: 1}, "2001:db8:1:2::/64"},
	} {
		if got := limitKey(tc.addr); got != tc.want {
			t.Errorf("limitKey(%v) = %q, want %q", tc.addr, got, tc.want)
		}
	}
}
