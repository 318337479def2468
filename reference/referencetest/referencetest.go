package referencetest

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/xmppcheck/xmppcheck/internal/syncbuf"
	"github.com/xmppcheck/xmppcheck/internal/xmppclient"
	"github.com/xmppcheck/xmppcheck/reference"
	"github.com/xmppcheck/xmppcheck/spec/policies"
)

// Server is a reference server started for one test.
type Server struct {
	*reference.Server
	// Logs holds what the server logged (slog text format, level info).
	Logs *syncbuf.Buffer
}

// Start starts the reference server for the default policy with STARTTLS
// and direct TLS c2s listeners on 127.0.0.1 ports the system picks, the
// data directory and key file in t.TempDir(), the test clock, and s2s to
// statically configured hosts only (nothing is looked up in DNS). opts are
// applied after these and override them. The server is closed when the
// test ends.
func Start(t testing.TB, opts ...reference.Option) *Server {
	t.Helper()
	pol, err := policies.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	logs := &syncbuf.Buffer{}
	base := []reference.Option{
		reference.WithDataDir(filepath.Join(root, "data")), reference.WithKeyFile(filepath.Join(root, "at-rest.key")),
		reference.WithC2SAddr("127.0.0.1:0"), reference.WithC2STLSAddr("127.0.0.1:0"),
		reference.WithS2SStaticHostsOnly(), reference.WithLogWriter(logs), reference.WithTestClock(),
	}
	srv, err := reference.New(pol, append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return &Server{Server: srv, Logs: logs}
}

// Password is the password AddUser and Connect give user.
func Password(user string) string { return user + "-pw" }

// AddUser creates user with Password(user); an existing account is kept.
func (s *Server) AddUser(t testing.TB, user string) {
	t.Helper()
	if err := s.CreateUser(context.Background(), user, Password(user)); err != nil && !errors.Is(err, reference.ErrUserExists) {
		t.Fatal(err)
	}
}

// Connect creates user (AddUser) and logs in with the XMPP client over
// STARTTLS on the c2s listener, trusting the server's self-signed
// certificate, with a 30 s timeout per read and write; opts are applied
// after these. The client is closed when the test ends.
func (s *Server) Connect(t testing.TB, user string, opts ...xmppclient.Option) *xmppclient.Client {
	t.Helper()
	s.AddUser(t, user)
	base := []xmppclient.Option{xmppclient.WithDomain(s.Domain()), xmppclient.WithInsecureSkipVerify(), xmppclient.WithTimeout(30 * time.Second)}
	cl, err := xmppclient.Connect(context.Background(), s.Addrs().C2S, user, Password(user), append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close(context.Background()) })
	return cl
}
