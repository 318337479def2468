package c2s

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/xmppcheck/xmppcheck/reference/clock"
	"github.com/xmppcheck/xmppcheck/reference/im"
	"github.com/xmppcheck/xmppcheck/reference/metrics"
	"github.com/xmppcheck/xmppcheck/reference/store"
	"github.com/xmppcheck/xmppcheck/reference/wire"
)

const clientHeader = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>"

// memConn is a net.Conn that reads a fixed input, then EOF, and records
// what is written.
type memConn struct {
	in     *bytes.Reader
	mu     sync.Mutex
	out    bytes.Buffer
	closed bool
}

func (c *memConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	return c.in.Read(p)
}

func (c *memConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	return c.out.Write(p)
}

func (c *memConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	return nil
}

func (c *memConn) output() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.out.Bytes())
}

func (*memConn) LocalAddr() net.Addr              { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5222} }
func (*memConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 40000} }
func (*memConn) SetDeadline(time.Time) error      { return nil }
func (*memConn) SetReadDeadline(time.Time) error  { return nil }
func (*memConn) SetWriteDeadline(time.Time) error { return nil }

var fuzzEnv struct {
	once sync.Once
	dir  string
	l    *Listener
	err  error
}

// TestMain removes the fuzz environment's store after the package's tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if fuzzEnv.dir != "" {
		os.RemoveAll(fuzzEnv.dir)
	}
	os.Exit(code)
}

func fuzzListener(t testing.TB) *Listener {
	fuzzEnv.once.Do(func() {
		dir, err := os.MkdirTemp("", "c2s-fuzz-")
		if err != nil {
			fuzzEnv.err = err
			return
		}
		fuzzEnv.dir = dir
		st, err := store.Open(filepath.Join(dir, "data"), bytes.Repeat([]byte{1}, store.KeySize))
		if err != nil {
			fuzzEnv.err = err
			return
		}
		m := metrics.New()
		r, err := im.New(im.Config{Domain: "localhost", Store: st, Clock: clock.NewTest(time.Unix(0, 0)), Metrics: m,
			Iterations: 4096, Hashes: []string{"SHA-1"}, MaxOffline: 3, MaxRosterItems: 5,
			Registration: im.Registration{RateMax: 1, RateWindow: time.Hour}})
		if err != nil {
			fuzzEnv.err = err
			return
		}
		for _, u := range []string{"fuzz", "bob"} {
			if err := r.CreateAccount(u, "pw", ""); err != nil {
				fuzzEnv.err = err
				return
			}
		}
		fuzzEnv.l = New(Config{Domain: "localhost", Router: r, Metrics: m, FakeKey: []byte("k"),
			Limits: Limits{MaxStanzaSize: 8192, MaxDepth: 16, AuthTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second}})
	})
	if fuzzEnv.err != nil {
		t.Fatal(fuzzEnv.err)
	}
	return fuzzEnv.l
}

// runSession feeds a client header and input to one session and returns
// what the server wrote. bound starts the session authenticated and bound
// (the stanza path); otherwise it negotiates from the header (without TLS,
// so only the pre-TLS state is reachable).
func runSession(t testing.TB, input []byte, bound bool) []byte {
	l := fuzzListener(t)
	conn := &memConn{in: bytes.NewReader(append([]byte(clientHeader), input...))}
	s := newSession(l, conn, "192.0.2.1")
	done := make(chan struct{})
	go func() {
		defer close(done)
		if !bound {
			s.run(context.Background(), false)
			return
		}
		s.secure, s.authed, s.user = true, true, "fuzz"
		if _, err := s.r.ReadHeader(); err != nil {
			return
		}
		res, err := l.cfg.Router.Bind(s, "fuzz", "", s.ip, func(jid.JID) {})
		if err != nil {
			t.Errorf("bind: %v", err)
			return
		}
		s.res = res
		s.serve(context.Background())
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("session did not end on input %q", input)
	}
	return conn.output()
}

