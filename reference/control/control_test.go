package control_test

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xmppcheck/xmppcheck/reference/control"
)

// TestCallTimesOut: a server that accepts and never answers (as the admin
// socket of issue 10 did once its accept loop had died: the kernel still
// queued connections) makes Call fail with ErrTimeout and a message that
// says what to look at, instead of hanging.
func TestCallTimesOut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "admin.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = control.Call(ctx, path, make([]byte, 32), control.Request{Op: control.OpUserList})
	if !errors.Is(err, control.ErrTimeout) || !strings.Contains(err.Error(), "overloaded or stuck") {
		t.Fatalf("err = %v, want ErrTimeout with an explanation", err)
	}
}

// TestCallAnswered is the positive control: a live server answers.
func TestCallAnswered(t *testing.T) {
	path := filepath.Join(t.TempDir(), "admin.sock")
	key := make([]byte, 32)
	srv, err := control.Listen(context.Background(), path, key, func(ctx context.Context, req control.Request) control.Response {
		return control.Response{OK: true, Users: []string{"alice"}}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	resp, err := control.Call(context.Background(), path, key, control.Request{Op: control.OpUserList})
	if err != nil || len(resp.Users) != 1 {
		t.Fatalf("resp %+v, err %v", resp, err)
	}
}
