package s2s

import (
	"strings"
	"testing"

	"mellium.im/xmpp/stanza"

	"github.com/xmppcheck/xmppcheck/reference/redact"
)

func TestParseStanza(t *testing.T) {
	for _, tc := range []struct {
		in, raw, from, to, typ string
		ok                     bool
	}{
		{`<message xmlns='jabber:client' from='a@x.test/r' to='b@y.test' type='chat'><body>x</body></message>`,
			`<message from='a@x.test/r' to='b@y.test' type='chat'><body>x</body></message>`, "a@x.test/r", "b@y.test", "chat", true},
		{`<presence xmlns="jabber:server" from="x.test" to="y.test"/>`, `<presence from='x.test' to='y.test'/>`, "x.test", "y.test", "", true},
		{`<iq from='a@x.test' to='y.test' type='get' id='1' xml:lang='en'><ping xmlns='urn:xmpp:ping'/></iq>`,
			`<iq from='a@x.test' to='y.test' type='get' id='1' xml:lang='en'><ping xmlns='urn:xmpp:ping'/></iq>`, "a@x.test", "y.test", "get", true},
		{`<message to='b@y.test'><body>&lt;&amp;&apos;</body></message>`, `<message to='b@y.test'><body>&lt;&amp;&apos;</body></message>`, "", "b@y.test", "", true},
		{`<message to="b@y.test" id="it's"/>`, `<message to='b@y.test' id='it&apos;s'/>`, "", "b@y.test", "", true},
		{`<message xmlns='urn:other' to='b@y.test'/>`, "", "", "", "", false},
		{`<foo to='b@y.test'/>`, "", "", "", "", false},
		{`<message to='@@'/>`, "", "", "", "", false},
	} {
		s, err := ParseStanza([]byte(tc.in))
		if (err == nil) != tc.ok {
			t.Errorf("%s: err %v", tc.in, err)
			continue
		}
		if !tc.ok {
			continue
		}
		if string(s.Raw) != tc.raw || s.From.String() != tc.from || s.To.String() != tc.to || s.Type != tc.typ {
			t.Errorf("%s:\n got %s from=%s to=%s type=%s\nwant %s", tc.in, s.Raw, s.From, s.To, s.Type, tc.raw)
		}
	}
}

func TestBounce(t *testing.T) {
	s, _ := ParseStanza([]byte(`<iq from='a@x.test/r' to='y.test' type='get' id='q&amp;1'><query xmlns='jabber:iq:version'/></iq>`))
	b := Bounce(s, stanza.RemoteServerNotFound, "no <route>")
	if c := ErrorCondition(b); c != stanza.RemoteServerNotFound {
		t.Fatalf("condition %q in %s", c, b.Raw)
	}
	back, err := ParseStanza(b.Raw)
	if err != nil || back.ID != "q&1" || back.To.String() != "a@x.test/r" || back.From.String() != "y.test" || back.Type != "error" {
		t.Fatalf("bounce %s parsed as %+v, %v", b.Raw, back, err)
	}
	if !strings.Contains(string(b.Raw), "no &lt;route&gt;") {
		t.Errorf("text not escaped: %s", b.Raw)
	}
	for _, tc := range []struct {
		raw  string
		want bool
	}{
		{`<message type='error' to='a@x'/>`, false},
		{`<iq type='result' to='a@x'/>`, false},
		{`<iq type='set' to='a@x'/>`, true},
		{`<presence type='subscribe' to='a@x'/>`, true},
	} {
		if got := mustStanza(t, tc.raw).bounceable(); got != tc.want {
			t.Errorf("%s bounceable = %v", tc.raw, got)
		}
	}
}

func TestStreamReaderRestricted(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want error
	}{
		{streamHeader("x", "y", "") + "<!-- comment --><message/>", errRestricted},
		{streamHeader("x", "y", "") + "<?foo bar?><message/>", errRestricted},
		{streamHeader("x", "y", "") + "<message><body>" + strings.Repeat("a", 2000) + "</body></message>", errTooBig},
	} {
		sr := newStreamReader(strings.NewReader(tc.in), 1024)
		if _, err := sr.header(); err != nil {
			t.Fatal(err)
		}
		if _, err := sr.next(); err != tc.want {
			t.Errorf("%.60s…: got %v, want %v", tc.in, err, tc.want)
		}
	}
	// DOCTYPE before the header is refused too.
	sr := newStreamReader(strings.NewReader(`<!DOCTYPE x [<!ENTITY a "b">]>`+streamHeader("x", "y", "")), 1024)
	if _, err := sr.header(); err != errRestricted {
		t.Errorf("DOCTYPE: %v", err)
	}
	// Positive control: the same reader passes an ordinary stanza, whitespace
	// keepalives skipped, bytes kept verbatim.
	in := streamHeader("x", "y", "") + " \n <message to='a@b'><body>hi</body></message>\n</stream:stream>"
	sr = newStreamReader(strings.NewReader(in), 1024)
	sr.header()
	el, err := sr.next()
	if err != nil || string(el.Raw) != "<message to='a@b'><body>hi</body></message>" {
		t.Fatalf("got %q, %v", el.Raw, err)
	}
	if _, err := sr.next(); err != errStreamEnd {
		t.Fatalf("stream end: %v", err)
	}
}

func TestRedact(t *testing.T) {
	for _, in := range []string{
		"read tcp 127.0.0.1:60044->127.0.0.1:34597: i/o timeout",
		"dial tcp [::1]:5269: connect: connection refused",
		"dial tcp 10.1.2.3:5269: timeout",
	} {
		got := redact.Err(errorString(in))
		if strings.ContainsAny(got, "0123456789") && strings.Contains(got, ".") && strings.Contains(got, "127.0") {
			t.Errorf("redact.Err(%q) = %q", in, got)
		}
		if !strings.Contains(got, "[address]") {
			t.Errorf("redact.Err(%q) = %q: nothing redacted", in, got)
		}
		for _, a := range []string{"127.0.0.1", "::1", "10.1.2.3"} {
			if strings.Contains(got, a) {
				t.Errorf("redact.Err(%q) = %q keeps %s", in, got, a)
			}
		}
	}
	// Positive control: domains and words stay.
	if got := redact.Err(errorString("no route to b.test")); got != "no route to b.test" {
		t.Errorf("redact changed %q", got)
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }
