// Package wire is the reference server's lean reader and writer of XMPP XML
// streams (RFC 6120 §4 and §11): it reads a stream header and then one
// top-level element (stanza or nonza) at a time into a small tree, enforcing
// XMPP's restricted XML (RFC 6120 §11.1: no comments, processing
// instructions, DTDs or entities other than the predefined ones), UTF-8
// (§11.6), XML 1.0 well-formedness and Namespaces in XML, a maximum element
// size and a maximum depth.
//
// Why not encoding/xml (which mellium.im/xmpp builds on): the c2s hot path
// reads, re-addresses and forwards every message; encoding/xml's token API
// allocates per token and per namespace lookup and made the reader the
// dominant cost of routing (measured in BENCHMARKS.md). This package parses
// a stanza in one pass into the tree the router needs and writes it back in
// a canonical form (default namespaces only). mellium.im/xmpp is still used
// for JIDs (PRECIS), error condition names, and by the tests as an
// independent client.
//
// Elements returned by Reader.Next are freshly allocated and may be kept.
package wire
