package accept

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/xmppcheck/xmppcheck/reference/ratelimit"
	"github.com/xmppcheck/xmppcheck/reference/redact"
)

// Backoff bounds.
const (
	MinBackoff = 5 * time.Millisecond
	MaxBackoff = time.Second
)

// Option configures Guard.
type Option func(*Listener)

// WithName names the listener in log lines ("c2s", "s2s", "http", …).
func WithName(n string) Option { return func(l *Listener) { l.name = n } }

// WithLogger sets the logger (default: discard).
func WithLogger(lg *slog.Logger) Option { return func(l *Listener) { l.log = lg } }

// WithPerAddr caps concurrent connections per address (IPv6: per /64);
// n <= 0 means no cap.
func WithPerAddr(n int) Option { return func(l *Listener) { l.cap = ratelimit.NewCap(n) } }

// WithCap counts connections per address in c, which other listeners may
// share (one cap over several ports).
func WithCap(c *ratelimit.Cap) Option { return func(l *Listener) { l.cap = c } }

// WithBudget makes every connection hold a slot of b until it is promoted
// (Promote) or closed; connections are refused while b is full.
func WithBudget(b *Budget) Option { return func(l *Listener) { l.budget = b } }

// WithRefused is called with the reason ("per_address_cap",
// "preauth_budget") of every refused connection (metrics).
func WithRefused(f func(reason string)) Option { return func(l *Listener) { l.refused = f } }

// WithRefusal sets bytes written (best effort, one short write) to a
// refused connection before it is closed, e.g. a stream error.
func WithRefusal(f func() []byte) Option { return func(l *Listener) { l.refusal = f } }

// Listener is a guarded net.Listener.
type Listener struct {
	net.Listener
	name    string
	log     *slog.Logger
	cap     *ratelimit.Cap
	budget  *Budget
	refused func(string)
	refusal func() []byte

	mu     sync.Mutex
	done   chan struct{}
	once   sync.Once
	burst  int
	since  time.Time
	refuse refusals
}

// Guard wraps ln.
func Guard(ln net.Listener, opts ...Option) *Listener {
	l := &Listener{Listener: ln, name: ln.Addr().Network(), log: slog.New(slog.DiscardHandler),
		cap: ratelimit.NewCap(0), done: make(chan struct{})}
	for _, o := range opts {
		o(l)
	}
	l.refuse.log, l.refuse.name = l.log, l.name
	return l
}

// Close closes the listener and interrupts a backoff.
func (l *Listener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// Temporary reports whether an accept error is worth retrying: the process
// or the system ran out of descriptors or buffers, or one connection was
// aborted before it was accepted.
func Temporary(err error) bool {
	for _, e := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM,
		syscall.ECONNABORTED, syscall.ECONNRESET, syscall.EINTR, syscall.EAGAIN, syscall.EPROTO, syscall.EPERM} {
		if errors.Is(err, e) {
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Accept returns the next connection within the caps. Temporary errors are
// retried with backoff; the first of a burst is logged at WARN, the
// recovery at INFO with the count. Other errors are returned (and logged at
// ERROR unless the listener was closed).
func (l *Listener) Accept() (net.Conn, error) {
	backoff := time.Duration(0)
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			select {
			case <-l.done:
				return nil, net.ErrClosed
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return nil, err
			}
			if !Temporary(err) {
				l.log.Error("listener died", "listener", l.name, "err", redact.Wrap(err))
				return nil, err
			}
			l.mu.Lock()
			if l.burst == 0 {
				l.since = time.Now()
				l.log.Warn("accept failing; retrying with backoff until it recovers", "listener", l.name, "err", redact.Wrap(err))
			}
			l.burst++
			l.mu.Unlock()
			backoff = min(max(2*backoff, MinBackoff), MaxBackoff)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
				continue
			case <-l.done:
				t.Stop()
				return nil, net.ErrClosed
			}
		}
		backoff = 0
		l.mu.Lock()
		if l.burst > 0 {
			l.log.Info("accepting again", "listener", l.name, "failed_accepts", l.burst, "after", time.Since(l.since).Round(time.Millisecond))
			l.burst = 0
		}
		l.mu.Unlock()
		if gc, ok := l.admit(c); ok {
			return gc, nil
		}
	}
}

