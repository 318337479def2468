package wire

// Namespaces used on c2s and s2s streams.
const (
	NSStream       = "http://etherx.jabber.org/streams"       // RFC 6120 §4.8.1
	NSClient       = "jabber:client"                          // RFC 6120 §4.8.3
	NSServer       = "jabber:server"                          // RFC 6120 §4.8.3
	NSXML          = "http://www.w3.org/XML/1998/namespace"   // xml: prefix
	NSXMLNS        = "http://www.w3.org/2000/xmlns/"          // xmlns: prefix
	NSStreamErrors = "urn:ietf:params:xml:ns:xmpp-streams"    // RFC 6120 §4.9.3
	NSStanzaErrors = "urn:ietf:params:xml:ns:xmpp-stanzas"    // RFC 6120 §8.3.3
	NSTLS          = "urn:ietf:params:xml:ns:xmpp-tls"        // RFC 6120 §5
	NSSASL         = "urn:ietf:params:xml:ns:xmpp-sasl"       // RFC 6120 §6
	NSBind         = "urn:ietf:params:xml:ns:xmpp-bind"       // RFC 6120 §7
	NSSession      = "urn:ietf:params:xml:ns:xmpp-session"    // RFC 3921 §3 (legacy)
	NSRoster       = "jabber:iq:roster"                       // RFC 6121 §2
	NSDelay        = "urn:xmpp:delay"                         // XEP-0203
	NSDataForms    = "jabber:x:data"                          // XEP-0004
	NSRegister     = "jabber:iq:register"                     // XEP-0077
	NSRegisterFeat = "http://jabber.org/features/iq-register" // XEP-0077 §3.1
	NSDiscoInfo    = "http://jabber.org/protocol/disco#info"  // XEP-0030
	NSDiscoItems   = "http://jabber.org/protocol/disco#items" // XEP-0030
	NSVCard        = "vcard-temp"                             // XEP-0054
	NSPing         = "urn:xmpp:ping"                          // XEP-0199
	NSChatStates   = "http://jabber.org/protocol/chatstates"  // XEP-0085
	NSSASLCB       = "urn:xmpp:sasl-cb:0"                     // XEP-0440
)

// internSet are names and namespaces common on XMPP streams; reading them
// allocates nothing.
var internSet = []string{
	NSStream, NSClient, NSServer, NSXML, NSStreamErrors, NSStanzaErrors,
	NSTLS, NSSASL, NSBind, NSSession, NSRoster, NSDelay, NSDataForms,
	NSRegister, NSDiscoInfo, NSDiscoItems, NSVCard, NSPing, NSChatStates,
	"urn:xmpp:receipts", "urn:xmpp:chat-markers:0", "urn:xmpp:sid:0",
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
