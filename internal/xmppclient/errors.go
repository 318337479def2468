package xmppclient

import (
	"errors"
	"fmt"
	"strings"

	"mellium.im/xmpp/stanza"
)

// Sentinel errors. They are wrapped with the operation that failed:
// test with errors.Is.
var (
	// ErrClosed is returned by operations on a client that is closed or
	// whose stream the server ended.
	ErrClosed = errors.New("xmppclient: connection closed")
	// ErrTimeout is returned when an operation's deadline (ctx or the
	// client's timeout) passed before the server answered.
	ErrTimeout = errors.New("xmppclient: timeout")
	// ErrNoMechanism is returned by Authenticate when the server offers none
	// of the mechanisms the client is willing to use.
	ErrNoMechanism = errors.New("xmppclient: no common SASL mechanism")
	// ErrNoStartTLS is returned by Dial in STARTTLS mode when the server does
	// not offer STARTTLS (RFC 6120 §5.3.1).
	ErrNoStartTLS = errors.New("xmppclient: server does not offer STARTTLS")
	// ErrTLSRefused is returned when the server answers <starttls/> with
	// <failure/> (RFC 6120 §5.4.2.2).
	ErrTLSRefused = errors.New("xmppclient: server refused STARTTLS")
	// ErrState is returned when an operation is called in the wrong state
	// (Bind before Authenticate, Hijack after the reader started, …).
	ErrState = errors.New("xmppclient: operation not allowed in this state")
	// ErrServerSignature is returned when the server's SCRAM signature does
	// not verify: the server does not know the password (RFC 5802 §3).
	ErrServerSignature = errors.New("xmppclient: SCRAM server signature invalid")
	// ErrProtocol is returned when the server sent something the protocol
	// does not allow at that point.
	ErrProtocol = errors.New("xmppclient: protocol violation by the server")
	// ErrTooLarge is returned (with ErrProtocol) when the server sends an
	// element, a text run, an attribute or a whitespace run larger than
	// WithMaxElementSize, or nests elements deeper than MaxDepth.
	ErrTooLarge = errors.New("xmppclient: the server sent more than the read limit")
)

// SASLCondition is a SASL failure condition of RFC 6120 §6.5; its value is
// the wire token. A SASLCondition is an error so that
// errors.Is(err, xmppclient.SASLNotAuthorized) works on any error returned
// by Authenticate or Login.
type SASLCondition string

// RFC 6120 §6.5.1–§6.5.11.
const (
	SASLAborted              SASLCondition = "aborted"
	SASLAccountDisabled      SASLCondition = "account-disabled"
	SASLCredentialsExpired   SASLCondition = "credentials-expired"
	SASLEncryptionRequired   SASLCondition = "encryption-required"
	SASLIncorrectEncoding    SASLCondition = "incorrect-encoding"
	SASLInvalidAuthzid       SASLCondition = "invalid-authzid"
	SASLInvalidMechanism     SASLCondition = "invalid-mechanism"
	SASLMalformedRequest     SASLCondition = "malformed-request"
	SASLMechanismTooWeak     SASLCondition = "mechanism-too-weak"
	SASLNotAuthorized        SASLCondition = "not-authorized"
	SASLTemporaryAuthFailure SASLCondition = "temporary-auth-failure"
)

func (c SASLCondition) Error() string { return "sasl " + string(c) }

// SASLError is the server's <failure/> to a SASL exchange (RFC 6120 §6.4.5):
// the condition, the human-readable text the server sent (if any) and the
// mechanism that was tried.
type SASLError struct {
	Mechanism string
	Condition SASLCondition // empty if the server sent no known condition
	Other     string        // the element name if the condition is not one of RFC 6120's
	Text      string
	Lang      string
}

func (e *SASLError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "xmppclient: %s authentication failed: ", e.Mechanism)
	switch {
	case e.Condition != "":
		b.WriteString(string(e.Condition))
	case e.Other != "":
		b.WriteString(e.Other)
	default:
		b.WriteString("failure without condition")
	}
	if e.Text != "" {
		fmt.Fprintf(&b, " (%q)", e.Text)
	}
	return b.String()
}

