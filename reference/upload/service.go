package upload

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"mime"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/xmppcheck/xmppcheck/spec"
)

// Sealer seals and opens data at rest under the server's key file. The
// reference server's store provides one; Open must reject data Seal did not
// produce.
type Sealer interface {
	Seal(plaintext []byte) ([]byte, error)
	Open(sealed []byte) ([]byte, error)
}

// Clock tells the server's time; the test clock moves it.
type Clock interface {
	Now() time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// Defaults.
const (
	DefaultMaxFileSize = 100 << 20 // bytes
	DefaultQuota       = 1 << 30   // bytes per user, stored and pending
	DefaultSlotTTL     = time.Hour // an unused slot expires after this
	// minIDBits is used when the policy makes no upload.unguessable-url claim.
	minIDBits = 256
)

// Option configures a Service.
type Option func(*config)

type config struct {
	maxFileSize int64
	quota       int64
	slotTTL     time.Duration
	retention   time.Duration
	idBits      int
	clock       Clock
	logger      *slog.Logger
	baseURL     string
	chunk       int
}

// WithMaxFileSize sets the largest file a slot is issued for.
func WithMaxFileSize(n int64) Option { return func(c *config) { c.maxFileSize = n } }

// WithQuota sets the bytes a user may hold in stored files and open slots.
func WithQuota(n int64) Option { return func(c *config) { c.quota = n } }

// WithSlotTTL sets how long an unused slot stays open.
func WithSlotTTL(d time.Duration) Option { return func(c *config) { c.slotTTL = d } }

// WithClock sets the clock purges and expiry are measured on.
func WithClock(cl Clock) Option { return func(c *config) { c.clock = cl } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithBaseURL sets the URL prefix slot URLs start with, e.g.
// "https://upload.example.org:5443". Without it the Service cannot issue
// slots until SetBaseURL is called (the HTTP listener's address is often
// known only after it binds).
func WithBaseURL(u string) Option { return func(c *config) { c.baseURL = u } }

// WithIDBits raises the randomness of slot ids above what the policy asks.
// Values below the policy's upload.unguessable-url min_entropy_bits are
// ignored: the policy is a floor.
func WithIDBits(n int) Option { return func(c *config) { c.idBits = n } }

// withChunk sets the encryption chunk size (tests).
func withChunk(n int) Option { return func(c *config) { c.chunk = n } }

// Errors of slot requests; SlotError carries the XEP-0363 detail.
var (
	ErrTooLarge   = errors.New("upload: file too large")
	ErrQuota      = errors.New("upload: quota reached")
	ErrBadRequest = errors.New("upload: bad slot request")
	ErrNoBaseURL  = errors.New("upload: no base URL configured")
)

// SlotError is a refused slot request, with what XEP-0363 §4 says to tell
// the client.
type SlotError struct {
	Err     error // ErrTooLarge, ErrQuota or ErrBadRequest
	Text    string
	MaxSize int64 // for ErrTooLarge
}

func (e *SlotError) Error() string { return e.Err.Error() + ": " + e.Text }
func (e *SlotError) Unwrap() error { return e.Err }

// Request is a slot request (XEP-0363 §4).
type Request struct {
	Filename    string
	Size        int64
	ContentType string
}

// Slot is an issued slot: PUT the file to PutURL, give GetURL to others.
type Slot struct {
	PutURL, GetURL string
	// Expires is when the slot closes if unused.
	Expires time.Time
}

type state int

const (
	statePending state = iota
	stateUploading
	stateStored
)

// entry is one slot or stored file. Everything but key and state is sealed
// into the .meta file.
type entry struct {
	Owner       string    `json:"owner"`
	Filename    string    `json:"filename"`
	ContentType string    `json:"content_type"`
	Size        int64     `json:"size"`
	Created     time.Time `json:"created"`
	Uploaded    time.Time `json:"uploaded"` // zero while pending
	FileKey     []byte    `json:"file_key"`

	key   string // hex SHA-256 of the slot id: the on-disk name
	state state
}

// Service issues slots and stores and serves files.
type Service struct {
	dir    string
	sealer Sealer
	cfg    config

	mu      sync.Mutex
	entries map[string]*entry
	used    map[string]int64 // bytes per owner
	baseURL string
}

// New opens the upload store in dir (created if missing) and loads what is
// there. The policy sets the retention (upload.retention) and the slot id
// entropy floor (upload.unguessable-url).
func New(dir string, sealer Sealer, pol *spec.Policy, opts ...Option) (*Service, error) {
	if sealer == nil {
		return nil, errors.New("upload: new: a Sealer is required")
	}
	cfg := config{
		maxFileSize: DefaultMaxFileSize, quota: DefaultQuota, slotTTL: DefaultSlotTTL,
		clock: systemClock{}, logger: slog.New(slog.DiscardHandler), chunk: defaultChunk,
	}
	for _, o := range opts {
		o(&cfg)
	}
	floor := minIDBits
	if pol != nil {
		if c, ok := pol.Claim(spec.UploadUnguessableURL); ok {
			floor = max(c.Params.Count("min_entropy_bits"), 128)
		}
		if c, ok := pol.Claim(spec.UploadRetention); ok {
			cfg.retention = c.Params.Duration("max_age")
		}
	}
	cfg.idBits = max(cfg.idBits, floor)
	if cfg.maxFileSize <= 0 || cfg.quota <= 0 || cfg.slotTTL <= 0 || cfg.chunk <= 0 {
		return nil, errors.New("upload: new: sizes and durations must be positive")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("upload: new: %w", err)
	}
	s := &Service{dir: dir, sealer: sealer, cfg: cfg, entries: map[string]*entry{}, used: map[string]int64{}}
	if cfg.baseURL != "" {
		if err := s.SetBaseURL(cfg.baseURL); err != nil {
			return nil, err
		}
	}
	if err := s.load(); err != nil {
		return nil, err
	}
	return s, nil
}

// SetBaseURL sets the URL prefix of slot URLs ("https://host:port").
func (s *Service) SetBaseURL(u string) error {
	pu, err := url.Parse(u)
	if err != nil || pu.Scheme != "https" || pu.Host == "" || (pu.Path != "" && pu.Path != "/") || pu.RawQuery != "" {
		return fmt.Errorf("upload: base URL %q: want https://host[:port]", u)
	}
	s.mu.Lock()
	s.baseURL = "https://" + pu.Host
	s.mu.Unlock()
	return nil
}

// MaxFileSize is the largest file a slot is issued for (advertised in disco).
func (s *Service) MaxFileSize() int64 { return s.cfg.maxFileSize }

// Retention is the policy's upload.retention age (0: none).
func (s *Service) Retention() time.Duration { return s.cfg.retention }

// IDBits is the randomness of every slot id, in bits.
func (s *Service) IDBits() int { return s.cfg.idBits }

func (s *Service) load() error {
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("upload: load: %w", err)
	}
	metas := map[string]bool{}
	for _, de := range des {
		name := de.Name()
		switch {
		case strings.HasSuffix(name, ".tmp"):
			// An upload or metadata write that never finished.
			os.Remove(filepath.Join(s.dir, name))
		case strings.HasSuffix(name, ".meta"):
			key := strings.TrimSuffix(name, ".meta")
			if !validKey(key) {
				continue
			}
			metas[key] = true
			e, err := s.readMeta(key)
			if err != nil {
				// Keep the file: it may open under the right key file.
				s.cfg.logger.Warn("upload: cannot open stored metadata; skipped", "err", err)
				continue
			}
			if !e.Uploaded.IsZero() {
				if _, err := os.Stat(s.dataPath(key)); err != nil {
					s.cfg.logger.Warn("upload: stored file missing; metadata dropped", "err", err)
					s.removeFiles(key)
					continue
				}
				e.state = stateStored
			}
			s.entries[key] = e
			s.used[e.Owner] += e.Size
		}
	}
	// Data without metadata cannot be served or attributed: remove it.
	for _, de := range des {
		if key, ok := strings.CutSuffix(de.Name(), ".data"); ok && validKey(key) && !metas[key] {
			os.Remove(filepath.Join(s.dir, de.Name()))
		}
	}
	return nil
}

func validKey(k string) bool {
	if len(k) != 64 {
		return false
	}
	_, err := hex.DecodeString(k)
	return err == nil
}

func keyOf(id string) string {
	h := sha256.Sum256([]byte(id))
	return hex.EncodeToString(h[:])
}

func (s *Service) metaPath(key string) string { return filepath.Join(s.dir, key+".meta") }
func (s *Service) dataPath(key string) string { return filepath.Join(s.dir, key+".data") }

func (s *Service) readMeta(key string) (*entry, error) {
	b, err := os.ReadFile(s.metaPath(key))
	if err != nil {
		return nil, err
	}
	p, err := s.sealer.Open(b)
	if err != nil {
		return nil, err
	}
	e := &entry{key: key}
	if err := json.Unmarshal(p, e); err != nil {
		return nil, err
	}
	if len(e.FileKey) != fileKeyLen {
		return nil, errors.New("bad file key")
	}
	return e, nil
}

func (s *Service) writeMeta(e *entry) error {
	p, err := json.Marshal(e)
	if err != nil {
		return err
	}
	b, err := s.sealer.Seal(p)
	if err != nil {
		return err
	}
	return writeFileSync(s.metaPath(e.key), b)
}

// writeFileSync writes atomically and durably: temp file, fsync, rename.
func writeFileSync(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

func (s *Service) removeFiles(key string) {
	for _, p := range []string{s.dataPath(key), s.metaPath(key)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.cfg.logger.Error("upload: remove", "err", err)
		}
	}
}

// RequestSlot issues a slot to owner (a bare JID) for the file described by
// req. Refusals are *SlotError.
func (s *Service) RequestSlot(ctx context.Context, owner string, req Request) (Slot, error) {
	if owner == "" {
		return Slot{}, &SlotError{Err: ErrBadRequest, Text: "no owner"}
	}
	name, err := cleanFilename(req.Filename)
	if err != nil {
		return Slot{}, &SlotError{Err: ErrBadRequest, Text: err.Error()}
	}
	ctype, err := cleanContentType(req.ContentType)
	if err != nil {
		return Slot{}, &SlotError{Err: ErrBadRequest, Text: err.Error()}
	}
	if req.Size < 0 {
		return Slot{}, &SlotError{Err: ErrBadRequest, Text: "negative size"}
	}
	if req.Size > s.cfg.maxFileSize {
		return Slot{}, &SlotError{Err: ErrTooLarge, MaxSize: s.cfg.maxFileSize,
			Text: fmt.Sprintf("file too large: %d bytes, at most %d are accepted", req.Size, s.cfg.maxFileSize)}
	}
	idb := make([]byte, (s.cfg.idBits+7)/8)
	rand.Read(idb) // crypto/rand never fails (Go ≥ 1.24)
	id := base64.RawURLEncoding.EncodeToString(idb)
	fk := make([]byte, fileKeyLen)
	rand.Read(fk)
	now := s.cfg.clock.Now()
	e := &entry{Owner: owner, Filename: name, ContentType: ctype, Size: req.Size, Created: now, FileKey: fk, key: keyOf(id)}

	s.mu.Lock()
	base := s.baseURL
	if base == "" {
		s.mu.Unlock()
		return Slot{}, ErrNoBaseURL
	}
	if s.used[owner]+req.Size > s.cfg.quota {
		used := s.used[owner]
		s.mu.Unlock()
		return Slot{}, &SlotError{Err: ErrQuota,
			Text: fmt.Sprintf("quota reached: %d of %d bytes used, %d more requested", used, s.cfg.quota, req.Size)}
	}
	s.entries[e.key] = e
	s.used[owner] += req.Size
	s.mu.Unlock()

	if err := s.writeMeta(e); err != nil {
		s.mu.Lock()
		s.dropLocked(e)
		s.mu.Unlock()
		return Slot{}, fmt.Errorf("upload: request slot: %w", err)
	}
	u := base + "/upload/" + id + "/" + url.PathEscape(name)
	return Slot{PutURL: u, GetURL: u, Expires: now.Add(s.cfg.slotTTL)}, nil
}

func (s *Service) dropLocked(e *entry) {
	if s.entries[e.key] == e {
		delete(s.entries, e.key)
		s.used[e.Owner] -= e.Size
		if s.used[e.Owner] <= 0 {
			delete(s.used, e.Owner)
		}
	}
}

// cleanFilename accepts a file name for a slot: a single path element of
// printable characters. The name never reaches the file system; it is only
// echoed in the URL and the Content-Disposition header.
func cleanFilename(n string) (string, error) {
	switch {
	case n == "":
		return "", errors.New("empty filename")
	case len(n) > 255:
		return "", errors.New("filename longer than 255 bytes")
	case !utf8.ValidString(n):
		return "", errors.New("filename is not UTF-8")
	case n == "." || n == "..":
		return "", errors.New("filename is a path element")
	}
	for _, r := range n {
		if r == '/' || r == '\\' || !unicode.IsPrint(r) {
			return "", fmt.Errorf("filename contains %q", r)
		}
	}
	return n, nil
}

func cleanContentType(t string) (string, error) {
	if t == "" {
		return "application/octet-stream", nil
	}
	mt, params, err := mime.ParseMediaType(t)
	if err != nil || !strings.Contains(mt, "/") {
		return "", fmt.Errorf("content-type %q is not a media type", t)
	}
	return mime.FormatMediaType(mt, params), nil
}

// sameContentType compares media types as RFC 9110 §8.3.1 does: type and
// subtype case-insensitively, parameters by name case-insensitively.
func sameContentType(a, b string) bool {
	ma, pa, err1 := mime.ParseMediaType(a)
	mb, pb, err2 := mime.ParseMediaType(b)
	if err1 != nil || err2 != nil || ma != mb || len(pa) != len(pb) {
		return false
	}
	for k, v := range pa {
		w, ok := pb[k]
		if !ok || (k == "charset" && !strings.EqualFold(v, w)) || (k != "charset" && v != w) {
			return false
		}
	}
	return true
}

// RemoveOwner deletes every slot and file of owner (account removal) and
// returns how many it removed.
func (s *Service) RemoveOwner(ctx context.Context, owner string) (int, error) {
	n := s.removeWhere(func(e *entry) bool { return e.Owner == owner })
	if n > 0 {
		s.cfg.logger.Info("upload: removed the files of a deleted account", "files", n)
	}
	return n, nil
}

// Purge deletes the files older than the policy's upload.retention and the
// slots unused for the slot TTL, by the service's clock, and returns how many
// it deleted. The server calls it on a schedule and whenever its test clock
// moves.
func (s *Service) Purge(ctx context.Context) (int, error) {
	now := s.cfg.clock.Now()
	n := s.removeWhere(func(e *entry) bool { return s.expiredLocked(e, now) })
	if n > 0 {
		s.cfg.logger.Info("upload: purged", "files", n)
	}
	return n, ctx.Err()
}

// removeWhere forgets the entries pick selects (called with s.mu held) and
// deletes their files; it returns how many.
func (s *Service) removeWhere(pick func(*entry) bool) int {
	s.mu.Lock()
	var gone []*entry
	for _, e := range s.entries {
		if pick(e) {
			gone = append(gone, e)
			s.dropLocked(e)
		}
	}
	s.mu.Unlock()
	for _, e := range gone {
		s.removeFiles(e.key)
	}
	return len(gone)
}

func (s *Service) expiredLocked(e *entry, now time.Time) bool {
	switch e.state {
	case stateStored:
		return s.cfg.retention > 0 && !now.Before(e.Uploaded.Add(s.cfg.retention))
	case statePending:
		return !now.Before(e.Created.Add(s.cfg.slotTTL))
	}
	return false // an upload in progress finishes first
}

// Stats reports what the service holds (for tests and metrics).
type Stats struct {
	Pending, Stored int
	Bytes           int64
}

// Stats counts slots and stored files.
func (s *Service) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	var st Stats
	for _, e := range s.entries {
		if e.state == stateStored {
			st.Stored++
			st.Bytes += e.Size
		} else {
			st.Pending++
		}
	}
	return st
}
