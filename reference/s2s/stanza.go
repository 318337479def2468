package s2s

import (
	"encoding/xml"
	"fmt"

	"mellium.im/xmpp/jid"

	"github.com/xmppcheck/xmppcheck/internal/ns"
	"github.com/xmppcheck/xmppcheck/reference/wire"
	"mellium.im/xmpp/stanza"
)

// Stanza is a message, presence or iq on its way to or from a remote
// domain. Raw is the whole element; its opening tag carries no namespace of
// its own, so it can be written into a client or a server stream as is.
type Stanza struct {
	Name     string // "message", "presence" or "iq"
	From, To jid.JID
	Type, ID string
	Raw      []byte

	retried bool          // re-sent once after a connection broke
	elem    *wire.Element // the parsed element, when read from a stream
}

// ParseStanza reads a stanza element (as a client or a server stream holds
// it) and normalises its namespace.
func ParseStanza(raw []byte) (Stanza, error) {
	r, st, err := reroot(raw)
	if err != nil {
		return Stanza{}, err
	}
	return stanzaFrom(r, st)
}

// stanzaFrom builds a Stanza from its normalised bytes and opening tag.
func stanzaFrom(r []byte, st xml.StartElement) (Stanza, error) {
	var err error
	switch st.Name.Local {
	case "message", "presence", "iq":
	default:
		return Stanza{}, fmt.Errorf("s2s: <%s/> is not a stanza", st.Name.Local)
	}
	s := Stanza{Name: st.Name.Local, Raw: r}
	for _, a := range st.Attr {
		if a.Name.Space != "" {
			continue
		}
		switch a.Name.Local {
		case "from":
			if a.Value == "" {
				continue
			}
			if s.From, err = jid.Parse(a.Value); err != nil {
				return Stanza{}, fmt.Errorf("s2s: stanza from %q: %w", a.Value, err)
			}
		case "to":
			if a.Value == "" {
				continue
			}
			if s.To, err = jid.Parse(a.Value); err != nil {
				return Stanza{}, fmt.Errorf("s2s: stanza to %q: %w", a.Value, err)
			}
		case "type":
			s.Type = a.Value
		case "id":
			s.ID = a.Value
		}
	}
	return s, nil
}

// bounceable reports whether an error may be returned for s: never for
// errors (RFC 6120 §8.3.1: no error about an error) nor IQ results.
func (s Stanza) bounceable() bool {
	if s.Type == "error" {
		return false
	}
	if s.Name == "iq" && s.Type == "result" {
		return false
	}
	return true
}

// Bounce builds the error stanza RFC 6120 §8.3 returns to s's sender: the
// addresses swapped, type='error', the condition, and (for messages and
// IQs) nothing of the original payload, which would echo a message body
// back through logs for no gain.
func Bounce(s Stanza, cond stanza.Condition, text string) Stanza {
	typ := "cancel"
	if cond == stanza.RemoteServerTimeout {
		typ = "wait"
	}
	var b []byte
	b = append(b, "<"+s.Name...)
	if !s.To.Equal(jid.JID{}) {
		b = append(b, " from='"+attrEscape(s.To.String())+"'"...)
	}
	if !s.From.Equal(jid.JID{}) {
		b = append(b, " to='"+attrEscape(s.From.String())+"'"...)
	}
	if s.ID != "" {
		b = append(b, " id='"+attrEscape(s.ID)+"'"...)
	}
	b = append(b, " type='error'><error type='"+typ+"'><"+string(cond)+" xmlns='"+ns.StanzaErrors+"'/>"...)
	if text != "" {
		b = append(b, "<text xmlns='"+ns.StanzaErrors+"'>"+textEscape(text)+"</text>"...)
	}
	b = append(b, "</error></"+s.Name+">"...)
	return Stanza{Name: s.Name, From: s.To, To: s.From, Type: "error", ID: s.ID, Raw: b}
}

// ErrorCondition returns the stanza error condition of an error stanza, or
// "" if s carries none.
func ErrorCondition(s Stanza) stanza.Condition {
	var v struct {
		Error *stanza.Error `xml:"error"`
	}
	if err := xml.Unmarshal(s.Raw, &v); err != nil || v.Error == nil {
		return ""
	}
	return v.Error.Condition
}
