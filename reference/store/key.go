package store

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// KeySize is the size of the at-rest master key.
const KeySize = 32

// ErrKeyInDataDir is returned when the key file would sit inside the data
// directory, next to the data it protects.
var ErrKeyInDataDir = errors.New("store: the key file must not be inside the data directory")

// ErrKeyMissing is returned when the key file does not exist but a store
// does: a new key would not open it, and a stray key could later be taken
// for the real one.
var ErrKeyMissing = errors.New("store: the key file does not exist, but the data directory holds a store")

// ErrKeyPermissions is returned for a key file that its group or others
// may read or write (as ssh refuses such private keys).
var ErrKeyPermissions = errors.New("store: the key file is accessible to group or others")

// LoadOrCreateKey reads the master key from path, or creates a new random
// key there (mode 0600, parent directories 0700) when the file does not
// exist. The key file is 64 hexadecimal digits and a newline. It refuses a
// path inside dataDir.
func LoadOrCreateKey(path, dataDir string) (key []byte, created bool, err error) {
	inside, err := isInside(path, dataDir)
	if err != nil {
		return nil, false, err
	}
	if inside {
		return nil, false, fmt.Errorf("%w: %s is inside %s", ErrKeyInDataDir, path, dataDir)
	}
	key, err = ReadKey(path)
	if err == nil {
		return key, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	// Never a new key beside an existing store (even an empty or damaged
	// one): it cannot open it.
	if _, serr := os.Lstat(filepath.Join(dataDir, FileName)); serr == nil {
		return nil, false, fmt.Errorf("%w: %s is missing and %s exists; give the key file this store was created with (--key-file)",
			ErrKeyMissing, path, filepath.Join(dataDir, FileName))
	}
	key = make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, fmt.Errorf("store: create key directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("store: create key: %w", err)
	}
	_, err = f.WriteString(hex.EncodeToString(key) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return nil, false, fmt.Errorf("store: write key: %w", err)
	}
	return key, true, nil
}

// ReadKey reads an existing key file (it never creates one). A key file
// with any group or other permission bit is refused.
func ReadKey(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("store: read key: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %04o; run 'chmod 600 %s' (and consider the key exposed if others could read it)",
			ErrKeyPermissions, path, fi.Mode().Perm(), path)
	}
	b, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return nil, fmt.Errorf("store: read key: %w", err)
	}
	key, err := parseKey(b)
	if err != nil {
		return nil, fmt.Errorf("store: key file %s: %w", path, err)
	}
	return key, nil
}

func parseKey(b []byte) ([]byte, error) {
	s := strings.TrimSpace(string(b))
	key, err := hex.DecodeString(s)
	if err != nil || len(key) != KeySize {
		return nil, fmt.Errorf("not a key: want %d hexadecimal digits", 2*KeySize)
	}
	return key, nil
}

// isInside reports whether path is dir or lies below it, after resolving
// symbolic links of the parts that exist.
func isInside(path, dir string) (bool, error) {
	p, err := resolve(path)
	if err != nil {
		return false, err
	}
	d, err := resolve(dir)
	if err != nil {
		return false, err
	}
	rel, err := filepath.Rel(d, p)
	if err != nil {
		return false, nil
	}
	return rel == "." || (rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))), nil
}

// resolve returns the absolute path with symbolic links of its longest
// existing prefix resolved.
func resolve(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	rest := ""
	cur := abs
	for {
		if r, err := filepath.EvalSymlinks(cur); err == nil {
			return filepath.Join(r, rest), nil
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return abs, nil
		}
		rest = filepath.Join(filepath.Base(cur), rest)
		cur = parent
	}
}

// DeriveKey derives a 32-byte subkey of master for purpose (HKDF-SHA-256,
// RFC 5869). Extensions use it for keys of their own (an upload MAC, the
// admin control's authentication).
func DeriveKey(master []byte, purpose string) []byte {
	k, err := hkdf.Key(sha256.New, master, nil, "xmppcheck reference "+purpose, 32)
	if err != nil {
		panic("store: hkdf: " + err.Error()) // only for lengths > 255*32
	}
	return k
}