// admit takes the connection's slots or refuses it.
func (l *Listener) admit(c net.Conn) (net.Conn, bool) {
	key := Key(c.RemoteAddr())
	reason := ""
	if !l.cap.Acquire(key) {
		reason = "per_address_cap"
	} else if l.budget != nil && !l.budget.take() {
		l.cap.Release(key)
		reason = "preauth_budget"
	}
	if reason != "" {
		// Counted before the peer can see the close.
		if l.refused != nil {
			l.refused(reason)
		}
		l.refuse.add(reason)
		if l.refusal != nil {
			c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			c.Write(l.refusal())
		}
		c.Close()
		return nil, false
	}
	gc := &Conn{Conn: c, l: l, key: key}
	if l.budget != nil {
		gc.slot.Store(true)
	}
	return gc, true
}

// Conn is a connection accepted by a Listener; Close returns its slots.
type Conn struct {
	net.Conn
	l    *Listener
	key  string
	slot atomic.Bool
	once sync.Once
}

// Close closes the connection and releases its slots.
func (c *Conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.promote()
		c.l.cap.Release(c.key)
	})
	return err
}

func (c *Conn) promote() {
	if c.slot.CompareAndSwap(true, false) {
		c.l.budget.give()
	}
}

// Promote releases c's slot of the unauthenticated budget once its peer
// has authenticated; c may be a *Conn or anything else (then nothing
// happens).
func Promote(c net.Conn) {
	if gc, ok := c.(*Conn); ok {
		gc.promote()
	}
}

// Budget is a count of unauthenticated connections shared by listeners.
type Budget struct {
	max int
	n   atomic.Int64
}

// NewBudget allows max unauthenticated connections (<= 0: no limit).
func NewBudget(max int) *Budget { return &Budget{max: max} }

func (b *Budget) take() bool {
	if b.n.Add(1) > int64(b.max) && b.max > 0 {
		b.n.Add(-1)
		return false
	}
	return true
}

func (b *Budget) give() { b.n.Add(-1) }

// InUse returns the slots taken.
func (b *Budget) InUse() int { return int(b.n.Load()) }

// Max returns the budget's size.
func (b *Budget) Max() int { return b.max }

// Key is the address per-address limits count by: an IPv4 address
// (IPv4-mapped IPv6 unmapped), or the /64 of an IPv6 address, since one
// IPv6 host usually holds a whole /64.
func Key(a net.Addr) string {
	if a == nil {
		return ""
	}
	var ip netip.Addr
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, _ = netip.AddrFromSlice(ta.IP)
	} else if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		ip = ap.Addr()
	}
	ip = ip.Unmap()
	if !ip.IsValid() {
		return a.String()
	}
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// refusals logs refused connections once per interval per reason, with
// the count (no address: the reason is enough to act on).
type refusals struct {
	log   *slog.Logger
	name  string
	mu    sync.Mutex
	count map[string]int
	timer *time.Timer
}

// RefusalInterval is how often refused connections are summed up in a log
// line.
const RefusalInterval = 10 * time.Second

func (r *refusals) add(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.count == nil {
		r.count = map[string]int{}
	}
	if r.timer == nil {
		// The first refusal of an interval is told at once.
		r.log.Warn("connections refused", "listener", r.name, "reason", reason, "count", 1)
		r.timer = time.AfterFunc(RefusalInterval, r.flush)
		return
	}
	r.count[reason]++
}

func (r *refusals) flush() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.timer = nil
	for reason, n := range r.count {
		r.log.Warn("connections refused", "listener", r.name, "reason", reason, "count", n, "in_last", RefusalInterval)
	}
	clear(r.count)
}
