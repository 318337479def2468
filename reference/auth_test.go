package reference

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xmppcheck/xmppcheck/internal/ns"
	"github.com/xmppcheck/xmppcheck/reference/scramauth"
	"github.com/xmppcheck/xmppcheck/reference/store"
	"github.com/xmppcheck/xmppcheck/spec"
)

// TestNoAuthWithoutTLS: tls.c2s-required.
func TestNoAuthWithoutTLS(t *testing.T) {
	srv := startServer(t)
	srv.user(t, "alice", "pa")
	c := rawDial(t, srv.Addrs().C2S, "localhost")
	f := c.open()
	st := f.Child(ns.TLS, "starttls")
	if st == nil || st.Child(ns.TLS, "required") == nil || f.Child(ns.SASL, "mechanisms") != nil {
		t.Fatalf("features before TLS: %s", f)
	}
	c.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>", base64.StdEncoding.EncodeToString([]byte("\x00alice\x00pa")))
	if el := c.next(); el.Name.Local != "failure" || el.Child(ns.SASL, "encryption-required") == nil {
		t.Fatalf("auth before TLS: %s", el)
	}
	c.send("<iq type='get' id='1'><query xmlns='jabber:iq:register'/></iq>")
	if el := c.next(); el.Name.Local != "error" || el.Child(ns.StreamErrors, "policy-violation") == nil {
		t.Fatalf("stanza before TLS: %s", el)
	}
	// No PLAIN after TLS either.
	s := secure(t, srv.Server)
	for _, m := range s.features.Child(ns.SASL, "mechanisms").Elements() {
		if !strings.HasPrefix(m.Text(), "SCRAM-") {
			t.Fatalf("mechanism %s offered", m.Text())
		}
	}
	s.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>", base64.StdEncoding.EncodeToString([]byte("\x00alice\x00pa")))
	if el := s.next(); el.Child(ns.SASL, "invalid-mechanism") == nil {
		t.Fatalf("PLAIN: %s", el)
	}
}

// TestPreAuthFailureLogsAggregated is finding 7 of issue 10: connections
// without an account made one WARN line per attempt. Now a burst from one
// address makes one line per kind (failed login, refusal) until the
// interval's sum.
func TestPreAuthFailureLogsAggregated(t *testing.T) {
	srv := startServer(t)
	claim, _ := srv.Policy().Claim(spec.AuthBruteForce)
	max := claim.Params.Count("max_failures")
	attempts := max + 15
	for i := 0; i < attempts; i++ {
		c := secure(t, srv.Server)
		if cond, _ := c.auth("SCRAM-SHA-1", "nobody", "wrong"); cond != "not-authorized" {
			t.Fatalf("attempt %d: %q", i+1, cond)
		}
	}
	lines := 0
	for _, l := range strings.Split(srv.log.String(), "\n") {
		if strings.Contains(l, "127.0.0.1") {
			lines++
		}
	}
	// Positive control: the burst is in the log at all.
	if lines == 0 {
		t.Fatalf("no failed-login line:\n%s", srv.log.String())
	}
	if lines > 2 {
		t.Errorf("%d log lines for %d failed attempts from one address, want ≤ 2 before the interval's sum:\n%s", lines, attempts, srv.log.String())
	}
}

