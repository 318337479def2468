package im

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"hash/maphash"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/xmppcheck/xmppcheck/internal/ns"
	"github.com/xmppcheck/xmppcheck/reference/clock"
	"github.com/xmppcheck/xmppcheck/reference/host"
	"github.com/xmppcheck/xmppcheck/reference/metrics"
	"github.com/xmppcheck/xmppcheck/reference/ratelimit"
	"github.com/xmppcheck/xmppcheck/reference/store"
	"github.com/xmppcheck/xmppcheck/reference/wire"
)

// Session is the transport side of a bound client session (a c2s
// connection). Its methods must not block.
type Session interface {
	// ID is the connection id used in logs.
	ID() string
	// Send queues a serialised top-level element for the client.
	Send(b []byte)
	// Close sends a stream error (RFC 6120 §4.9) after what is queued and
	// closes the connection.
	Close(cond wire.Condition, text string)
}

// Registration is the in-band registration policy (XEP-0077), from the
// policy's registration.* claims.
type Registration struct {
	// Required and Optional are the form's fields (XEP-0077 §14.1 names).
	Required, Optional []string
	// RateMax registrations per address within RateWindow (0: no limit).
	RateMax    int
	RateWindow time.Duration
	// Disabled turns in-band registration off.
	Disabled bool
}

// Config configures a Router.
type Config struct {
	Domain  string
	Store   *store.Store
	Clock   clock.Clock
	Logger  *slog.Logger
	Metrics *metrics.Metrics
	// MaxOffline messages stored per user (XEP-0160 quota).
	MaxOffline int
	// MaxRosterItems per user.
	MaxRosterItems int
	// MaxVCard is the largest vCard stored, in bytes.
	MaxVCard int
	// Iterations and Hashes for SCRAM credentials of new passwords.
	Iterations int
	Hashes     []string
	// Registration policy.
	Registration Registration
	// FakeKey keys fake SCRAM salts; not used here but kept with accounts.
	FakeKey []byte
}

// Router routes stanzas between local sessions, the server's handlers and
// remote domains. It is safe for concurrent use.
type Router struct {
	cfg    Config
	domain jid.JID
	seed   maphash.Seed
	shards [64]shard

	mu            sync.RWMutex
	serverIQ      map[iqKey]host.IQHandler // by addr ("" = domain), ns, local
	accountIQ     map[iqKey]host.IQHandler // by ns, local
	services      map[string]bool
	features      map[string][]string
	identities    map[string][]host.Identity
	items         []host.Item
	removedHooks  []func(ctx context.Context, user string) error
	remote        atomic.Pointer[remoteBox]
	regLimit      *ratelimit.Window
	pushSeq       atomic.Uint64
	count         counters
	offlineStored atomic.Int64
}

type remoteBox struct{ r host.Remote }

type iqKey struct{ addr, ns, local string }

type shard struct {
	mu    sync.RWMutex
	users map[string]*user
}

type user struct {
	name      string
	mu        sync.Mutex
	resources []*Resource
}

// Resource is a bound resource: a session with its full JID and presence.
type Resource struct {
	r    *Router
	u    *user
	sess Session
	jid  jid.JID
	addr string

	// Guarded by u.mu.
	available  bool
	priority   int
	presence   *wire.Element // last broadcast available presence
	directed   map[string]bool
	interested bool // requested the roster (RFC 6121 §2.1.6 pushes)
	gone       bool
}

// JID returns the resource's full JID.
func (res *Resource) JID() jid.JID { return res.jid }

// ErrBadResource is returned by Bind for a resourcepart that is not valid
// (RFC 6120 §7.7.2.1).
var ErrBadResource = errors.New("im: invalid resourcepart")

// New returns a router.
func New(cfg Config) (*Router, error) {
	d, err := jid.New("", cfg.Domain, "")
	if err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.New()
	}
	if cfg.MaxVCard <= 0 {
		cfg.MaxVCard = 64 << 10
	}
	r := &Router{
		cfg:        cfg,
		domain:     d,
		seed:       maphash.MakeSeed(),
		serverIQ:   map[iqKey]host.IQHandler{},
		accountIQ:  map[iqKey]host.IQHandler{},
		services:   map[string]bool{},
		features:   map[string][]string{},
		identities: map[string][]host.Identity{},
	}
	for i := range r.shards {
		r.shards[i].users = map[string]*user{}
	}
	r.count = newCounters(cfg.Metrics)
	if cfg.Registration.RateMax > 0 {
		r.regLimit = ratelimit.NewWindow(cfg.Clock, cfg.Registration.RateMax, cfg.Registration.RateWindow)
	}
	if n, err := cfg.Store.CountOffline(); err == nil {
		r.offlineStored.Store(int64(n))
		cfg.Metrics.OfflineQueue.Set(float64(n))
	}
	r.registerBuiltins()
	return r, nil
}

