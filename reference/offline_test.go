package reference

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xmppcheck/xmppcheck/internal/ns"
	"github.com/xmppcheck/xmppcheck/reference/store"
)

// TestOfflineDeliveredOnceThenGone covers XEP-0160 storage, delivery at the
// next available presence with a XEP-0203 stamp, and offline.delete-on-
// delivery: the dump (opened store) holds the body before delivery — the
// positive control — and not after.
func TestOfflineDeliveredOnceThenGone(t *testing.T) {
	srv := startServer(t)
	srv.user(t, "alice", "pa")
	srv.user(t, "bob", "pb")
	alice := login(t, srv.Server, "alice", "pa", "a")
	alice.send("<message to='bob@localhost' type='chat'><body>offline-body-marker</body></message>")
	alice.send("<message to='bob@localhost' type='chat'><active xmlns='http://jabber.org/protocol/chatstates'/></message>")
	alice.sync()
	if d := srv.dump(t); !strings.Contains(d, "offline-body-marker") {
		t.Fatalf("positive control: the pending offline message is not in the store:\n%s", d)
	} else if strings.Count(d, `"bucket":"offline"`) != 1 {
		t.Fatalf("want exactly one stored message (chat states are not stored):\n%s", d)
	}
	bob := login(t, srv.Server, "bob", "pb", "b")
	bob.send("<presence/>")
	m := bob.expect("offline message", isMessage)
	if m.ChildText(ns.Client, "body") != "offline-body-marker" || m.Get("from") != "alice@localhost/a" {
		t.Fatalf("got %s", m)
	}
	if d := m.Child(ns.Delay, "delay"); d == nil || d.Get("from") != "localhost" || d.Get("stamp") == "" {
		t.Fatalf("no XEP-0203 delay: %s", m)
	}
	bob.sync()
	if d := srv.dump(t); strings.Contains(d, "offline-body-marker") {
		t.Fatalf("delivered offline message still stored:\n%s", d)
	}
}

// TestOfflineRetention: offline.retention on the test clock — kept before
// max_age, gone after it.
func TestOfflineRetention(t *testing.T) {
	srv := startServer(t)
	srv.user(t, "alice", "pa")
	srv.user(t, "bob", "pb")
	claim, _ := srv.Policy().Claim("offline.retention")
	maxAge := claim.Params.Duration("max_age")
	alice := login(t, srv.Server, "alice", "pa", "a")
	alice.send("<message to='bob@localhost'><body>retention-marker</body></message>")
	alice.sync()
	tc := srv.TestClock()
	tc.Advance(maxAge - time.Hour)
	if d := srv.dump(t); !strings.Contains(d, "retention-marker") {
		t.Fatalf("purged before max_age (%v):\n%s", maxAge, d)
	}
	tc.Advance(2 * time.Hour)
	if d := srv.dump(t); strings.Contains(d, "retention-marker") {
		t.Fatalf("kept after max_age:\n%s", d)
	}
	bob := login(t, srv.Server, "bob", "pb", "b")
	bob.send("<presence/>")
	bob.sync()
	bob.send("<message to='bob@localhost/b'><body>self</body></message>")
	if m := bob.expect("message", isMessage); m.ChildText(ns.Client, "body") != "self" {
		t.Fatalf("a purged message was delivered: %s", m)
	}
}

// TestDeletedOfflineMessageLeavesTheFile: after delivery the store is
// compacted, so not even the sealed record of the message stays in the
// file (checked through the raw file: the sealed bytes are found before
// delivery — the positive control — and gone after).
func TestDeletedOfflineMessageLeavesTheFile(t *testing.T) {
	srv := startServer(t)
	srv.user(t, "alice", "pa")
	srv.user(t, "bob", "pb")
	alice := login(t, srv.Server, "alice", "pa", "a")
	alice.send("<message to='bob@localhost'><body>%s</body></message>", strings.Repeat("compaction-marker ", 50))
	alice.sync()
	sealed := sealedOffline(t, srv)
	if len(sealed) == 0 {
		t.Fatal("positive control: no sealed offline record found in the file")
	}
	bob := login(t, srv.Server, "bob", "pb", "b")
	bob.send("<presence/>")
	bob.expect("message", isMessage)
	bob.sync()
	// The server compacts by itself a moment after deletions (bounded wait
	// for that event, not a speed assertion).
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		raw, err := os.ReadFile(filepath.Join(srv.DataDir(), store.FileName))
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, s := range sealed {
			found = found || bytes.Contains(raw, s)
		}
		if !found {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the delivered message's sealed record is still in the store file")
		}
	}
}

// sealedOffline returns the raw sealed values of the offline bucket.
func sealedOffline(t *testing.T, srv testServer) [][]byte {
	t.Helper()
	var out [][]byte
	err := srv.store.RawForEach("offline", func(k, v []byte) {
		out = append(out, bytes.Clone(v))
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
