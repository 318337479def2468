package wire

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/xmppcheck/xmppcheck/internal/ns"
)

const hdr = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>`

func TestReadHeader(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		cond     Condition
		ns, to   string
	}{
		{name: "client", in: hdr, ns: ns.Client, to: "localhost"},
		{name: "no declaration", in: `<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' to='x'>`, ns: ns.Server, to: "x"},
		{name: "byte order mark", in: "\xEF\xBB\xBF" + hdr, ns: ns.Client, to: "localhost"},
		{name: "utf-8 declared", in: `<?xml version="1.0" encoding="utf-8"?>` + hdr[len(`<?xml version='1.0'?>`):], ns: ns.Client, to: "localhost"},
		{name: "other prefix", in: `<s:stream xmlns:s='http://etherx.jabber.org/streams' xmlns='jabber:client'>`, ns: ns.Client},
		{name: "utf-16 declared", in: `<?xml version='1.0' encoding='UTF-16'?>` + hdr[len(`<?xml version='1.0'?>`):], cond: UnsupportedEncoding},
		{name: "wrong namespace", in: `<stream:stream xmlns:stream='urn:wrong' xmlns='jabber:client'>`, cond: InvalidNamespace},
		{name: "wrong name", in: `<stream:foo xmlns:stream='http://etherx.jabber.org/streams'>`, cond: InvalidNamespace},
		{name: "empty header", in: `<stream:stream xmlns:stream='http://etherx.jabber.org/streams'/>`, cond: BadFormat},
		{name: "doctype", in: `<!DOCTYPE x>` + hdr, cond: RestrictedXML},
		{name: "processing instruction", in: `<?foo bar?>` + hdr, cond: RestrictedXML},
		{name: "unbound prefix", in: `<stream:stream>`, cond: NotWellFormed},
		{name: "garbage", in: `hello`, cond: NotWellFormed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReader(strings.NewReader(tc.in))
			h, err := r.ReadHeader()
			if tc.cond != "" {
				var se *SyntaxError
				if !errors.As(err, &se) || se.Condition != tc.cond {
					t.Fatalf("got %v, want condition %s", err, tc.cond)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.ContentNS != tc.ns || h.Get("to") != tc.to {
				t.Fatalf("header ns=%q to=%q, want %q %q", h.ContentNS, h.Get("to"), tc.ns, tc.to)
			}
		})
	}
}

