package store

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Errors.
var (
	ErrNotFound  = errors.New("store: not found")
	ErrExists    = errors.New("store: already exists")
	ErrLocked    = errors.New("store: the data directory is in use by another process (is xmppcheck serve running?)")
	ErrWrongKey  = errors.New("store: the key does not open this store (wrong --key-file?)")
	ErrQuota     = errors.New("store: quota exceeded")
	ErrCorrupted = errors.New("store: sealed value does not authenticate")
)

// FileName is the name of the store file inside the data directory.
const FileName = "store.db"

const (
	sealMagic = "XRS1" // marks every sealed value: version 1
	nonceSize = 12
	idxSize   = 16
	checkText = "xmppcheck reference store v1"
)

var (
	bMeta       = []byte("meta")
	bUsers      = []byte("users")
	bRoster     = []byte("roster")
	bVCard      = []byte("vcard")
	bOffline    = []byte("offline")
	coreBuckets = [][]byte{bMeta, bUsers, bRoster, bVCard, bOffline}
)

// Store is an open store. It is safe for concurrent use.
type Store struct {
	path   string
	mu     sync.RWMutex // held for writing by Compact, which swaps db
	db     *bolt.DB
	aead   cipher.AEAD
	macKey []byte

	onDelete atomic.Pointer[func()]

	ownedMu sync.Mutex
	owned   []string // extension buckets whose keys start with an owner index
}

type config struct {
	timeout  time.Duration
	readOnly bool
}

// Option configures Open.
type Option func(*config)

// WithLockTimeout sets how long Open waits for another process to release
// the store (default 1s; then ErrLocked).
func WithLockTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// WithReadOnly opens the store without writing to it.
func WithReadOnly() Option { return func(c *config) { c.readOnly = true } }

// Open opens (or creates) the store in dataDir with the master key.
func Open(dataDir string, key []byte, opts ...Option) (*Store, error) {
	cfg := config{timeout: time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	if len(key) != KeySize {
		return nil, fmt.Errorf("store: open: key must be %d bytes", KeySize)
	}
	if !cfg.readOnly {
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return nil, fmt.Errorf("store: open: %w", err)
		}
	}
	block, err := aes.NewCipher(DeriveKey(key, "store seal v1"))
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	s := &Store{path: filepath.Join(dataDir, FileName), aead: aead, macKey: DeriveKey(key, "store index v1")}
	// Size and meta pages first: bbolt maps the file and a truncated one
	// would crash the process with SIGBUS.
	if _, err := checkFile(s.path); err != nil {
		return nil, err
	}
	db, err := openBolt(s.path, &bolt.Options{Timeout: cfg.timeout, ReadOnly: cfg.readOnly})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, ErrLocked
	}
	if errors.Is(err, bolterrors.ErrInvalid) || errors.Is(err, bolterrors.ErrChecksum) || errors.Is(err, bolterrors.ErrVersionMismatch) {
		return nil, fmt.Errorf("%w: %s: %v", ErrDamaged, s.path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("store: open: %w", err)
	}
	s.db = db
	if err := s.init(cfg.readOnly); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// openBolt is bolt.Open with its panics (on pages it cannot make sense
// of) turned into ErrDamaged.
func openBolt(path string, o *bolt.Options) (db *bolt.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, fmt.Errorf("%w: %s: %v", ErrDamaged, path, r)
		}
	}()
	return bolt.Open(path, 0o600, o)
}

// consistent runs bbolt's consistency check over every page (linear in
// the file's size, at open only): junk in the file is damage, never
// mistaken for a wrong key.
func (s *Store) consistent() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %s: %v; restore it from a backup", ErrDamaged, s.path, r)
		}
	}()
	return s.db.View(func(tx *bolt.Tx) error {
		for e := range tx.Check() {
			if e != nil {
				err = fmt.Errorf("%w: %s: %v; restore it from a backup", ErrDamaged, s.path, e)
			}
		}
		return err
	})
}

func (s *Store) init(readOnly bool) error {
	if err := s.consistent(); err != nil {
		return err
	}
	if readOnly {
		return s.db.View(func(tx *bolt.Tx) error { return s.checkKey(tx, false) })
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		for _, b := range coreBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return s.checkKey(tx, true)
	})
}

// keyIDName is the meta record holding the key's identifier, an HMAC
// under a key derived from the master key: it tells a wrong key (another
// identifier) from a damaged check record (the same identifier).
var keyIDName = []byte("keyid")

func (s *Store) checkKey(tx *bolt.Tx, create bool) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %s: %v", ErrDamaged, s.path, r)
		}
	}()
	m := tx.Bucket(bMeta)
	if m == nil {
		return fmt.Errorf("store: %s is not an xmppcheck reference store", s.path)
	}
	id := s.Index("at-rest key id v1")
	kid := m.Get(keyIDName)
	v := m.Get([]byte("check"))
	if v == nil {
		if !create {
			return fmt.Errorf("store: %s is not initialised", s.path)
		}
		if kid != nil || tx.Bucket(bUsers).Stats().KeyN > 0 {
			return fmt.Errorf("%w: %s has records but no check record", ErrDamaged, s.path)
		}
		if err := m.Put(keyIDName, id); err != nil {
			return err
		}
		return m.Put([]byte("check"), s.seal(bMeta, []byte("check"), []byte(checkText)))
	}
	if kid != nil && !hmac.Equal(kid, id) {
		return ErrWrongKey
	}
	p, err := s.open(bMeta, []byte("check"), v)
	if err != nil || string(p) != checkText {
		if kid != nil {
			return fmt.Errorf("%w: %s: the check record does not open although the key is this store's", ErrDamaged, s.path)
		}
		return ErrWrongKey
	}
	if kid == nil && create {
		// A store written before key ids: record it now.
		return m.Put(keyIDName, id)
	}
	return nil
}

