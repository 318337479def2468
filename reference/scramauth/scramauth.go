package scramauth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/xdg-go/scram"

	"github.com/xmppcheck/xmppcheck/reference/store"
	"github.com/xmppcheck/xmppcheck/spec"
)

// MinIterations is the lowest iteration count this package stores
// (RFC 7677 §4 recommends at least 4096).
const MinIterations = 4096

// Hashes this package supports, by spec hash name.
var hashes = map[string]scram.HashGeneratorFcn{
	spec.HashSHA1:   scram.SHA1,
	spec.HashSHA256: scram.SHA256,
}

// Hashes returns the supported hash names, strongest first.
func Hashes() []string { return []string{spec.HashSHA256, spec.HashSHA1} }

// MechanismName returns the SASL mechanism name for hash ("SCRAM-SHA-1",
// "SCRAM-SHA-256-PLUS").
func MechanismName(hash string, plus bool) string {
	n := "SCRAM-" + hash
	if plus {
		n += "-PLUS"
	}
	return n
}

// ParseMechanism returns the hash and -PLUS flag of a mechanism name.
func ParseMechanism(name string) (hash string, plus bool, ok bool) {
	rest, found := strings.CutPrefix(name, "SCRAM-")
	if !found {
		return "", false, false
	}
	rest, plus = strings.CutSuffix(rest, "-PLUS")
	if _, ok := hashes[rest]; !ok {
		return "", false, false
	}
	return rest, plus, true
}

// Derive computes the stored credentials for password, one set per hash,
// each with its own random 16-byte salt. The password is prepared with
// SASLprep (RFC 4013) as SCRAM requires.
func Derive(password string, iterations int, hashNames ...string) (map[string]store.Credentials, error) {
	if iterations < MinIterations {
		iterations = MinIterations
	}
	if password == "" {
		return nil, errors.New("scramauth: empty password")
	}
	out := make(map[string]store.Credentials, len(hashNames))
	for _, h := range hashNames {
		gen, ok := hashes[h]
		if !ok {
			return nil, fmt.Errorf("scramauth: unsupported hash %q", h)
		}
		cl, err := gen.NewClient("user", password, "")
		if err != nil {
			return nil, fmt.Errorf("scramauth: prepare password: %w", err)
		}
		salt := make([]byte, 16)
		rand.Read(salt)
		sc, err := cl.GetStoredCredentialsWithError(scram.KeyFactors{Salt: string(salt), Iters: iterations})
		if err != nil {
			return nil, fmt.Errorf("scramauth: derive: %w", err)
		}
		out[h] = store.Credentials{Salt: salt, Iterations: iterations, StoredKey: sc.StoredKey, ServerKey: sc.ServerKey}
	}
	return out, nil
}

// Verify reports whether password matches the stored credentials (used by
// tests and by the conformance evidence check of auth.scram-storage).
func Verify(password, hash string, c store.Credentials) bool {
	gen, ok := hashes[hash]
	if !ok {
		return false
	}
	cl, err := gen.NewClient("user", password, "")
	if err != nil {
		return false
	}
	sc, err := cl.GetStoredCredentialsWithError(scram.KeyFactors{Salt: string(c.Salt), Iters: c.Iterations})
	return err == nil && hmac.Equal(sc.StoredKey, c.StoredKey) && hmac.Equal(sc.ServerKey, c.ServerKey)
}

// ChannelBinding returns the tls-exporter channel binding of a TLS 1.3
// connection (RFC 9266), or false when the connection offers none we
// support: TLS 1.2 has tls-exporter only with extended master secret, and
// tls-unique is deprecated, so -PLUS is offered on TLS 1.3 only.
func ChannelBinding(cs tls.ConnectionState) (scram.ChannelBinding, bool) {
	if cs.Version != tls.VersionTLS13 {
		return scram.ChannelBinding{}, false
	}
	cb, err := scram.NewTLSExporterBinding(&cs)
	if err != nil {
		return scram.ChannelBinding{}, false
	}
	return cb, true
}

// Lookup returns the stored credentials of a user for a hash, or false if
// the user (or that hash) does not exist.
type Lookup func(username, hash string) (store.Credentials, bool)

// Conversation is the server side of one SCRAM exchange.
type Conversation struct {
	conv     *scram.ServerConversation
	known    bool
	username string
}

// ErrFailed is returned when authentication fails; Response holds the
// server-error message (RFC 5802 §7 "e=").
var ErrFailed = errors.New("scramauth: authentication failed")

// Start begins a conversation for mechanism mech. cb is the connection's
// channel binding (zero when -PLUS is not offered on it). fakeKey keys the
// fake salts of unknown users, so that repeated attempts for the same
// unknown name see the same salt.
func Start(mech string, lookup Lookup, cb scram.ChannelBinding, fakeKey []byte, iterations int) (*Conversation, error) {
	hash, plus, ok := ParseMechanism(mech)
	if !ok {
		return nil, fmt.Errorf("scramauth: unsupported mechanism %q", mech)
	}
	if plus && !cb.IsSupported() {
		return nil, fmt.Errorf("scramauth: %s is not offered on this connection", mech)
	}
	if iterations < MinIterations {
		iterations = MinIterations
	}
	c := &Conversation{}
	srv, err := hashes[hash].NewServer(func(username string) (scram.StoredCredentials, error) {
		c.username = username
		cr, ok := lookup(username, hash)
		if !ok {
			cr = fake(fakeKey, hash, username, iterations)
		} else {
			c.known = true
		}
		return scram.StoredCredentials{
			KeyFactors: scram.KeyFactors{Salt: string(cr.Salt), Iters: cr.Iterations},
			StoredKey:  cr.StoredKey,
			ServerKey:  cr.ServerKey,
		}, nil
	})
	if err != nil {
		return nil, err
	}
	switch {
	case plus:
		c.conv = srv.NewConversationWithChannelBindingRequired(cb)
	case cb.IsSupported():
		// -PLUS was advertised: a client saying "y" (binding supported but
		// not offered) reveals a downgrade (RFC 5802 §6).
		c.conv = srv.NewConversationWithChannelBinding(cb)
	default:
		c.conv = srv.NewConversation()
	}
	return c, nil
}

// fake returns credentials for an unknown user: a salt stable per name and
// keys nobody can match.
func fake(key []byte, hash, username string, iterations int) store.Credentials {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(hash + "\x00" + username))
	sum := m.Sum(nil)
	junk := make([]byte, 32)
	rand.Read(junk)
	n := 20
	if hash == spec.HashSHA256 {
		n = 32
	}
	return store.Credentials{Salt: sum[:16], Iterations: iterations, StoredKey: junk[:n], ServerKey: slices.Clone(junk[:n])}
}

// Step processes one client message and returns the server's next message.
// done is true after the final message; err is ErrFailed (wrapped) when
// authentication failed, in which case out may hold the server-error.
func (c *Conversation) Step(in []byte) (out []byte, done bool, err error) {
	resp, err := c.conv.Step(string(in))
	if err != nil {
		return []byte(resp), true, fmt.Errorf("%w: %v", ErrFailed, err)
	}
	if c.conv.Done() {
		if !c.conv.Valid() || !c.known {
			return nil, true, ErrFailed
		}
		return []byte(resp), true, nil
	}
	return []byte(resp), false, nil
}

// Username returns the username the client gave (as sent, not normalised).
func (c *Conversation) Username() string { return c.username }

// AuthzID returns the authorisation identity the client asked for, if any.
func (c *Conversation) AuthzID() string { return c.conv.AuthzID() }