// Is reports whether target is the SASLCondition of e.
func (e *SASLError) Is(target error) bool {
	c, ok := target.(SASLCondition)
	return ok && c == e.Condition
}

// StreamCondition is a stream error condition of RFC 6120 §4.9.3; its value
// is the wire token. errors.Is(err, xmppclient.StreamPolicyViolation) works
// on any error caused by a stream error.
type StreamCondition string

// RFC 6120 §4.9.3 (the conditions a server is likely to send a client).
const (
	StreamBadFormat              StreamCondition = "bad-format"
	StreamConflict               StreamCondition = "conflict"
	StreamConnectionTimeout      StreamCondition = "connection-timeout"
	StreamHostUnknown            StreamCondition = "host-unknown"
	StreamInternalServerError    StreamCondition = "internal-server-error"
	StreamInvalidNamespace       StreamCondition = "invalid-namespace"
	StreamNotAuthorized          StreamCondition = "not-authorized"
	StreamNotWellFormed          StreamCondition = "not-well-formed"
	StreamPolicyViolation        StreamCondition = "policy-violation"
	StreamResourceConstraint     StreamCondition = "resource-constraint"
	StreamSystemShutdown         StreamCondition = "system-shutdown"
	StreamUndefinedCondition     StreamCondition = "undefined-condition"
	StreamUnsupportedVersion     StreamCondition = "unsupported-version"
	StreamUnsupportedStanzaType  StreamCondition = "unsupported-stanza-type"
	StreamUnsupportedEncoding    StreamCondition = "unsupported-encoding"
	StreamUnsupportedFeature     StreamCondition = "unsupported-feature"
	StreamRestrictedXML          StreamCondition = "restricted-xml"
	StreamSeeOtherHost           StreamCondition = "see-other-host"
	StreamImproperAddressing     StreamCondition = "improper-addressing"
	StreamInvalidFrom            StreamCondition = "invalid-from"
	StreamRemoteConnectionFailed StreamCondition = "remote-connection-failed"
)

func (c StreamCondition) Error() string { return "stream error " + string(c) }

// StreamError is a <stream:error/> the server sent before closing the
// stream (RFC 6120 §4.9).
type StreamError struct {
	Condition StreamCondition
	Text      string
}

func (e *StreamError) Error() string {
	if e.Text != "" {
		return fmt.Sprintf("xmppclient: stream error: %s (%q)", e.Condition, e.Text)
	}
	return "xmppclient: stream error: " + string(e.Condition)
}

// Is reports whether target is the StreamCondition of e, or ErrClosed (a
// stream error always ends the stream).
func (e *StreamError) Is(target error) bool {
	if target == ErrClosed {
		return true
	}
	c, ok := target.(StreamCondition)
	return ok && c == e.Condition
}

// StanzaError is an error stanza the server (or a peer) returned for a
// request (RFC 6120 §8.3). It unwraps to mellium's stanza.Error, so both
//
//	errors.Is(err, stanza.Error{Condition: stanza.FeatureNotImplemented})
//	errors.As(err, &se) // se *xmppclient.StanzaError
//
// work.
type StanzaError struct {
	Kind      string // iq, message or presence
	ID        string
	Type      stanza.ErrorType
	Condition stanza.Condition
	Text      string
	Raw       string // the whole error stanza as received
}

func (e *StanzaError) Error() string {
	s := fmt.Sprintf("xmppclient: %s error: %s/%s", e.Kind, e.Type, e.Condition)
	if e.Text != "" {
		s += fmt.Sprintf(" (%q)", e.Text)
	}
	return s
}

// Unwrap returns the mellium form of the error.
func (e *StanzaError) Unwrap() error {
	se := stanza.Error{Type: e.Type, Condition: e.Condition}
	if e.Text != "" {
		se.Text = map[string]string{"": e.Text}
	}
	return se
}
