// Package wire is the load generator's lean codec for the hot path of an
// established XMPP session (RFC 6120 §4.1, §8): it splits the server's byte
// stream into top-level elements without building a DOM, and writes the
// message and presence stanzas the scenarios send with the scheduled send
// time carried in the stanza, appending into reusable buffers.
//
// Why not encoding/xml: decoding every received stanza with encoding/xml
// (as mellium.im/xmpp does) allocates per token and costs several times the
// CPU of the TLS record that carries it; the load generator only needs to
// find element boundaries, the element name and type, and its own marker
// (BenchmarkSplit vs BenchmarkEncodingXML in this package measure the
// difference).
package wire
