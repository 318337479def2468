// Package ns holds the XML namespaces of XMPP: those of RFC 6120 (XMPP
// Core), RFC 6121 (XMPP IM) and of the XEPs xmppcheck speaks, one constant
// each, named for what it holds.
//
// Every package that writes or matches a namespace (the reference server,
// the client, the conformance probes, the fake servers) names it from here,
// so a namespace is spelled once in the tree. Struct tags cannot name a
// constant; they keep the literal.
package ns
