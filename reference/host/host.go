package host

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/xmppcheck/xmppcheck/reference/clock"
	"github.com/xmppcheck/xmppcheck/reference/wire"
	"github.com/xmppcheck/xmppcheck/spec"
)

// IQ is an IQ request (type get or set) for a handler.
type IQ struct {
	// Stanza is the whole <iq/>, in the jabber:client namespace.
	Stanza *wire.Element
	// Payload is its first child element.
	Payload *wire.Element
	// From is the sender's full JID, stamped by the server (RFC 6120
	// §8.1.2.1) for local senders, verified by s2s for remote ones.
	From jid.JID
	// To is the address the request was sent to: the domain when the
	// stanza had no 'to', an account's bare JID, or a service JID.
	To jid.JID
	// Type is "get" or "set".
	Type string
	// Local reports whether the sender is a local account (false: it came
	// in over s2s).
	Local bool
	// Addr is the client's network address for local senders on c2s, only
	// for in-memory rate limits: it must never be logged or stored.
	Addr string
}

// IQHandler answers an IQ request with a result payload (nil for an empty
// result) or an error. A *StanzaError is sent as is; any other error
// becomes internal-server-error.
type IQHandler func(ctx context.Context, iq *IQ) (*wire.Element, error)

// Stanza error types (RFC 6120 §8.3.2).
const (
	ErrTypeAuth     = "auth"
	ErrTypeCancel   = "cancel"
	ErrTypeContinue = "continue"
	ErrTypeModify   = "modify"
	ErrTypeWait     = "wait"
)

// StanzaError is an RFC 6120 §8.3 stanza error. Condition is a defined
// condition name such as "service-unavailable" (mellium.im/xmpp/stanza
// names them all).
type StanzaError struct {
	Type      string
	Condition string
	Text      string
	// Extra holds application-specific condition elements (RFC 6120
	// §8.3.4), such as XEP-0363's <file-too-large/>.
	Extra []*wire.Element
}

func (e *StanzaError) Error() string {
	if e.Text != "" {
		return fmt.Sprintf("%s (%s): %s", e.Condition, e.Type, e.Text)
	}
	return fmt.Sprintf("%s (%s)", e.Condition, e.Type)
}

// Element returns the <error/> child of an error stanza.
func (e *StanzaError) Element() *wire.Element {
	el := wire.New(wire.NSClient, "error").SetAttr("type", e.Type)
	el.Add(wire.New(wire.NSStanzaErrors, e.Condition))
	if e.Text != "" {
		t := wire.New(wire.NSStanzaErrors, "text").AddText(e.Text)
		t.Attr = append(t.Attr, wire.Attr{Name: wire.Name{Space: wire.NSXML, Local: "lang"}, Value: "en"})
		el.Add(t)
	}
	el.Add(e.Extra...)
	return el
}

// Errorf returns a stanza error.
func Errorf(typ, condition, format string, args ...any) *StanzaError {
	return &StanzaError{Type: typ, Condition: condition, Text: fmt.Sprintf(format, args...)}
}

// Common stanza errors.
var (
	ErrServiceUnavailable = &StanzaError{Type: ErrTypeCancel, Condition: "service-unavailable"}
	ErrBadRequest         = &StanzaError{Type: ErrTypeModify, Condition: "bad-request"}
	ErrNotAllowed         = &StanzaError{Type: ErrTypeCancel, Condition: "not-allowed"}
	ErrForbidden          = &StanzaError{Type: ErrTypeAuth, Condition: "forbidden"}
	ErrItemNotFound       = &StanzaError{Type: ErrTypeCancel, Condition: "item-not-found"}
	ErrInternal           = &StanzaError{Type: ErrTypeCancel, Condition: "internal-server-error"}
	ErrRemoteNotFound     = &StanzaError{Type: ErrTypeCancel, Condition: "remote-server-not-found"}
	ErrFeatureNotImpl     = &StanzaError{Type: ErrTypeCancel, Condition: "feature-not-implemented"}
)