// Path returns the store file's path.
func (s *Store) Path() string { return s.path }

// Close closes the store.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return nil
	}
	err := s.db.Close()
	s.db = nil
	return err
}

func (s *Store) update(f func(tx *bolt.Tx) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return bolterrors.ErrDatabaseNotOpen
	}
	return s.db.Update(f)
}

func (s *Store) batch(f func(tx *bolt.Tx) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return bolterrors.ErrDatabaseNotOpen
	}
	return s.db.Batch(f)
}

func (s *Store) view(f func(tx *bolt.Tx) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return bolterrors.ErrDatabaseNotOpen
	}
	return s.db.View(f)
}

// seal encrypts value for (bucket, key): magic, random nonce, ciphertext and
// tag. The bucket and key are authenticated, so a sealed value cannot be
// moved to another record.
func (s *Store) seal(bucket, key, value []byte) []byte {
	out := make([]byte, len(sealMagic)+nonceSize, len(sealMagic)+nonceSize+len(value)+s.aead.Overhead())
	copy(out, sealMagic)
	if _, err := rand.Read(out[len(sealMagic):]); err != nil {
		panic("store: crypto/rand failed: " + err.Error())
	}
	return s.aead.Seal(out, out[len(sealMagic):], value, aad(bucket, key))
}

func (s *Store) open(bucket, key, sealed []byte) ([]byte, error) {
	if len(sealed) < len(sealMagic)+nonceSize+s.aead.Overhead() || string(sealed[:len(sealMagic)]) != sealMagic {
		return nil, ErrCorrupted
	}
	nonce := sealed[len(sealMagic) : len(sealMagic)+nonceSize]
	p, err := s.aead.Open(nil, nonce, sealed[len(sealMagic)+nonceSize:], aad(bucket, key))
	if err != nil {
		return nil, ErrCorrupted
	}
	return p, nil
}

func aad(bucket, key []byte) []byte {
	b := make([]byte, 0, len(bucket)+1+len(key))
	b = append(b, bucket...)
	b = append(b, 0)
	return append(b, key...)
}

// Index returns the keyed hash (16 bytes) that stands for parts in record
// keys: a user name, a contact's JID. Equal parts give equal indexes; without
// the key nobody can tell which name an index stands for.
func (s *Store) Index(parts ...string) []byte {
	m := hmac.New(sha256.New, s.macKey)
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return m.Sum(nil)[:idxSize]
}

func (s *Store) putJSON(tx *bolt.Tx, bucket, key []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return tx.Bucket(bucket).Put(key, s.seal(bucket, key, b))
}

func (s *Store) getJSON(tx *bolt.Tx, bucket, key []byte, v any) error {
	sealed := tx.Bucket(bucket).Get(key)
	if sealed == nil {
		return ErrNotFound
	}
	p, err := s.open(bucket, key, sealed)
	if err != nil {
		return err
	}
	return json.Unmarshal(p, v)
}

// OnDelete sets f to run after every commit that deleted a record (the
// server compacts the file soon after, see Compact).
func (s *Store) OnDelete(f func()) { s.onDelete.Store(&f) }

// del deletes k from b and arranges for the delete hook to run on commit.
func (s *Store) del(tx *bolt.Tx, b *bolt.Bucket, k []byte) error {
	if f := s.onDelete.Load(); f != nil {
		tx.OnCommit(*f)
	}
	return b.Delete(k)
}

// deletePrefix deletes every key of bucket that starts with prefix.
func (s *Store) deletePrefix(tx *bolt.Tx, b *bolt.Bucket, prefix []byte) (int, error) {
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, append([]byte(nil), k...))
	}
	for _, k := range keys {
		if err := s.del(tx, b, k); err != nil {
			return 0, err
		}
	}
	return len(keys), nil
}

// Compact rewrites the store into a fresh file and replaces the old one, so
// that pages freed by deletes keep no old (sealed) values. Other calls wait
// while it runs.
func (s *Store) Compact() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return bolterrors.ErrDatabaseNotOpen
	}
	tmp := s.path + ".compact"
	os.Remove(tmp)
	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("store: compact: %w", err)
	}
	if err := bolt.Compact(dst, s.db, 64<<20); err != nil {
		dst.Close()
		os.Remove(tmp)
		return fmt.Errorf("store: compact: %w", err)
	}
	if err := dst.Sync(); err != nil {
		dst.Close()
		os.Remove(tmp)
		return fmt.Errorf("store: compact: %w", err)
	}
	dst.Close()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: compact: %w", err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return fmt.Errorf("store: compact: %w", err)
	}
	if d, err := os.Open(filepath.Dir(s.path)); err == nil {
		d.Sync()
		d.Close()
	}
	db, err := bolt.Open(s.path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		s.db = nil
		return fmt.Errorf("store: compact: reopen: %w", err)
	}
	s.db = db
	return nil
}
