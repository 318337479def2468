package reference

import (
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xdg-go/scram"

	"github.com/xmppcheck/xmppcheck/internal/ns"
	"github.com/xmppcheck/xmppcheck/reference/wire"
)

// tclient is a minimal XMPP client for the server's tests: raw XML out,
// parsed elements in, every read and write with a deadline.
type tclient struct {
	t    testing.TB
	conn net.Conn
	r    *wire.Reader
	jid  string
	seq  atomic.Int64
	// features of the last stream header.
	features *wire.Element
	domain   string
}

const ioTimeout = 20 * time.Second

func rawDial(t testing.TB, addr, domain string) *tclient {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	c := &tclient{t: t, conn: conn, domain: domain}
	c.r = wire.NewReader(deadlined{c})
	t.Cleanup(func() { c.conn.Close() })
	return c
}

type deadlined struct{ c *tclient }

func (d deadlined) Read(p []byte) (int, error) {
	d.c.conn.SetReadDeadline(time.Now().Add(ioTimeout))
	return d.c.conn.Read(p)
}

func (c *tclient) send(format string, args ...any) {
	c.t.Helper()
	c.conn.SetWriteDeadline(time.Now().Add(ioTimeout))
	if _, err := fmt.Fprintf(c.conn, format, args...); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// open sends a stream header and reads the server's header and features.
func (c *tclient) open() *wire.Element {
	c.t.Helper()
	c.send("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='%s' version='1.0'>", c.domain)
	if _, err := c.r.ReadHeader(); err != nil {
		c.t.Fatalf("server header: %v", err)
	}
	f := c.next()
	if f.Name.Local != "features" {
		c.t.Fatalf("expected features, got %s", f)
	}
	c.features = f
	return f
}

func (c *tclient) next() *wire.Element {
	c.t.Helper()
	el, err := c.r.Next()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return el
}

// nextErr returns the next element or the read error.
func (c *tclient) nextErr() (*wire.Element, error) { return c.r.Next() }

// expect reads until pred matches, failing after 50 other elements.
func (c *tclient) expect(what string, pred func(*wire.Element) bool) *wire.Element {
	c.t.Helper()
	for i := 0; i < 50; i++ {
		el := c.next()
		if pred(el) {
			return el
		}
	}
	c.t.Fatalf("never got %s", what)
	return nil
}

func (c *tclient) startTLS(minV, maxV uint16) error {
	c.t.Helper()
	c.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
	if el := c.next(); el.Name.Local != "proceed" {
		c.t.Fatalf("expected proceed, got %s", el)
	}
	tc := tls.Client(c.conn, &tls.Config{InsecureSkipVerify: true, MinVersion: minV, MaxVersion: maxV, ServerName: c.domain})
	tc.SetDeadline(time.Now().Add(ioTimeout))
	if err := tc.Handshake(); err != nil {
		return err
	}
	c.conn = tc
	c.r.Reset(deadlined{c})
	c.open()
	return nil
}

// auth runs SCRAM; it returns the SASL failure condition ("" on success).
func (c *tclient) auth(mech, user, pass string) (cond, text string) {
	c.t.Helper()
	hash := scram.SHA1
	if strings.HasPrefix(mech, "SCRAM-SHA-256") {
		hash = scram.SHA256
	}
	cl, err := hash.NewClient(user, pass, "")
	if err != nil {
		c.t.Fatal(err)
	}
	conv := cl.NewConversation()
	first, _ := conv.Step("")
	c.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='%s'>%s</auth>", mech, base64.StdEncoding.EncodeToString([]byte(first)))
	for {
		el := c.next()
		switch el.Name.Local {
		case "challenge":
			in, _ := base64.StdEncoding.DecodeString(el.Text())
			out, err := conv.Step(string(in))
			if err != nil {
				c.t.Fatalf("client SCRAM step: %v", err)
			}
			c.send("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>%s</response>", base64.StdEncoding.EncodeToString([]byte(out)))
		case "success":
			in, _ := base64.StdEncoding.DecodeString(el.Text())
			if _, err := conv.Step(string(in)); err != nil {
				c.t.Fatalf("server signature refused: %v", err)
			}
			c.r.Reset(deadlined{c})
			c.open()
			return "", ""
		case "failure":
			e := el.FirstElement()
			return e.Name.Local, el.ChildText(ns.SASL, "text")
		default:
			c.t.Fatalf("unexpected %s during SASL", el)
		}
	}
}

func (c *tclient) bind(resource string) string {
	c.t.Helper()
	res := ""
	if resource != "" {
		res = "<resource>" + resource + "</resource>"
	}
	c.send("<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>%s</bind></iq>", res)
	el := c.next()
	j := el.Child(ns.Bind, "bind").ChildText(ns.Bind, "jid")
	if el.Get("type") != "result" || j == "" {
		c.t.Fatalf("bind failed: %s", el)
	}
	c.jid = j
	return j
}

// login connects over STARTTLS, authenticates with SCRAM-SHA-1 and binds.
func login(t testing.TB, srv *Server, user, pass, resource string) *tclient {
	t.Helper()
	c := rawDial(t, srv.Addrs().C2S, srv.Domain())
	c.open()
	if err := c.startTLS(tls.VersionTLS12, 0); err != nil {
		t.Fatalf("STARTTLS: %v", err)
	}
	if cond, text := c.auth("SCRAM-SHA-1", user, pass); cond != "" {
		t.Fatalf("login %s: %s %s", user, cond, text)
	}
	c.bind(resource)
	return c
}

// iq sends an IQ with a fresh id and returns the answer with that id.
func (c *tclient) iq(typ, to, payload string) *wire.Element {
	c.t.Helper()
	id := fmt.Sprintf("q%d", c.seq.Add(1))
	toAttr := ""
	if to != "" {
		toAttr = " to='" + to + "'"
	}
	c.send("<iq type='%s' id='%s'%s>%s</iq>", typ, id, toAttr, payload)
	return c.expect("answer to "+id, func(el *wire.Element) bool {
		return el.Name.Local == "iq" && el.Get("id") == id && (el.Get("type") == "result" || el.Get("type") == "error")
	})
}

// sync makes sure the server processed everything sent before: a ping's
// answer comes after them.
func (c *tclient) sync() {
	c.t.Helper()
	if el := c.iq("get", c.domain, "<ping xmlns='urn:xmpp:ping'/>"); el.Get("type") != "result" {
		c.t.Fatalf("ping: %s", el)
	}
}

func errorCondition(el *wire.Element) string {
	e := el.Child(ns.Client, "error")
	if e == nil {
		return ""
	}
	for _, c := range e.Elements() {
		if c.Name.Space == ns.StanzaErrors && c.Name.Local != "text" {
			return c.Name.Local
		}
	}
	return ""
}

func isMessage(el *wire.Element) bool  { return el.Name.Local == "message" }
func isPresence(el *wire.Element) bool { return el.Name.Local == "presence" }
