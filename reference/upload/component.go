package upload

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/xmppcheck/xmppcheck/internal/ns"
	"github.com/xmppcheck/xmppcheck/reference/host"
	"github.com/xmppcheck/xmppcheck/reference/wire"
	"github.com/xmppcheck/xmppcheck/spec"
)

// keySealer is a Sealer under one AES-256-GCM key with random nonces.
type keySealer struct{ aead cipher.AEAD }

// NewKeySealer returns a Sealer under a 32-byte key (for the server: a key
// derived from the at-rest key file).
func NewKeySealer(key []byte) (Sealer, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("upload: sealer key has %d bytes, want 32", len(key))
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		return nil, err
	}
	return keySealer{a}, nil
}

func (k keySealer) Seal(p []byte) ([]byte, error) {
	n := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(p)+k.aead.Overhead())
	rand.Read(n)
	return k.aead.Seal(n, n, p, []byte("xmppcheck upload v1")), nil
}

func (k keySealer) Open(c []byte) ([]byte, error) {
	ns := k.aead.NonceSize()
	if len(c) < ns+k.aead.Overhead() {
		return nil, errors.New("upload: sealed data too short")
	}
	return k.aead.Open(nil, c[:ns], c[ns:], []byte("xmppcheck upload v1"))
}

// Component is the upload service as a component of the reference server:
// the XEP-0363 slot service at upload.DOMAIN and the HTTPS endpoint.
type Component struct {
	h       host.Host
	svc     *Service
	addr    string
	baseURL string
	jid     string

	mu  sync.Mutex
	ln  net.Listener
	srv *http.Server
}

// ComponentOption configures the component beyond the Service options.
type ComponentOption func(*Component)

// WithPublicURL sets the base of slot URLs ("https://files.example.org");
// by default it is the listener's address when that is a specific address,
// else https://upload.DOMAIN:PORT (the server certificate covers
// *.DOMAIN).
func WithPublicURL(u string) ComponentOption { return func(c *Component) { c.baseURL = u } }

// NewComponent makes the upload component of a reference server: files and
// sealed metadata in dir, sealed under a key derived from the server's key
// file, on the server's clock, listening on addr.
func NewComponent(h host.Host, addr, dir string, copts []ComponentOption, opts ...Option) (*Component, error) {
	sealer, err := NewKeySealer(h.Key("upload metadata"))
	if err != nil {
		return nil, err
	}
	opts = append([]Option{WithClock(h.Clock()), WithLogger(h.Logger())}, opts...)
	svc, err := New(dir, sealer, h.Policy(), opts...)
	if err != nil {
		return nil, err
	}
	c := &Component{h: h, svc: svc, addr: addr, jid: "upload." + h.Domain()}
	for _, o := range copts {
		o(c)
	}
	return c, nil
}

// Service is the underlying upload service.
func (c *Component) Service() *Service { return c.svc }

// JID is the service's address (upload.DOMAIN).
func (c *Component) JID() string { return c.jid }

// Start binds the HTTPS listener and registers the slot service, its
// disco entries, the purge job and the account-removal hook.
func (c *Component) Start(ctx context.Context) error {
	// Guarded by the server: EMFILE retried, per-address cap, and every
	// connection counts in the unauthenticated budget (a slot URL is a
	// capability, not a login).
	ln, err := c.h.Listen("http", c.addr, true)
	if err != nil {
		return fmt.Errorf("upload: listen: %w", err)
	}
	base := c.baseURL
	if base == "" {
		base = defaultBaseURL(ln.Addr().(*net.TCPAddr), c.addr, c.h.Domain())
	}
	if err := c.svc.SetBaseURL(base); err != nil {
		ln.Close()
		return err
	}
	// The client-facing TLS floor (tls.c2s-min-version) guards downloads
	// and uploads like every other client connection.
	tc := c.h.TLSConfig(0).Clone()
	tc.NextProtos = []string{"h2", "http/1.1"}
	srv := NewHTTPServer(c.svc.Handler(), tc, c.h.Logger())
	c.mu.Lock()
	c.ln, c.srv = ln, srv
	c.mu.Unlock()
	go func() {
		if err := srv.Serve(tls.NewListener(ln, tc)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			c.h.Fail("upload listener", err)
		}
	}()

	h := c.h
	h.AddService(c.jid)
	h.AddItem(host.Item{JID: c.jid, Name: "HTTP File Upload"})
	h.HandleIQ(c.jid, ns.Upload, "request", c.slotIQ)
	h.HandleIQ(c.jid, ns.DiscoInfo, "query", c.discoInfo)
	h.HandleIQ(c.jid, ns.DiscoItems, "query", func(ctx context.Context, iq *host.IQ) (*wire.Element, error) {
		return wire.New(ns.DiscoItems, "query"), nil
	})
	h.Every("upload-purge", PurgeInterval(c.svc.Retention()), func(ctx context.Context, now time.Time) {
		if _, err := c.svc.Purge(ctx); err != nil && ctx.Err() == nil {
			h.Logger().Error("upload: purge", "err", err)
		}
	})
	h.OnAccountRemoved(func(ctx context.Context, user string) error {
		_, err := c.svc.RemoveOwner(ctx, user+"@"+h.Domain())
		return err
	})
	h.Logger().Info("upload service started", "jid", c.jid, "port", ln.Addr().(*net.TCPAddr).Port,
		"max_file_size", c.svc.MaxFileSize(), "retention", spec.FormatDuration(c.svc.Retention()))
	return nil
}

