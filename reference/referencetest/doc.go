// Package referencetest starts the reference server (package reference,
// RFC 6120/6121 over c2s) inside a test: on loopback ports the system
// picks, with its data directory and at-rest key file in t.TempDir(), on
// the test clock, its log captured, and closed by t.Cleanup. It is for the
// tests of other packages (the upload and s2s interop tests, the XMPP
// client's); the tests of package reference itself cannot import it (that
// would be an import cycle) and keep their own startServer, which reaches
// the server's unexported state.
package referencetest