// checkOutput asserts the server's output is a well-formed stream: a header
// (unless nothing was written) and elements up to an end or the close.
func checkOutput(t testing.TB, out []byte, wantHeader bool) {
	t.Helper()
	if len(out) == 0 {
		return
	}
	r := wire.NewReader(bytes.NewReader(out), wire.WithMaxSize(1<<20))
	if wantHeader {
		if _, err := r.ReadHeader(); err != nil {
			t.Fatalf("server header malformed: %v\n%q", err, out)
		}
	} else {
		out = append([]byte(clientHeader), out...)
		r = wire.NewReader(bytes.NewReader(out), wire.WithMaxSize(1<<20))
		r.ReadHeader()
	}
	for {
		_, err := r.Next()
		if err == nil {
			continue
		}
		var se *wire.SyntaxError
		if errors.As(err, &se) {
			t.Fatalf("server wrote malformed XML: %v\n%q", err, out)
		}
		return
	}
}

var seeds = []string{
	"<presence/>",
	"<presence><priority>3</priority><show>away</show></presence>",
	"<message to='bob@localhost' type='chat'><body>hi</body></message>",
	"<message to='fuzz@localhost/x'><body>self</body></message>",
	"<message to='nobody@localhost'><body>x</body></message>",
	"<message to='a@example.net'><body>remote</body></message>",
	"<iq type='get' id='1'><query xmlns='jabber:iq:roster'/></iq>",
	"<iq type='set' id='2'><query xmlns='jabber:iq:roster'><item jid='bob@localhost' name='B'><group>g</group></item></query></iq>",
	"<presence to='bob@localhost' type='subscribe'/>",
	"<presence to='bob@localhost' type='unsubscribed'/>",
	"<iq type='get' id='3' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
	"<iq type='set' id='4'><vCard xmlns='vcard-temp'><FN>F</FN></vCard></iq>",
	"<iq type='get' id='5' to='bob@localhost'><vCard xmlns='vcard-temp'/></iq>",
	"<iq type='set' id='6' to='localhost'><query xmlns='jabber:iq:register'><password>x</password></query></iq>",
	"<iq type='get' id='7' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>",
	"<iq type='result' id='8' to='bob@localhost/r'/>",
	"<iq type='get'><query xmlns='urn:xmpp:mam:2'/></iq>",
	"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
	"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>biwsbj1mdXp6LHI9YWJj</auth>",
	"<foo xmlns='urn:x'/>",
	"<message><body>&amp;&#x263A;<![CDATA[<x>]]></body></message>",
	"</stream:stream>",
	"<message><!-- c --></message>",
	"<message><body>unterminated",
}

// FuzzBoundSession fuzzes the stream input path of an authenticated,
// bound session: every stanza goes through the router (roster, presence,
// messages, offline storage, IQ handlers). The server must end the session
// without panicking or hanging and must write only well-formed XML.
func FuzzBoundSession(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkOutput(t, runSession(t, data, true), false)
	})
}

// FuzzNegotiation fuzzes the stream input path before TLS: headers,
// STARTTLS, refused SASL and stanzas.
func FuzzNegotiation(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkOutput(t, runSession(t, data, false), true)
	})
}

func TestSessionSeeds(t *testing.T) {
	for _, s := range seeds {
		out := runSession(t, []byte(s), true)
		checkOutput(t, out, false)
		out = runSession(t, []byte(s), false)
		checkOutput(t, out, true)
		if !bytes.Contains(out, []byte("<stream:features>")) {
			t.Fatalf("no features for %q: %q", s, out)
		}
	}
	// The bound path really routes: a roster get is answered.
	out := runSession(t, []byte("<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>"), true)
	if !bytes.Contains(out, []byte("id='r1'")) || !bytes.Contains(out, []byte("jabber:iq:roster")) {
		t.Fatalf("roster get unanswered: %q", out)
	}
}

var _ = io.EOF