// Domain returns the served domain.
func (r *Router) Domain() string { return r.cfg.Domain }

func (r *Router) shardOf(name string) *shard {
	return &r.shards[maphash.String(r.seed, name)%uint64(len(r.shards))]
}

// lookup returns the user entry of a local account with sessions, or nil.
func (r *Router) lookup(name string) *user {
	sh := r.shardOf(name)
	sh.mu.RLock()
	u := sh.users[name]
	sh.mu.RUnlock()
	return u
}

// resourcesOf returns a snapshot of name's bound resources.
func (r *Router) resourcesOf(name string) []*Resource {
	u := r.lookup(name)
	if u == nil {
		return nil
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.resources)
}

// availableOf returns name's available resources with non-negative priority,
// and of those the ones with the highest priority.
func (r *Router) availableOf(name string) (all, best []*Resource) {
	u := r.lookup(name)
	if u == nil {
		return nil, nil
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	top := -1
	for _, res := range u.resources {
		if res.available && res.priority >= 0 {
			all = append(all, res)
			if res.priority > top {
				top = res.priority
			}
		}
	}
	for _, res := range all {
		if res.priority == top {
			best = append(best, res)
		}
	}
	return all, best
}

func randomResource() string {
	b := make([]byte, 10)
	rand.Read(b)
	return "xr-" + base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b)
}

// Bind binds a resource for the authenticated user (RFC 6120 §7). An empty
// requested resource gets a random one. A session already bound to the same
// full JID is closed with a conflict stream error (§7.7.2.2: the server may
// terminate the older session). onBound runs before any stanza can be routed
// to the new resource, so the bind result reaches the client first.
func (r *Router) Bind(sess Session, username, requested, addr string, onBound func(jid.JID)) (*Resource, error) {
	if requested == "" {
		requested = randomResource()
	}
	j, err := jid.New(username, r.cfg.Domain, requested)
	if err != nil || j.Resourcepart() == "" {
		return nil, ErrBadResource
	}
	res := &Resource{r: r, sess: sess, jid: j, addr: addr}
	sh := r.shardOf(j.Localpart())
	sh.mu.Lock()
	u := sh.users[j.Localpart()]
	if u == nil {
		u = &user{name: j.Localpart()}
		sh.users[u.name] = u
	}
	res.u = u
	u.mu.Lock()
	sh.mu.Unlock()
	var old *Resource
	for i, o := range u.resources {
		if o.jid.Resourcepart() == j.Resourcepart() {
			old = o
			u.resources = append(u.resources[:i], u.resources[i+1:]...)
			break
		}
	}
	var oldAvailable bool
	var oldDirected map[string]bool
	if old != nil {
		old.gone = true
		oldAvailable = old.available
		old.available = false
		oldDirected, old.directed = old.directed, nil
	}
	onBound(j)
	u.resources = append(u.resources, res)
	u.mu.Unlock()
	r.cfg.Metrics.Sessions.WithLabelValues("bound").Inc()
	if old != nil {
		// The replaced session no longer counts; its Unbind will find it gone.
		r.cfg.Metrics.Sessions.WithLabelValues("bound").Dec()
		old.sess.Close("conflict", "replaced by a new session with the same resource")
		if oldAvailable || len(oldDirected) > 0 {
			r.broadcastUnavailable(context.Background(), old, oldDirected)
		}
	}
	return res, nil
}

// Unbind removes a resource when its session ends; if it was available its
// contacts and directed-presence recipients get unavailable presence (RFC
// 6121 §4.5.2).
func (r *Router) Unbind(res *Resource) {
	u := res.u
	u.mu.Lock()
	if res.gone {
		u.mu.Unlock()
		return
	}
	res.gone = true
	wasAvailable := res.available
	res.available = false
	directed := res.directed
	res.directed = nil
	for i, o := range u.resources {
		if o == res {
			u.resources = append(u.resources[:i], u.resources[i+1:]...)
			break
		}
	}
	empty := len(u.resources) == 0
	u.mu.Unlock()
	r.cfg.Metrics.Sessions.WithLabelValues("bound").Dec()
	if wasAvailable || len(directed) > 0 {
		r.broadcastUnavailable(context.Background(), res, directed)
	}
	if empty {
		sh := r.shardOf(u.name)
		sh.mu.Lock()
		u.mu.Lock()
		if len(u.resources) == 0 && sh.users[u.name] == u {
			delete(sh.users, u.name)
		}
		u.mu.Unlock()
		sh.mu.Unlock()
	}
}

