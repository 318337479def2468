// Package evidence implements the honest evidence scans of xmppcheck's
// conformance suite (docs/CLAIMS.md, "Evidence channels"): searches of a
// server's logs and data directory for client addresses, passwords and
// user-stored plaintext, each run with a positive control, and parsers of
// the SCRAM credential records (RFC 5802 §3) that Prosody, ejabberd and the
// reference server keep at rest.
//
// A scan that finds nothing proves nothing unless it can find something:
// [Corpus.Scan] takes a control needle (a marker certainly stored) and
// returns [ErrControlMissing] when the same scan does not find it, so a
// negative result is only ever reported from a corpus the scan can read.
package evidence
