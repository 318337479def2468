package store

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func newStore(t *testing.T) (*Store, string, []byte) {
	t.Helper()
	root := t.TempDir()
	data := filepath.Join(root, "data")
	key, created, err := LoadOrCreateKey(filepath.Join(root, "keys", "at-rest.key"), data)
	if err != nil || !created {
		t.Fatalf("LoadOrCreateKey: %v %v", created, err)
	}
	s, err := Open(data, key)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, data, key
}

func TestKeyFile(t *testing.T) {
	root := t.TempDir()
	data := filepath.Join(root, "data")
	os.MkdirAll(data, 0o700)
	for _, p := range []string{filepath.Join(data, "key"), data, filepath.Join(data, "sub", "key")} {
		if _, _, err := LoadOrCreateKey(p, data); !errors.Is(err, ErrKeyInDataDir) {
			t.Errorf("key at %s: got %v, want ErrKeyInDataDir", p, err)
		}
	}
	// Through a symbolic link to the data directory.
	link := filepath.Join(root, "link")
	os.Symlink(data, link)
	if _, _, err := LoadOrCreateKey(filepath.Join(link, "key"), data); !errors.Is(err, ErrKeyInDataDir) {
		t.Errorf("key through symlink: got %v, want ErrKeyInDataDir", err)
	}
	// A sibling whose name starts like the data directory is fine.
	p := filepath.Join(root, "data-key")
	k1, created, err := LoadOrCreateKey(p, data)
	if err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	fi, _ := os.Stat(p)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	k2, created, err := LoadOrCreateKey(p, data)
	if err != nil || created || !bytes.Equal(k1, k2) {
		t.Fatalf("reload: created=%v err=%v equal=%v", created, err, bytes.Equal(k1, k2))
	}
	os.WriteFile(p, []byte("short"), 0o600)
	if _, _, err := LoadOrCreateKey(p, data); err == nil {
		t.Error("a malformed key file was accepted")
	}
}

func TestWrongKeyAndLock(t *testing.T) {
	s, data, _ := newStore(t)
	other := bytes.Repeat([]byte{7}, KeySize)
	if _, err := Open(data, other, WithLockTimeout(50*time.Millisecond)); !errors.Is(err, ErrLocked) {
		t.Fatalf("second open while open: got %v, want ErrLocked", err)
	}
	s.Close()
	if _, err := Open(data, other); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("wrong key: got %v, want ErrWrongKey", err)
	}
}

