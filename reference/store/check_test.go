package store

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// snapshot hashes every file under dirs (path → sha256 and mode), to show
// that a refused open changed nothing on disk.
func snapshot(t *testing.T, dirs ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, d := range dirs {
		filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return nil
			}
			b, _ := os.ReadFile(p)
			fi, _ := e.Info()
			out[p] = fmt.Sprintf("%x %v", sha256.Sum256(b), fi.Mode())
			return nil
		})
	}
	return out
}

// populated makes a store with accounts and offline messages, closed, and
// returns its data directory, key file and key.
func populated(t *testing.T) (data, keyFile string, key []byte) {
	t.Helper()
	root := t.TempDir()
	data = filepath.Join(root, "data")
	keyFile = filepath.Join(root, "keys", "at-rest.key")
	key, _, err := LoadOrCreateKey(keyFile, data)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(data, key)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		if err := s.CreateUser(User{Name: fmt.Sprintf("user%03d", i)}); err != nil {
			t.Fatal(err)
		}
		s.PushOffline(fmt.Sprintf("user%03d", i), time.Unix(0, 0), []byte(strings.Repeat("<message/>", 200)), 0)
	}
	s.Close()
	return data, keyFile, key
}

// TestDamagedStoreRefused is finding 5 of issue 10: a truncated store
// crashed the process with SIGBUS, junk in data pages was reported as a
// wrong key and a zero-length store started empty. Each is now refused
// with its own error, and the refusal changes nothing on disk.
func TestDamagedStoreRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, path string)
		want   error
	}{
		{"truncated", func(t *testing.T, p string) {
			fi, _ := os.Stat(p)
			if err := os.Truncate(p, fi.Size()/2); err != nil {
				t.Fatal(err)
			}
		}, ErrDamaged},
		{"junk in data pages", func(t *testing.T, p string) {
			f, err := os.OpenFile(p, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			fi, _ := f.Stat()
			junk := make([]byte, fi.Size()-3*4096)
			rand.Read(junk)
			f.WriteAt(junk, 3*4096)
		}, ErrDamaged},
		{"both meta pages overwritten", func(t *testing.T, p string) {
			f, _ := os.OpenFile(p, os.O_RDWR, 0)
			defer f.Close()
			junk := make([]byte, 2*4096)
			rand.Read(junk)
			f.WriteAt(junk, 0)
		}, ErrDamaged},
		{"zero length", func(t *testing.T, p string) {
			if err := os.Truncate(p, 0); err != nil {
				t.Fatal(err)
			}
		}, ErrEmptyFile},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, keyFile, key := populated(t)
			tc.damage(t, filepath.Join(data, FileName))
			before := snapshot(t, data, filepath.Dir(keyFile))
			s, err := Open(data, key)
			if err == nil {
				s.Close()
				t.Fatal("a damaged store opened")
			}
			if !errors.Is(err, tc.want) || errors.Is(err, ErrWrongKey) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if after := snapshot(t, data, filepath.Dir(keyFile)); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Errorf("the refused open changed the disk:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
}

// TestWrongKeyIsNotDamage is the positive control of the above: the intact
// store opens with its key and is refused as ErrWrongKey with another.
func TestWrongKeyIsNotDamage(t *testing.T) {
	data, _, key := populated(t)
	s, err := Open(data, key)
	if err != nil {
		t.Fatalf("intact store: %v", err)
	}
	s.Close()
	other := make([]byte, KeySize)
	rand.Read(other)
	if _, err := Open(data, other); !errors.Is(err, ErrWrongKey) || errors.Is(err, ErrDamaged) {
		t.Fatalf("err = %v, want ErrWrongKey", err)
	}
}

// TestKeyFileChecks is finding 6 of issue 10: a missing key file beside an
// existing store made a new key; a key file readable by everyone was
// accepted.
func TestKeyFileChecks(t *testing.T) {
	t.Run("missing beside a store", func(t *testing.T) {
		data, keyFile, _ := populated(t)
		os.Remove(keyFile)
		before := snapshot(t, data, filepath.Dir(keyFile))
		if _, _, err := LoadOrCreateKey(keyFile, data); !errors.Is(err, ErrKeyMissing) {
			t.Fatalf("err = %v, want ErrKeyMissing", err)
		}
		if _, err := os.Stat(keyFile); !errors.Is(err, fs.ErrNotExist) {
			t.Error("a new key file was created beside the existing store")
		}
		if after := snapshot(t, data, filepath.Dir(keyFile)); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Error("the refusal changed the disk")
		}
	})
	t.Run("group or other bits", func(t *testing.T) {
		data, keyFile, _ := populated(t)
		for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660} {
			os.Chmod(keyFile, mode)
			if _, _, err := LoadOrCreateKey(keyFile, data); !errors.Is(err, ErrKeyPermissions) {
				t.Errorf("mode %04o: err = %v, want ErrKeyPermissions", mode, err)
			}
			if _, err := ReadKey(keyFile); !errors.Is(err, ErrKeyPermissions) {
				t.Errorf("ReadKey mode %04o: err = %v", mode, err)
			}
		}
		// Positive control: 0600 and 0400 are accepted.
		for _, mode := range []os.FileMode{0o600, 0o400} {
			os.Chmod(keyFile, mode)
			if _, _, err := LoadOrCreateKey(keyFile, data); err != nil {
				t.Errorf("mode %04o refused: %v", mode, err)
			}
		}
	})
}
