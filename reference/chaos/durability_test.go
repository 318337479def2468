package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/xmppcheck/xmppcheck/internal/xmppclient"
	"github.com/xmppcheck/xmppcheck/reference/store"
)

// sender sends messages to an offline account and records which were
// acknowledged: a message is acknowledged once a ping sent after it has
// been answered (c2s stanzas are handled in order, and an offline message
// is on disk before the next stanza is read) and no error came back for it.
type sender struct {
	mu      sync.Mutex
	acked   []string
	bounced map[string]bool
}

func (s *sender) run(ctx context.Context, cl *xmppclient.Client, to string, n int, batch int) {
	s.bounced = map[string]bool{}
	isError := func(st xmppclient.Stanza) bool { return st.Name.Local == "message" && st.Type == "error" }
	for i := 0; i < n; i += batch {
		var ids []string
		for j := i; j < min(i+batch, n); j++ {
			id := fmt.Sprintf("m%04d", j)
			if cl.Send(ctx, fmt.Sprintf("<message to='%s' type='chat' id='%s'><body>%s %s</body></message>", to, id, id, strings.Repeat("x", 200))) != nil {
				return
			}
			ids = append(ids, id)
		}
		if _, err := cl.Ping(ctx, ""); err != nil {
			return
		}
		// The client reads in order: every error for the batch came
		// before the ping's answer and waits in its queue now.
		for {
			qctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
			st, err := cl.RecvMatch(qctx, isError)
			cancel()
			if err != nil {
				break
			}
			s.mu.Lock()
			s.bounced[st.ID] = true
			s.mu.Unlock()
		}
		s.mu.Lock()
		for _, id := range ids {
			if !s.bounced[id] {
				s.acked = append(s.acked, id)
			}
		}
		s.mu.Unlock()
	}
}

func (s *sender) ackedIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.acked...)
}

// receive logs in as user, sends presence and collects offline messages
// until every id of want arrived (bounded).
func receive(t *testing.T, c *child, user string, want []string) (missing []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := c.login(ctx, user, netip.Addr{})
	if err != nil {
		t.Fatalf("login after restart: %v", err)
	}
	defer cl.Close(ctx)
	if err := cl.SendPresence(ctx, "", "", ""); err != nil {
		t.Fatal(err)
	}
	left := map[string]bool{}
	for _, id := range want {
		left[id] = true
	}
	for len(left) > 0 {
		st, err := cl.Recv(ctx)
		if err != nil {
			break
		}
		delete(left, st.ID)
	}
	for id := range left {
		missing = append(missing, id)
	}
	return missing
}

// TestKillDuringOfflineWrites kills the server with SIGKILL while a client
// stores offline messages — once during plain writes, once while the
// store is being compacted without pause — restarts it on the same data
// and checks that every acknowledged message is delivered.
func TestKillDuringOfflineWrites(t *testing.T) {
	for _, compacting := range []bool{false, true} {
		name := "writes"
		if compacting {
			name = "compaction"
		}
		t.Run(name, func(t *testing.T) {
			cfg := newConfig(t)
			c := mustStart(t, cfg)
			c.addUser("alice")
			c.addUser("bob")
			cfg.CompactLoop = compacting
			c.kill()
			c = mustStart(t, cfg)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			alice, err := c.login(ctx, "alice", netip.Addr{})
			if err != nil {
				t.Fatal(err)
			}
			var s sender
			done := make(chan struct{})
			go func() { s.run(ctx, alice, "bob@localhost", 800, 5); close(done) }()
			// Kill at a random moment once some messages are acknowledged.
			for threshold := 20 + rand.IntN(150); len(s.ackedIDs()) < threshold; {
				select {
				case <-done:
					t.Fatal("every message was sent before the kill")
				case <-time.After(5 * time.Millisecond):
				}
			}
			time.Sleep(time.Duration(rand.IntN(50)) * time.Millisecond)
			c.kill()
			<-done
			acked := s.ackedIDs()
			cfg.CompactLoop = false
			c = mustStart(t, cfg)
			missing := receive(t, c, "bob", acked)
			t.Logf("RELIABILITY kill -9 during %s: %d messages acknowledged before the kill, %d lost", name, len(acked), len(missing))
			if len(missing) > 0 {
				t.Errorf("acknowledged messages lost: %v", missing)
			}
		})
	}
}

