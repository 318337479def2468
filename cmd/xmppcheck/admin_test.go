package main

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xmppcheck/xmppcheck/internal/syncbuf"
	"github.com/xmppcheck/xmppcheck/reference/control"
	"github.com/xmppcheck/xmppcheck/reference/store"
)

// TestAdminNoServerKeepsIdentity: with no server on the data directory,
// the clock commands fail with the "no server runs" hint and exit 2, and
// the error still is control.ErrNoServer; the user commands fall back to
// the store on that identity, not on the message's words.
func TestAdminNoServerKeepsIdentity(t *testing.T) {
	dir := t.TempDir()
	data, keyFile := filepath.Join(dir, "data"), filepath.Join(dir, "at-rest.key")
	if _, _, err := store.LoadOrCreateKey(keyFile, data); err != nil {
		t.Fatal(err)
	}
	args := []string{"admin", "--data", data, "--key-file", keyFile}

	err := execCLI(context.Background(), "", &syncbuf.Buffer{}, append(args, "clock", "now")...)
	if !errors.Is(err, control.ErrNoServer) {
		t.Errorf("clock now: %v is not control.ErrNoServer", err)
	}
	if err == nil || !strings.HasPrefix(err.Error(), "no server runs on "+data+": start 'xmppcheck serve --data") {
		t.Errorf("clock now: message %v", err)
	}
	var stderr bytes.Buffer
	if code := run(append(args, "clock", "now"), &bytes.Buffer{}, &stderr); code != exitUsage || !strings.Contains(stderr.String(), "xmppcheck: no server runs on ") {
		t.Errorf("clock now: exit %d, stderr %q", code, stderr.String())
	}

	out := &syncbuf.Buffer{}
	if err := execCLI(context.Background(), "s3cret\n", out, append(args, "user", "add", "carol")...); err != nil || !strings.Contains(out.String(), "created carol") {
		t.Fatalf("user add without a server: %v %s", err, out.String())
	}
	out = &syncbuf.Buffer{}
	if err := execCLI(context.Background(), "", out, append(args, "user", "list")...); err != nil || strings.TrimSpace(out.String()) != "carol" {
		t.Fatalf("user list without a server: %v %q", err, out.String())
	}
}
