package reference

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDataDirHoldsNoPlaintext: storage.encrypted-at-rest end to end —
// what users store through the protocol (an offline message body, a vCard,
// a roster name, the account names) is in the store, as the opened dump
// shows (positive control), and in no file of the data directory in
// plaintext. The key file is outside the data directory.
func TestDataDirHoldsNoPlaintext(t *testing.T) {
	srv := startServer(t)
	srv.user(t, "markeralice", "pa")
	srv.user(t, "markerbob", "pb")
	a := login(t, srv.Server, "markeralice", "pa", "a")
	a.iq("set", "", "<query xmlns='jabber:iq:roster'><item jid='markerbob@localhost' name='rosternamemarker'/></query>")
	a.iq("set", "", "<vCard xmlns='vcard-temp'><FN>vcardmarker</FN></vCard>")
	a.send("<message to='markerbob@localhost'><body>offlinebodymarker</body></message>")
	a.sync()
	markers := []string{"markeralice", "markerbob", "rosternamemarker", "vcardmarker", "offlinebodymarker"}
	d := srv.dump(t)
	for _, m := range markers {
		if !strings.Contains(d, m) {
			t.Fatalf("positive control: %q is not in the store:\n%s", m, d)
		}
	}
	if rel, err := filepath.Rel(srv.DataDir(), srv.KeyFile()); err == nil && !strings.HasPrefix(rel, "..") {
		t.Fatalf("key file %s inside the data directory", srv.KeyFile())
	}
	srv.Close()
	files := 0
	filepath.WalkDir(srv.DataDir(), func(p string, e fs.DirEntry, err error) error {
		if err != nil || !e.Type().IsRegular() {
			return err
		}
		files++
		b, _ := os.ReadFile(p)
		for _, m := range markers {
			if bytes.Contains(b, []byte(m)) {
				t.Errorf("%s holds %q in plaintext", p, m)
			}
		}
		return nil
	})
	if files == 0 {
		t.Fatal("no files scanned")
	}
}