// TestFullDisk puts the data directory on a 1 MiB tmpfs and fills it: the
// server refuses further offline messages with an error to the sender,
// keeps serving logins, and loses none of the messages it acknowledged;
// once space is freed it stores again.
func TestFullDisk(t *testing.T) {
	cfg := newConfig(t)
	if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", cfg.Data, "tmpfs", 0, "size=1m,mode=0700"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("cannot mount a tmpfs for the full-disk test: %v", err)
		}
		t.Skipf("SKIPPED LOUDLY: cannot mount a tmpfs for the full-disk test (%v); run as root, or with CI=true to make this a failure", err)
	}
	t.Cleanup(func() { syscall.Unmount(cfg.Data, syscall.MNT_DETACH) })
	c := mustStart(t, cfg)
	c.addUser("alice")
	c.addUser("bob")
	// Fill the disk but for a little room.
	filler := filepath.Join(cfg.Data, "filler")
	f, _ := os.Create(filler)
	f.Write(make([]byte, 800<<10))
	f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	alice, err := c.login(ctx, "alice", netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	var s sender
	t0 := time.Now()
	s.run(ctx, alice, "bob@localhost", 300, 10)
	t.Logf("sending took %v", time.Since(t0))
	acked := s.ackedIDs()
	s.mu.Lock()
	bounced := len(s.bounced)
	s.mu.Unlock()
	if bounced == 0 {
		t.Fatalf("control: the disk never filled (%d messages acknowledged)", len(acked))
	}
	if !strings.Contains(c.log(), "no space left on device") {
		t.Errorf("the full disk is not in the log:\n%s", c.log())
	}
	if err := c.checks()["c2s"](); err != nil {
		t.Errorf("login on a full disk: %v", err)
	}
	os.Remove(filler)
	missing := receive(t, c, "bob", acked)
	t.Logf("RELIABILITY full disk: %d messages acknowledged, %d refused with an error to the sender, %d lost", len(acked), bounced, len(missing))
	if len(missing) > 0 {
		t.Errorf("acknowledged messages lost: %v", missing)
	}
	// And after a restart.
	c.kill()
	c = mustStart(t, cfg)
	if err := c.checks()["c2s"](); err != nil {
		t.Errorf("login after the restart: %v", err)
	}
}

// TestCorruptedStoreRefused damages the store file in the ways issue 10
// lists; each start is refused with a message naming the damage, and the
// refused start changes nothing on disk.
func TestCorruptedStoreRefused(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		damage     func(path string) error
	}{
		{"truncated", "truncated", func(p string) error {
			fi, err := os.Stat(p)
			if err != nil {
				return err
			}
			return os.Truncate(p, fi.Size()/3)
		}},
		{"zero length", "zero length", func(p string) error { return os.Truncate(p, 0) }},
		{"junk", "damaged", func(p string) error {
			f, err := os.OpenFile(p, os.O_RDWR, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			junk := make([]byte, 16<<10)
			for i := range junk {
				junk[i] = byte(rand.IntN(256))
			}
			_, err = f.WriteAt(junk, 2*4096)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := newConfig(t)
			c := mustStart(t, cfg)
			for i := range 20 {
				c.addUser(fmt.Sprintf("user%02d", i))
			}
			c.stdin.Close()
			c.cmd.Wait()
			if err := tc.damage(filepath.Join(cfg.Data, store.FileName)); err != nil {
				t.Fatal(err)
			}
			before := tree(t, cfg)
			_, err := start(t, cfg)
			if err == nil {
				t.Fatal("the server started on a damaged store")
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "wrong") {
				t.Errorf("refusal %q does not say %q", err, tc.want)
			}
			if after := tree(t, cfg); after != before {
				t.Errorf("the refused start changed the disk:\n%s\n%s", before, after)
			}
			t.Logf("RELIABILITY damaged store (%s): refused: %v", tc.name, err)
		})
	}
	t.Run("missing key beside the store", func(t *testing.T) {
		cfg := newConfig(t)
		c := mustStart(t, cfg)
		c.addUser("alice")
		c.stdin.Close()
		c.cmd.Wait()
		os.Remove(cfg.Key)
		_, err := start(t, cfg)
		if err == nil || !strings.Contains(err.Error(), "key file does not exist") {
			t.Fatalf("err = %v", err)
		}
		if _, serr := os.Stat(cfg.Key); serr == nil {
			t.Error("a new key was written beside the existing store")
		}
	})
}

// tree lists the data directory's and key's files with sizes and times.
func tree(t *testing.T, cfg childConfig) string {
	var b strings.Builder
	for _, p := range []string{cfg.Data, filepath.Dir(cfg.Key)} {
		filepath.Walk(p, func(path string, fi os.FileInfo, err error) error {
			if err == nil && !fi.IsDir() && path != cfg.Log {
				fmt.Fprintf(&b, "%s %d %v %v\n", path, fi.Size(), fi.ModTime().UnixNano(), fi.Mode())
			}
			return nil
		})
	}
	return b.String()
}
