package reference

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xmppcheck/xmppcheck/spec/policies"
)

// TestFailStopsServerLoudly: a listener that dies for good (an accept
// error that is not temporary) stops the whole server with an ERROR line
// and Err, instead of leaving it half alive.
func TestFailStopsServerLoudly(t *testing.T) {
	srv := startServer(t)
	select {
	case <-srv.Done():
		t.Fatal("Done before any failure")
	default:
	}
	srv.Fail("s2s listener", errors.New("accept tcp 127.0.0.1:5269: bad file descriptor"))
	<-srv.Done()
	if err := srv.Err(); err == nil || !strings.Contains(err.Error(), "s2s listener died") || strings.Contains(err.Error(), "127.0.0.1") {
		t.Fatalf("Err() = %v", err)
	}
	if !strings.Contains(srv.log.String(), `level=ERROR msg="the server stops: a listener died" listener="s2s listener"`) {
		t.Errorf("no ERROR line:\n%s", srv.log.String())
	}
	if _, err := srv.Users(context.Background()); !errors.Is(err, ErrNotStarted) {
		t.Errorf("the server still runs after Fail: %v", err)
	}
}

// TestMissingStoreBesideUploadsRefused: the store is gone but uploads of
// existing accounts remain (the accounts "exist elsewhere"): the start is
// refused and creates nothing.
func TestMissingStoreBesideUploadsRefused(t *testing.T) {
	pol, err := policies.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	data, key := filepath.Join(root, "data"), filepath.Join(root, "at-rest.key")
	if err := os.MkdirAll(filepath.Join(data, "upload"), 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(data, "upload", "0123abcd.meta"), []byte("sealed"), 0o600)
	srv, err := New(pol, WithDataDir(data), WithKeyFile(key), WithC2SAddr("127.0.0.1:0"), WithC2STLSAddr(""))
	if err != nil {
		t.Fatal(err)
	}
	err = srv.Start(context.Background())
	if err == nil {
		srv.Close()
		t.Fatal("started without the store of existing uploads")
	}
	if !strings.Contains(err.Error(), "is missing") {
		t.Errorf("err = %v", err)
	}
	for _, p := range []string{key, filepath.Join(data, "store.db"), filepath.Join(data, CertFile)} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("the refused start created %s", p)
		}
	}
	// Positive control: without the uploads the same start succeeds.
	os.RemoveAll(filepath.Join(data, "upload"))
	srv, _ = New(pol, WithDataDir(data), WithKeyFile(key), WithC2SAddr("127.0.0.1:0"), WithC2STLSAddr(""))
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv.Close()
}
