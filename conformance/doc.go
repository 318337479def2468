// Package conformance is xmppcheck's conformance suite: Ginkgo v2 specs,
// one container per claim kind of the spec catalogue (labelled with the
// claim id, its family and its RFC/XEP references), that test whether an
// XMPP server keeps the claims of a policy file — RFC 6120/6121 streams,
// TLS (RFC 7590, XEP-0368), SCRAM (RFC 5802), XEP-0077 registration,
// XEP-0160 offline storage, XEP-0313 archives, XEP-0363 upload, XEP-0012
// last activity — and the evidence each verdict rests on.
//
// The same specs run from `go test ./conformance/...` and in-process from
// `xmppcheck conform` through [Run]. Each claim ends in one of four
// verdicts (pass, fail, not-testable with its reason, error when the
// harness could not finish); a claim whose needs the target lacks is
// not-testable, never a pass.
package conformance
