package wire

import "github.com/xmppcheck/xmppcheck/internal/ns"

// internSet are names and namespaces common on XMPP streams; reading them
// allocates nothing.
var internSet = []string{
	ns.Stream, ns.Client, ns.Server, ns.XML, ns.StreamErrors, ns.StanzaErrors,
	ns.TLS, ns.SASL, ns.Bind, ns.Session, ns.Roster, ns.Delay, ns.DataForms,
	ns.Register, ns.DiscoInfo, ns.DiscoItems, ns.VCard, ns.Ping, ns.ChatStates,
	ns.Receipts, ns.ChatMarkers, ns.StanzaID,
	"message", "presence", "iq", "body", "subject", "thread", "show",
	"status", "priority", "query", "item", "group", "error", "text",
	"to", "from", "id", "type", "xmlns", "stream", "lang", "version",
	"chat", "normal", "headline", "groupchat", "get", "set", "result",
	"available", "unavailable", "subscribe", "subscribed",
	"unsubscribe", "unsubscribed", "probe", "jid", "name",
	"subscription", "ask", "active", "composing", "paused", "inactive",
	"gone", "request", "received", "ping", "vCard", "bind", "resource",
	"session", "starttls", "auth", "response", "abort", "mechanism",
	"stamp", "x", "c", "hash", "node", "ver", "origin-id", "stanza-id",
	"en", "1.0", "1", "0", "away", "xa", "dnd",
}

// internTable is an open-addressing table over internSet with a cheap hash
// (a map lookup cost a third of the reader's time).
var internTable = func() (t [512]string) {
	for _, s := range internSet {
		i := internHash([]byte(s))
		for t[i] != "" {
			i = (i + 1) & 511
		}
		t[i] = s
	}
	return t
}()

func internHash(b []byte) uint32 {
	h := uint32(len(b)) * 0x9E3779B1
	if len(b) > 0 {
		h ^= uint32(b[0])<<7 ^ uint32(b[len(b)-1])<<13 ^ uint32(b[len(b)/2])<<3
	}
	return (h ^ h>>9) & 511
}

func intern(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) <= 48 {
		for i := internHash(b); internTable[i] != ""; i = (i + 1) & 511 {
			if internTable[i] == string(b) {
				return internTable[i]
			}
		}
	}
	return string(b)
}

// isNameStartChar reports whether r may start an XML name (XML 1.0 fifth
// edition §2.3 NameStartChar, without ':' which QNames treat apart).
func isNameStartChar(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r == '_':
		return true
	case r < 0xC0:
		return false
	case r <= 0xD6, r >= 0xD8 && r <= 0xF6, r >= 0xF8 && r <= 0x2FF,
		r >= 0x370 && r <= 0x37D, r >= 0x37F && r <= 0x1FFF,
		r >= 0x200C && r <= 0x200D, r >= 0x2070 && r <= 0x218F,
		r >= 0x2C00 && r <= 0x2FEF, r >= 0x3001 && r <= 0xD7FF,
		r >= 0xF900 && r <= 0xFDCF, r >= 0xFDF0 && r <= 0xFFFD,
		r >= 0x10000 && r <= 0xEFFFF:
		return true
	}
	return false
}

// isNameChar reports whether r may continue an XML name (NameChar without
// ':').
func isNameChar(r rune) bool {
	switch {
	case isNameStartChar(r):
		return true
	case r == '-', r == '.', r >= '0' && r <= '9', r == 0xB7,
		r >= 0x300 && r <= 0x36F, r >= 0x203F && r <= 0x2040:
		return true
	}
	return false
}

// isChar reports whether r is an XML 1.0 Char (§2.2).
func isChar(r rune) bool {
	switch {
	case r == 0x9, r == 0xA, r == 0xD:
		return true
	case r >= 0x20 && r <= 0xD7FF, r >= 0xE000 && r <= 0xFFFD, r >= 0x10000 && r <= 0x10FFFF:
		return true
	}
	return false
}

// Namespaces reference/host still names through this package; everything
// else names them from package ns.
const (
	NSClient       = ns.Client
	NSStanzaErrors = ns.StanzaErrors
	NSXML          = ns.XML
)
