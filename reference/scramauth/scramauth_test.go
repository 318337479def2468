package scramauth

import (
	"errors"
	"testing"

	"github.com/xdg-go/scram"

	"github.com/xmppcheck/xmppcheck/reference/store"
	"github.com/xmppcheck/xmppcheck/spec"
)

func run(t *testing.T, mech, user, pass string, creds map[string]store.Credentials) error {
	t.Helper()
	hash, _, _ := ParseMechanism(mech)
	lookup := func(u, h string) (store.Credentials, bool) {
		if u != "alice" {
			return store.Credentials{}, false
		}
		c, ok := creds[h]
		return c, ok
	}
	conv, err := Start(mech, lookup, scram.ChannelBinding{}, []byte("k"), 4096)
	if err != nil {
		t.Fatal(err)
	}
	cl, _ := hashes[hash].NewClient(user, pass, "")
	cc := cl.NewConversation()
	msg, _ := cc.Step("")
	for {
		out, done, err := conv.Step([]byte(msg))
		if err != nil {
			return err
		}
		next, cerr := cc.Step(string(out))
		if done {
			if cerr != nil {
				t.Fatalf("client refused the server's final message: %v", cerr)
			}
			return nil
		}
		msg = next
	}
}

func TestConversation(t *testing.T) {
	creds, err := Derive("pencil", 4096, spec.HashSHA1, spec.HashSHA256)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		mech, user, pass string
		ok               bool
	}{
		{"SCRAM-SHA-1", "alice", "pencil", true},
		{"SCRAM-SHA-256", "alice", "pencil", true},
		{"SCRAM-SHA-1", "alice", "wrong", false},
		{"SCRAM-SHA-256", "alice", "wrong", false},
		{"SCRAM-SHA-1", "nobody", "pencil", false},
	} {
		err := run(t, tc.mech, tc.user, tc.pass, creds)
		if tc.ok != (err == nil) {
			t.Errorf("%s %s/%s: err=%v, want ok=%v", tc.mech, tc.user, tc.pass, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrFailed) {
			t.Errorf("error %v is not ErrFailed", err)
		}
	}
}

func TestDeriveStoresNoPasswordEquivalent(t *testing.T) {
	creds, _ := Derive("pencil", 10000, spec.HashSHA1)
	c := creds[spec.HashSHA1]
	if c.Iterations != 10000 || len(c.Salt) != 16 || len(c.StoredKey) != 20 || len(c.ServerKey) != 20 {
		t.Fatalf("credentials %+v", c)
	}
	if !Verify("pencil", spec.HashSHA1, c) || Verify("pencil2", spec.HashSHA1, c) {
		t.Fatal("Verify disagrees with Derive")
	}
	low, _ := Derive("pencil", 10, spec.HashSHA1)
	if low[spec.HashSHA1].Iterations != MinIterations {
		t.Fatalf("iterations below the minimum stored: %d", low[spec.HashSHA1].Iterations)
	}
}

func TestParseMechanism(t *testing.T) {
	for _, tc := range []struct {
		in   string
		hash string
		plus bool
		ok   bool
	}{
		{"SCRAM-SHA-1", spec.HashSHA1, false, true},
		{"SCRAM-SHA-256-PLUS", spec.HashSHA256, true, true},
		{"PLAIN", "", false, false},
		{"SCRAM-MD5", "", false, false},
	} {
		h, p, ok := ParseMechanism(tc.in)
		if h != tc.hash || p != tc.plus || ok != tc.ok {
			t.Errorf("%s: %q %v %v", tc.in, h, p, ok)
		}
	}
}