func TestNextElements(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     string // canonical serialisation with parent jabber:client
		cond     Condition
	}{
		{name: "message", in: `<message to='a@b' type='chat'><body>hi &amp; &lt;bye&gt; &#x263A;&#65;</body></message>`,
			want: `<message to='a@b' type='chat'><body>hi &amp; &lt;bye&gt; ☺A</body></message>`},
		{name: "empty", in: `<presence/>`, want: `<presence/>`},
		{name: "namespaced child", in: `<iq type='get' id='1'><query xmlns='jabber:iq:roster'/></iq>`,
			want: `<iq type='get' id='1'><query xmlns='jabber:iq:roster'/></iq>`},
		{name: "prefixed child", in: `<message xmlns:r='urn:xmpp:receipts'><r:request/></message>`,
			want: `<message><request xmlns='urn:xmpp:receipts'/></message>`},
		{name: "prefix from header scope", in: `<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>`,
			want: `<features xmlns='http://etherx.jabber.org/streams'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></features>`},
		{name: "xml lang", in: `<message xml:lang='de'><body>Hallo</body></message>`, want: `<message xml:lang='de'><body>Hallo</body></message>`},
		{name: "cdata", in: `<message><body>a<![CDATA[<b>&]]]>c</body></message>`, want: `<message><body>a&lt;b&gt;&amp;]c</body></message>`},
		{name: "crlf", in: "<message><body>a\r\nb\rc</body></message>", want: "<message><body>a\nb\nc</body></message>"},
		{name: "attribute white space", in: "<message id='a\tb\nc'/>", want: "<message id='a b c'/>"},
		{name: "replacement character", in: "<message><body>\uFFFD</body></message>", want: "<message><body>\uFFFD</body></message>"},
		{name: "unicode names", in: `<message><été xmlns='urn:x'>ü</été></message>`, want: `<message><été xmlns='urn:x'>ü</été></message>`},
		{name: "mismatched end", in: `<message></presence>`, cond: NotWellFormed},
		{name: "unclosed attribute", in: `<message to='a></message>`, cond: NotWellFormed},
		{name: "unquoted attribute", in: `<message to=a/>`, cond: NotWellFormed},
		{name: "duplicate attribute", in: `<message to='a' to='b'/>`, cond: NotWellFormed},
		{name: "duplicate expanded attribute", in: `<message xmlns:a='urn:x' xmlns:b='urn:x' a:y='1' b:y='2'/>`, cond: NotWellFormed},
		{name: "undeclared prefix", in: `<foo:message/>`, cond: NotWellFormed},
		{name: "comment", in: `<message><!-- hi --></message>`, cond: RestrictedXML},
		{name: "pi", in: `<message><?php ?></message>`, cond: RestrictedXML},
		{name: "entity", in: `<message><body>&nbsp;</body></message>`, cond: RestrictedXML},
		{name: "bad char ref", in: `<message><body>&#0;</body></message>`, cond: NotWellFormed},
		{name: "control char", in: "<message><body>\x01</body></message>", cond: NotWellFormed},
		{name: "invalid utf-8", in: "<message><body>\xff</body></message>", cond: NotWellFormed},
		{name: "cdata end in text", in: `<message><body>]]></body></message>`, cond: NotWellFormed},
		{name: "text at stream level", in: `hello<message/>`, cond: NotWellFormed},
		{name: "lt in attribute", in: `<message id='<'/>`, cond: NotWellFormed},
		{name: "no space between attributes", in: `<message id='a'to='b'/>`, cond: NotWellFormed},
		{name: "xmlns prefix element", in: `<xmlns:message/>`, cond: NotWellFormed},
		{name: "empty prefix binding", in: `<message xmlns:a=''/>`, cond: NotWellFormed},
		{name: "colon name", in: `<a:b:c/>`, cond: NotWellFormed},
		{name: "too deep", in: strings.Repeat("<a>", 70) + strings.Repeat("</a>", 70), cond: PolicyViolation},
		{name: "too big", in: `<message><body>` + strings.Repeat("x", 300<<10) + `</body></message>`, cond: PolicyViolation},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// One byte at a time exercises every refill boundary.
			r := NewReader(iotest.OneByteReader(strings.NewReader(hdr + tc.in)))
			if _, err := r.ReadHeader(); err != nil {
				t.Fatal(err)
			}
			el, err := r.Next()
			if tc.cond != "" {
				var se *SyntaxError
				if !errors.As(err, &se) || se.Condition != tc.cond {
					t.Fatalf("got %v, %v; want condition %s", el, err, tc.cond)
				}
				if _, err2 := r.Next(); err2 != err {
					t.Fatalf("error not sticky: %v then %v", err, err2)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := string(el.Append(nil, ns.Client)); got != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestStreamEndAndKeepalives(t *testing.T) {
	r := NewReader(strings.NewReader(hdr + " \n<presence/>\t <message/> </stream:stream>"))
	if _, err := r.ReadHeader(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"presence", "message"} {
		el, err := r.Next()
		if err != nil || el.Name.Local != want || el.Name.Space != ns.Client {
			t.Fatalf("got %v %v, want %s", el, err, want)
		}
	}
	if _, err := r.Next(); err != ErrStreamEnd {
		t.Fatalf("got %v, want ErrStreamEnd", err)
	}

	r = NewReader(strings.NewReader(hdr + "<message>"))
	r.ReadHeader()
	if _, err := r.Next(); err != io.ErrUnexpectedEOF {
		t.Fatalf("truncated element: got %v, want io.ErrUnexpectedEOF", err)
	}
	r = NewReader(strings.NewReader(hdr + "<message/>"))
	r.ReadHeader()
	r.Next()
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("end between elements: got %v, want io.EOF", err)
	}
}

func TestResetRestartsStream(t *testing.T) {
	var src bytes.Buffer
	src.WriteString(hdr + "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
	r := NewReader(&src)
	r.ReadHeader()
	el, err := r.Next()
	if err != nil || el.Name.Space != ns.TLS {
		t.Fatalf("got %v %v", el, err)
	}
	r.Reset(strings.NewReader(hdr + "<iq/>"))
	if _, err := r.ReadHeader(); err != nil {
		t.Fatal(err)
	}
	if el, err := r.Next(); err != nil || el.Name.Local != "iq" {
		t.Fatalf("after reset got %v %v", el, err)
	}
}

// TestRoundTripAgainstEncodingXML checks the canonical serialisation with an
// independent parser: encoding/xml must read back the same names, attributes
// and text.
func TestRoundTripAgainstEncodingXML(t *testing.T) {
	el := New(ns.Client, "message").SetAttr("to", `a"b'c<d>&`).SetAttr("id", "x\ty\nz\r")
	el.Attr = append(el.Attr, Attr{Name: Name{Space: "urn:ext", Local: "foo"}, Value: "1"}, Attr{Name: Name{Space: ns.XML, Local: "lang"}, Value: "en"})
	el.Add(New(ns.Client, "body").AddText("a & b < c > d ]]> \r\n"), New("urn:y", "x").Add(New("urn:y", "y"), New("", "z")))
	s := el.String()
	d := xml.NewDecoder(strings.NewReader(s))
	tok, err := d.Token()
	if err != nil {
		t.Fatal(err)
	}
	got, err := FromTokens(tok.(xml.StartElement), d)
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != s {
		t.Fatalf("encoding/xml read back\n%s\nfrom\n%s", got.String(), s)
	}
	// And our own reader agrees.
	r := NewReader(strings.NewReader(hdr + s))
	r.ReadHeader()
	own, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	// The reader sees the message in jabber:client as the stream's default.
	if own.String() != s {
		t.Fatalf("reader read back\n%s\nfrom\n%s", own.String(), s)
	}
}

func TestStreamErrorAndHeader(t *testing.T) {
	b := AppendHeader(nil, StreamHeader{From: "localhost", ID: "abc", ContentNS: ns.Client})
	b = AppendStreamError(b, PolicyViolation, "too <big>")
	r := NewReader(bytes.NewReader(b))
	h, err := r.ReadHeader()
	if err != nil || h.Get("from") != "localhost" || h.Get("id") != "abc" || h.Get("version") != "1.0" {
		t.Fatalf("header %v %v", h, err)
	}
	el, err := r.Next()
	if err != nil || el.Name.Space != ns.Stream || el.Name.Local != "error" {
		t.Fatalf("got %v %v", el, err)
	}
	if el.Child(ns.StreamErrors, "policy-violation") == nil || el.ChildText(ns.StreamErrors, "text") != "too <big>" {
		t.Fatalf("stream error content: %s", el)
	}
	if _, err := r.Next(); err != ErrStreamEnd {
		t.Fatalf("got %v, want ErrStreamEnd", err)
	}
}

func TestParse(t *testing.T) {
	el, err := Parse([]byte(`<vCard xmlns='vcard-temp'><FN>A &amp; B</FN></vCard>`), "")
	if err != nil || el.Name.Space != ns.VCard || el.ChildText(ns.VCard, "FN") != "A & B" {
		t.Fatalf("%v %v", el, err)
	}
	el, err = Parse([]byte(`<message><body>x</body></message>`), ns.Client)
	if err != nil || el.Name.Space != ns.Client || el.Child(ns.Client, "body") == nil {
		t.Fatalf("%v %v", el, err)
	}
	if _, err := Parse([]byte(`<a><b></a>`), ""); err == nil {
		t.Fatal("malformed input parsed")
	}
}