// AsStanzaError returns err as a *StanzaError, or internal-server-error.
func AsStanzaError(err error) *StanzaError {
	var se *StanzaError
	if errors.As(err, &se) {
		return se
	}
	return ErrInternal
}

// Identity is a XEP-0030 identity.
type Identity struct {
	Category, Type, Name string
}

// Item is a XEP-0030 item of the domain's disco#items.
type Item struct {
	JID, Name, Node string
}

// Remote routes stanzas addressed to other domains (the s2s component).
type Remote interface {
	// Route sends el (jabber:client namespace, 'from' and 'to' set) to the
	// server of domain. An error that is a *StanzaError is bounced to the
	// sender as such; others become remote-server-not-found.
	Route(ctx context.Context, domain string, el *wire.Element) error
}

// Host is what the server offers a component: only what the components
// (packages s2s and upload) call. Add a method when a component needs it.
type Host interface {
	// Domain is the server's XMPP domain.
	Domain() string
	// Logger is the server's logger. Components must never log a client's
	// network address (privacy.no-client-ip).
	Logger() *slog.Logger
	// Clock is the server's clock (the test clock when enabled).
	Clock() clock.Clock
	// Key derives a key of the at-rest master key for purpose (HKDF).
	Key(purpose string) []byte
	// Policy is the policy the server was configured from.
	Policy() *spec.Policy
	// TLSConfig returns a server TLS configuration with the server's
	// certificate and min as the lowest version (a spec TLS version such as
	// tls.VersionTLS12; zero means the c2s floor).
	TLSConfig(min uint16) *tls.Config

	// HandleIQ answers IQs of type get and set to addr (the domain when
	// addr is "", or a service JID registered with AddService) whose payload
	// is {ns}local.
	HandleIQ(addr, ns, local string, h IQHandler)
	// AddService declares a JID served by the component (for example
	// upload.example.org): stanzas to it are dispatched to its handlers.
	AddService(addr string)
	// AddItem adds an item to the domain's disco#items.
	AddItem(item Item)

	// SetRemote sets the router for stanzas to other domains.
	SetRemote(r Remote)
	// DeliverRemote delivers a stanza received from another server (its
	// 'from' verified by the component, namespace jabber:client) to local
	// recipients, as RFC 6121 §8 asks; errors come back as a *StanzaError
	// the component may bounce.
	DeliverRemote(ctx context.Context, el *wire.Element) error

	// Every runs job every interval on the server's clock until the server
	// closes. On the test clock, advancing past an interval runs the job
	// once before the advance returns.
	Every(name string, interval time.Duration, job func(ctx context.Context, now time.Time))
	// OnAccountRemoved registers f to run when an account is removed
	// (XEP-0077 <remove/> or admin delete), after the store deleted its own
	// records and before the address becomes free again.
	OnAccountRemoved(f func(ctx context.Context, user string) error)

	// Listen binds a TCP listener for the component, guarded as every
	// listener of the server is (package accept): temporary accept errors
	// (EMFILE, …) retried with backoff, the per-address connection cap
	// (Limits.MaxConnsPerAddr) and, when preAuth is true, the server's
	// budget of unauthenticated connections (release a connection's slot
	// with accept.Promote once its peer authenticated).
	Listen(name, addr string, preAuth bool) (net.Listener, error)
	// Fail takes the server down loudly: a listener died (its accept
	// returned an error that is not temporary). The server logs it at
	// ERROR, closes, and `xmppcheck serve` exits non-zero.
	Fail(what string, err error)
}

// Component is an extension the server starts with itself (s2s, upload).
type Component interface {
	// Start binds the component's listeners and returns.
	Start(ctx context.Context) error
	// Addr returns the bound address (nil before Start).
	Addr() net.Addr
	// Close stops the component.
	Close() error
}

// NewComponent builds a component for the listener address addr.
type NewComponent func(h Host, addr string) (Component, error)