// PurgeInterval is how often the purge job runs for a retention of maxAge:
// a hundredth of it, between a minute and an hour. A file is refused from
// max_age on and gone from disk within one interval after.
func PurgeInterval(maxAge time.Duration) time.Duration {
	return min(max(maxAge/100, time.Minute), time.Hour)
}

// defaultBaseURL picks the host of slot URLs: the listener's own address
// when it names one (tests, and the self-signed certificate of "localhost"
// covers 127.0.0.1), else upload.DOMAIN.
func defaultBaseURL(bound *net.TCPAddr, configured, domain string) string {
	host, _, _ := net.SplitHostPort(configured)
	port := strconv.Itoa(bound.Port)
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		return "https://" + net.JoinHostPort("upload."+domain, port)
	}
	return "https://" + net.JoinHostPort(host, port)
}

func (c *Component) slotIQ(ctx context.Context, iq *host.IQ) (*wire.Element, error) {
	if iq.Type != "get" {
		return nil, host.ErrBadRequest
	}
	if !iq.Local {
		// Slots are for the server's own accounts.
		return nil, host.ErrNotAllowed
	}
	req, err := ParseRequest([]byte(iq.Payload.String()))
	var slot Slot
	if err == nil {
		slot, err = c.svc.RequestSlot(ctx, iq.From.Bare().String(), req)
	}
	if err != nil {
		return nil, stanzaError(err)
	}
	return wire.Parse(SlotXML(slot), "")
}

// stanzaError maps a refused slot request to XEP-0363 §4.1's errors.
func stanzaError(err error) error {
	var se *SlotError
	errors.As(err, &se)
	text := err.Error()
	if se != nil {
		text = se.Text
	}
	switch {
	case errors.Is(err, ErrTooLarge):
		max := int64(0)
		if se != nil {
			max = se.MaxSize
		}
		ftl := wire.New(ns.Upload, "file-too-large").Add(wire.New(ns.Upload, "max-file-size").AddText(strconv.FormatInt(max, 10)))
		return &host.StanzaError{Type: host.ErrTypeModify, Condition: "not-acceptable", Text: text, Extra: []*wire.Element{ftl}}
	case errors.Is(err, ErrQuota):
		return &host.StanzaError{Type: host.ErrTypeWait, Condition: "resource-constraint", Text: text}
	case errors.Is(err, ErrBadRequest):
		return &host.StanzaError{Type: host.ErrTypeModify, Condition: "bad-request", Text: text}
	}
	return err // internal-server-error, logged by the server
}

func (c *Component) discoInfo(ctx context.Context, iq *host.IQ) (*wire.Element, error) {
	if iq.Type != "get" {
		return nil, host.ErrBadRequest
	}
	if iq.Payload.Get("node") != "" {
		return nil, host.ErrItemNotFound
	}
	return wire.Parse(c.svc.DiscoInfoXML(), "")
}

// Addr is the HTTPS listener's address.
func (c *Component) Addr() net.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ln == nil {
		return nil
	}
	return c.ln.Addr()
}

// Close stops the HTTPS server.
func (c *Component) Close() error {
	c.mu.Lock()
	srv := c.srv
	c.mu.Unlock()
	if srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		return srv.Close()
	}
	return nil
}
