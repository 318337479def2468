package target

import (
	"context"
	"errors"
	"net/netip"
	"time"

	"github.com/xmppcheck/xmppcheck/conformance/evidence"
	"github.com/xmppcheck/xmppcheck/conformance/report"
	"github.com/xmppcheck/xmppcheck/spec"
)

// ErrUnsupported is wrapped by operations a target cannot perform; the
// claim that needs them is not testable there.
var ErrUnsupported = errors.New("target: not supported")

// ErrNoAccount is returned when a target has no more accounts to hand out
// (a remote target with too few --account flags).
var ErrNoAccount = errors.New("target: no account available")

// Addrs are the server's listening addresses (host:port); empty when the
// server has no such listener.
type Addrs struct {
	C2S    string // STARTTLS client port (RFC 6120)
	C2STLS string // direct TLS client port (XEP-0368)
	S2S    string // server-to-server port
	HTTP   string // HTTP (XEP-0363 upload) base URL host:port
}

// Account is a test account.
type Account struct {
	User     string
	Password string
	// Created is false for accounts given by the user (remote targets),
	// which are never deleted.
	Created bool
}

// Target is a server under test.
type Target interface {
	// Info describes the target for reports.
	Info() report.Target
	// Start brings the server up (a container, the embedded server) and
	// returns once it accepts connections.
	Start(ctx context.Context) error
	// Close stops what Start started. It is always safe to call.
	Close(ctx context.Context) error

	Domain() string
	Addrs() Addrs
	// Has reports whether the target offers a capability, and why not.
	Has(c spec.Capability) (bool, string)

	// LocalAddrs reports whether clients may bind distinct 127.x.y.z source
	// addresses (the server is reached over loopback).
	LocalAddrs() bool
	// SeenAddrs returns the addresses the server sees for a client
	// connecting from local (the client's own address on loopback; a
	// container network's gateway behind published ports).
	SeenAddrs(ctx context.Context, local netip.Addr) []netip.Addr

	// NewAccount creates (or hands out) a test account whose name starts
	// with hint.
	NewAccount(ctx context.Context, hint string) (Account, error)
	// CreateAccount creates the account exactly as given (the same name
	// again, for address-reuse tests); ErrUnsupported where the target
	// cannot.
	CreateAccount(ctx context.Context, a Account) error
	// DeleteAccount deletes an account created by NewAccount (out of band:
	// the admin path, not XEP-0077).
	DeleteAccount(ctx context.Context, a Account) error
	// IBR reports whether accounts may be registered in-band (XEP-0077).
	IBR() bool

	// Logs returns the server's logs (container output, log files).
	Logs(ctx context.Context) (*evidence.Corpus, error)
	// Data returns the server's data directory as stored.
	Data(ctx context.Context) (*evidence.Corpus, error)
	// StoreFormat names how credential records are stored.
	StoreFormat() evidence.StoreFormat

	// Advance moves the server's clock forward by d and runs the
	// deployment's purge job, if any.
	Advance(ctx context.Context, d time.Duration) error
	// Now is the server's current (possibly advanced) time.
	Now() time.Time
}

// Capabilities returns the names of the capabilities t offers and, for the
// others, why not.
func Capabilities(t Target) ([]string, map[string]string) {
	var have []string
	lacks := map[string]string{}
	for _, c := range spec.Capabilities() {
		if ok, why := t.Has(c); ok {
			have = append(have, string(c))
		} else {
			lacks[string(c)] = why
		}
	}
	return have, lacks
}

// PlainDataer is implemented by targets whose store is encrypted at rest
// and which can also give the harness a decrypted view of it (with a key
// the harness holds, as the embedded target does). Evidence scans use the
// plain view for their positive controls and searches; the raw data is
// still what storage.encrypted-at-rest scans.
type PlainDataer interface {
	PlainData(ctx context.Context) (*evidence.Corpus, error)
}

// Credentialer is implemented by targets that can export credential
// records in the neutral line format (evidence.FormatRecords): a command
// named by the target file's evidence.credentials, for stores the built-in
// formats do not read (SQL databases).
type Credentialer interface {
	Credentials(ctx context.Context) (*evidence.Corpus, error)
}

// Resetter is implemented by targets that can give each spec a fresh
// server (the embedded target): the suite calls Reset before every spec
// but the first.
type Resetter interface {
	Reset(ctx context.Context) error
}