// TestNoPlaintextAtRest stores markers in every record kind, shows that the
// dump (opened with the key) finds them — the positive control — and that
// the raw file holds none of them, nor the user name.
func TestNoPlaintextAtRest(t *testing.T) {
	s, data, key := newStore(t)
	markers := []string{"user-marker-alice", "roster-name-marker", "vcard-marker", "offline-body-marker", "blob-marker", "contact-marker@example.net", "email-marker@example.org"}
	if err := s.CreateUser(User{Name: "user-marker-alice", Email: "email-marker@example.org", SCRAM: map[string]Credentials{"SHA-1": {Salt: []byte("s"), Iterations: 4096}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateRosterItem("user-marker-alice", "contact-marker@example.net", 0, func(it *RosterItem, _ bool) (bool, error) {
		it.Name = "roster-name-marker"
		return true, nil
	}); err != nil {
		t.Fatal(err)
	}
	s.PutVCard("user-marker-alice", []byte("<vCard xmlns='vcard-temp'><FN>vcard-marker</FN></vCard>"))
	s.PushOffline("user-marker-alice", time.Now(), []byte("<message><body>offline-body-marker</body></message>"), 0)
	s.Bucket("upload").Put(append(s.OwnerIndex("user-marker-alice"), 1), []byte("blob-marker"))
	var dump bytes.Buffer
	if err := s.Dump(&dump); err != nil {
		t.Fatal(err)
	}
	for _, m := range markers {
		if !strings.Contains(dump.String(), m) {
			t.Fatalf("positive control: dump lacks %q:\n%s", m, dump.String())
		}
	}
	s.Close()
	raw, err := os.ReadFile(filepath.Join(data, FileName))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range markers {
		if bytes.Contains(raw, []byte(m)) {
			t.Errorf("raw store file contains %q", m)
		}
	}
	if bytes.Contains(raw, key) || bytes.Contains(raw, []byte(strings.ToLower(string(key)))) {
		t.Error("raw store file contains the key")
	}
}

func TestDeleteUserErasesEverything(t *testing.T) {
	s, _, _ := newStore(t)
	s.RegisterOwned("upload")
	for _, u := range []string{"alice", "bob"} {
		s.CreateUser(User{Name: u})
		s.UpdateRosterItem(u, "carol@x", 0, func(it *RosterItem, _ bool) (bool, error) { it.Sub = SubBoth; return true, nil })
		s.PutVCard(u, []byte("<vCard/>"))
		s.PushOffline(u, time.Now(), []byte("<message/>"), 0)
		s.Bucket("upload").Put(append(s.OwnerIndex(u), 'f'), []byte("file"))
	}
	if err := s.DeleteUser("alice"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser("alice"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if ok, _ := s.UserExists("alice"); ok {
		t.Error("user still exists")
	}
	if r, _ := s.Roster("alice"); len(r) != 0 {
		t.Errorf("roster survives: %v", r)
	}
	if _, err := s.VCard("alice"); !errors.Is(err, ErrNotFound) {
		t.Errorf("vcard survives: %v", err)
	}
	if m, _ := s.Offline("alice"); len(m) != 0 {
		t.Errorf("offline survives: %d", len(m))
	}
	if _, err := s.Bucket("upload").Get(append(s.OwnerIndex("alice"), 'f')); !errors.Is(err, ErrNotFound) {
		t.Errorf("upload survives: %v", err)
	}
	// Bob is untouched.
	if r, _ := s.Roster("bob"); len(r) != 1 {
		t.Errorf("bob's roster: %v", r)
	}
	if m, _ := s.Offline("bob"); len(m) != 1 {
		t.Errorf("bob's offline: %d", len(m))
	}
	if _, err := s.Bucket("upload").Get(append(s.OwnerIndex("bob"), 'f')); err != nil {
		t.Errorf("bob's upload: %v", err)
	}
	// The name is free again and the new owner inherits nothing.
	if err := s.CreateUser(User{Name: "alice"}); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.Roster("alice"); len(r) != 0 {
		t.Errorf("new alice inherits roster %v", r)
	}
}

func TestOfflineQuotaOrderAndPurge(t *testing.T) {
	s, _, _ := newStore(t)
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, body := range []string{"one", "two", "three"} {
		if err := s.PushOffline("bob", t0.Add(time.Duration(i)*24*time.Hour), []byte(body), 3); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PushOffline("bob", t0, []byte("four"), 3); !errors.Is(err, ErrQuota) {
		t.Fatalf("quota: %v", err)
	}
	msgs, _ := s.Offline("bob")
	if len(msgs) != 3 || string(msgs[0].Stanza) != "one" || string(msgs[2].Stanza) != "three" || !msgs[1].Stamp.Equal(t0.Add(24*time.Hour)) {
		t.Fatalf("offline: %+v", msgs)
	}
	n, err := s.PurgeOffline(t0.Add(36 * time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("purge: %d %v", n, err)
	}
	msgs, _ = s.Offline("bob")
	if len(msgs) != 1 || string(msgs[0].Stanza) != "three" {
		t.Fatalf("after purge: %+v", msgs)
	}
	if err := s.DeleteOffline([][]byte{msgs[0].Key}); err != nil {
		t.Fatal(err)
	}
	if c, _ := s.CountOffline(); c != 0 {
		t.Fatalf("count %d", c)
	}
}

// TestCompactDropsFreedCiphertext: the sealed bytes of a deleted record may
// linger in freed pages; after Compact they are gone from the file.
func TestCompactDropsFreedCiphertext(t *testing.T) {
	s, data, _ := newStore(t)
	body := strings.Repeat("filler ", 200)
	s.PushOffline("bob", time.Now(), []byte(body), 0)
	var sealed []byte
	s.view(func(tx *bolt.Tx) error {
		tx.Bucket(bOffline).ForEach(func(k, v []byte) error { sealed = append([]byte(nil), v...); return nil })
		return nil
	})
	raw, _ := os.ReadFile(filepath.Join(data, FileName))
	if !bytes.Contains(raw, sealed) {
		t.Fatal("positive control: the sealed record is not in the file")
	}
	msgs, _ := s.Offline("bob")
	s.DeleteOffline([][]byte{msgs[0].Key})
	if err := s.Compact(); err != nil {
		t.Fatal(err)
	}
	raw, _ = os.ReadFile(filepath.Join(data, FileName))
	if bytes.Contains(raw, sealed) {
		t.Fatal("deleted record's ciphertext still in the file after Compact")
	}
	// The store still works after the swap.
	if err := s.CreateUser(User{Name: "zed"}); err != nil {
		t.Fatal(err)
	}
}

func TestDumpIsJSONLines(t *testing.T) {
	s, _, _ := newStore(t)
	s.PushOffline("bob", time.Unix(0, 0), []byte("<message><body>x</body></message>"), 0)
	var b bytes.Buffer
	s.Dump(&b)
	sc := bufio.NewScanner(&b)
	found := false
	for sc.Scan() {
		var r DumpRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		if r.Bucket == "offline" {
			found = r.Value == "<message><body>x</body></message>" && r.Stamp == "1970-01-01T00:00:00Z"
		}
	}
	if !found {
		t.Fatalf("offline record not dumped as text: %s", b.String())
	}
}