// TestBruteForceAndLogs: auth.brute-force-protection and
// privacy.no-client-ip — after max_failures failed logins from an address
// even the right password is refused; failed logins are logged with the
// address (the positive control) and nothing else is.
func TestBruteForceAndLogs(t *testing.T) {
	srv := startServer(t)
	srv.user(t, "victim", "right")
	srv.user(t, "other", "po")
	ok := login(t, srv.Server, "other", "po", "o")
	ok.send("<presence/>")
	ok.send("<message to='other@localhost'><body>x</body></message>")
	ok.sync()
	if strings.Contains(srv.log.String(), "127.0.0.1") {
		t.Fatalf("a successful session logged the client address:\n%s", srv.log.String())
	}
	claim, _ := srv.Policy().Claim(spec.AuthBruteForce)
	max, window := claim.Params.Count("max_failures"), claim.Params.Duration("window")
	for i := 0; i < max; i++ {
		c := secure(t, srv.Server)
		if cond, _ := c.auth("SCRAM-SHA-1", "victim", "wrong"); cond != "not-authorized" {
			t.Fatalf("failure %d: %q", i+1, cond)
		}
	}
	c := secure(t, srv.Server)
	cond, text := c.auth("SCRAM-SHA-1", "victim", "right")
	if cond == "" || !strings.Contains(text, "too many failed logins") {
		t.Fatalf("attempt %d with the right password: cond=%q text=%q", max+1, cond, text)
	}
	var failedLines int
	sc := bufio.NewScanner(strings.NewReader(srv.log.String()))
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, "127.0.0.1") {
			continue
		}
		if !strings.Contains(line, "failed login") && !strings.Contains(line, "login refused") {
			t.Errorf("address in a log line that is not a failed login: %s", line)
		}
		failedLines++
	}
	// Repeats within logburst's interval are summed (issue 10, finding 7):
	// the first failed login and the first refusal are logged at once.
	if failedLines < 1 {
		t.Fatalf("positive control: no failed-login line carries the address:\n%s", srv.log.String())
	}
	// After the window, the right password works again.
	srv.TestClock().Advance(window)
	login(t, srv.Server, "victim", "right", "v")
}

// TestSCRAMStorage: auth.scram-storage — the store holds, per hash, salt,
// iterations ≥ the policy's minimum, StoredKey and ServerKey consistent with
// the password, and the password is in no file of the data directory, in
// no encoding, nor in the logs.
func TestSCRAMStorage(t *testing.T) {
	srv := startServer(t)
	const pass = "Pässwörd-marker-42"
	srv.user(t, "alice", pass)
	login(t, srv.Server, "alice", pass, "a")
	claim, _ := srv.Policy().Claim(spec.AuthSCRAMStorage)
	var found bool
	sc := bufio.NewScanner(strings.NewReader(srv.dump(t)))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r store.DumpRecord
		json.Unmarshal(sc.Bytes(), &r)
		if r.Bucket != "users" {
			continue
		}
		var u store.User
		if err := json.Unmarshal([]byte(r.Value), &u); err != nil {
			t.Fatal(err)
		}
		c, ok := u.SCRAM[claim.Params.Hash("hash")]
		if !ok {
			t.Fatalf("no %s credentials: %+v", claim.Params.Hash("hash"), u)
		}
		if c.Iterations < claim.Params.Count("min_iterations") || !scramauth.Verify(pass, claim.Params.Hash("hash"), c) {
			t.Fatalf("credentials do not match the password: %+v", c)
		}
		var raw map[string]any
		json.Unmarshal([]byte(r.Value), &raw)
		for k := range raw {
			if k != "name" && k != "scram" {
				t.Errorf("user record field %q", k)
			}
		}
		found = true
	}
	if !found {
		t.Fatal("positive control: no user record in the dump")
	}
	var b bytes.Buffer
	srv.DumpCredentials(&b)
	if !strings.Contains(b.String(), "scram alice@localhost SHA-1 4096 ") {
		t.Fatalf("credential export: %s", b.String())
	}
	forms := [][]byte{[]byte(pass), []byte(base64.StdEncoding.EncodeToString([]byte(pass))), []byte(hex.EncodeToString([]byte(pass))), []byte(strings.ToUpper(hex.EncodeToString([]byte(pass))))}
	srv.Close()
	filepath.WalkDir(srv.DataDir(), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, _ := os.ReadFile(p)
		for _, f := range forms {
			if bytes.Contains(data, f) {
				t.Errorf("%s holds the password as %q", p, f)
			}
		}
		return nil
	})
	for _, f := range forms {
		if strings.Contains(srv.log.String(), string(f)) {
			t.Errorf("log holds the password as %q", f)
		}
	}
}

func TestAuthzidAndUnknownUser(t *testing.T) {
	srv := startServer(t)
	srv.user(t, "alice", "pa")
	c := secure(t, srv.Server)
	if cond, _ := c.auth("SCRAM-SHA-1", "nobody", "pa"); cond != "not-authorized" {
		t.Fatalf("unknown user: %q", cond)
	}
	// After a failure the same stream may retry (RFC 6120 §6.4.5).
	if cond, _ := c.auth("SCRAM-SHA-1", "alice", "pa"); cond != "" {
		t.Fatalf("retry: %q", cond)
	}
	_ = tls.VersionTLS12
}
