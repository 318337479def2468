package ns

// XML itself (W3C Namespaces in XML 1.0).
const (
	XML   = "http://www.w3.org/XML/1998/namespace" // the xml: prefix, §3
	XMLNS = "http://www.w3.org/2000/xmlns/"        // the xmlns: prefix, §3
)

// Streams and their negotiation (RFC 6120).
const (
	Stream       = "http://etherx.jabber.org/streams"    // RFC 6120 §4.8.1
	Client       = "jabber:client"                       // RFC 6120 §4.8.3
	Server       = "jabber:server"                       // RFC 6120 §4.8.3
	StreamErrors = "urn:ietf:params:xml:ns:xmpp-streams" // RFC 6120 §4.9.3
	StanzaErrors = "urn:ietf:params:xml:ns:xmpp-stanzas" // RFC 6120 §8.3.3
	TLS          = "urn:ietf:params:xml:ns:xmpp-tls"     // RFC 6120 §5.4
	SASL         = "urn:ietf:params:xml:ns:xmpp-sasl"    // RFC 6120 §6.4
	Bind         = "urn:ietf:params:xml:ns:xmpp-bind"    // RFC 6120 §7.4
	Session      = "urn:ietf:params:xml:ns:xmpp-session" // RFC 3921 §3 (legacy; RFC 6121 dropped it)
	SASLCB       = "urn:xmpp:sasl-cb:0"                  // XEP-0440 §4
)

// Server-to-server dialback (XEP-0220).
const (
	Dialback        = "jabber:server:dialback"     // XEP-0220 §2.1
	DialbackFeature = "urn:xmpp:features:dialback" // XEP-0220 §2.4
)

// Instant messaging (RFC 6121).
const (
	Roster = "jabber:iq:roster" // RFC 6121 §2
)

// Extensions (XEPs).
const (
	DataForms       = "jabber:x:data"                          // XEP-0004
	Last            = "jabber:iq:last"                         // XEP-0012
	DiscoInfo       = "http://jabber.org/protocol/disco#info"  // XEP-0030
	DiscoItems      = "http://jabber.org/protocol/disco#items" // XEP-0030
	MUC             = "http://jabber.org/protocol/muc"         // XEP-0045 §19.1
	MUCOwner        = "http://jabber.org/protocol/muc#owner"   // XEP-0045 §19.1
	VCard           = "vcard-temp"                             // XEP-0054
	Register        = "jabber:iq:register"                     // XEP-0077
	RegisterFeature = "http://jabber.org/features/iq-register" // XEP-0077 §3.1
	ChatStates      = "http://jabber.org/protocol/chatstates"  // XEP-0085
	Receipts        = "urn:xmpp:receipts"                      // XEP-0184
	Ping            = "urn:xmpp:ping"                          // XEP-0199
	Delay           = "urn:xmpp:delay"                         // XEP-0203
	Forward         = "urn:xmpp:forward:0"                     // XEP-0297
	MAM             = "urn:xmpp:mam:2"                         // XEP-0313
	ChatMarkers     = "urn:xmpp:chat-markers:0"                // XEP-0333
	StanzaID        = "urn:xmpp:sid:0"                         // XEP-0359
	Upload          = "urn:xmpp:http:upload:0"                 // XEP-0363
)