// Sessions returns the number of bound resources.
func (r *Router) Sessions() int {
	n := 0
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.RLock()
		for _, u := range sh.users {
			u.mu.Lock()
			n += len(u.resources)
			u.mu.Unlock()
		}
		sh.mu.RUnlock()
	}
	return n
}

// Handle processes a stanza sent by a bound resource. Its 'from' is stamped
// with the resource's full JID (RFC 6120 §8.1.2.1).
func (r *Router) Handle(ctx context.Context, res *Resource, el *wire.Element) {
	el.SetAttr("from", res.jid.String())
	switch el.Name.Local {
	case "message":
		r.routeMessage(ctx, res.jid, el, true)
	case "presence":
		r.handlePresence(ctx, res, el)
	case "iq":
		r.routeIQ(ctx, res.jid, el, res)
	}
}

// marshal serialises a stanza for a c2s stream.
func marshal(el *wire.Element) []byte { return el.Append(nil, ns.Client) }

// isLocal reports whether j is on this server's domain.
func (r *Router) isLocal(j jid.JID) bool { return j.Domainpart() == r.cfg.Domain }

// isService reports whether j is a component service of this server.
func (r *Router) isService(j jid.JID) bool {
	if j.Localpart() != "" || j.Resourcepart() != "" {
		return false
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.services[j.Domainpart()]
}

// deliverTo sends an element to one full or bare JID wherever it is: a
// local resource (if connected), every available resource of a local bare
// JID (RFC 6121 §8.5.2.1.3, §8.5.3.1 for presence), or a remote domain.
// It routes presence that is not a subscription request, bounces and
// server-generated stanzas.
func (r *Router) deliverTo(ctx context.Context, to jid.JID, el *wire.Element) {
	if !r.isLocal(to) {
		if !r.isService(to) {
			r.toRemote(ctx, to, el)
		}
		return
	}
	if to.Localpart() == "" {
		return
	}
	b := marshal(el)
	if to.Resourcepart() != "" {
		for _, res := range r.resourcesOf(to.Localpart()) {
			if res.jid.Resourcepart() == to.Resourcepart() {
				res.sess.Send(b)
			}
		}
		return
	}
	all, _ := r.availableOf(to.Localpart())
	for _, res := range all {
		res.sess.Send(b)
	}
}

// toRemote hands el to the s2s component, or bounces it.
func (r *Router) toRemote(ctx context.Context, to jid.JID, el *wire.Element) {
	box := r.remote.Load()
	kind := el.Name.Local
	if box == nil || box.r == nil {
		r.bounce(ctx, el, host.Errorf(host.ErrTypeCancel, "remote-server-not-found", "this server does not federate"))
		return
	}
	if err := box.r.Route(ctx, to.Domainpart(), el); err != nil {
		se := host.AsStanzaError(err)
		if se == host.ErrInternal {
			se = host.ErrRemoteNotFound
		}
		r.bounce(ctx, el, se)
		return
	}
	r.inc(kind, "remote")
}

// bounce returns an error stanza to the sender of el (RFC 6120 §8.3.1), but
// never answers an error with an error.
func (r *Router) bounce(ctx context.Context, el *wire.Element, se *host.StanzaError) {
	kind := el.Name.Local
	if el.Get("type") == "error" {
		r.inc(kind, "dropped")
		return
	}
	from, err := jid.Parse(el.Get("from"))
	if err != nil {
		return
	}
	e := wire.New(ns.Client, kind).SetAttr("type", "error").SetAttr("id", el.Get("id")).SetAttr("from", el.Get("to")).SetAttr("to", from.String())
	if e.Get("from") == "" {
		e.SetAttr("from", r.cfg.Domain)
	}
	if kind == "iq" {
		// RFC 6120 §8.3.1: include the request's payload.
		for _, c := range el.Children {
			if c.Elem != nil {
				e.Add(c.Elem)
			}
		}
	}
	e.Add(se.Element())
	r.inc(kind, "error")
	r.deliverTo(ctx, from, e)
}

func (r *Router) newPushID() string { return "push-" + strconv.FormatUint(r.pushSeq.Add(1), 36) }

// Available returns the number of available resources of a user and how
// many of them have a non-negative priority.
func (r *Router) Available(name string) (nonNegative, total int) {
	u := r.lookup(name)
	if u == nil {
		return 0, 0
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, res := range u.resources {
		if res.available {
			total++
			if res.priority >= 0 {
				nonNegative++
			}
		}
	}
	return nonNegative, total
}
