package wire

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"testing"

	"github.com/xmppcheck/xmppcheck/internal/ns"
)

// FuzzReader feeds arbitrary bytes after a valid stream header to the stream
// input path. Whatever the input, the reader must not panic or hang, must
// report only syntax errors, end-of-stream or EOF, and every element it
// accepts must survive a round trip: its canonical serialisation must be read
// back identically by this reader and by encoding/xml.
func FuzzReader(f *testing.F) {
	for _, s := range []string{
		`<message to='a@b' type='chat'><body>hi</body></message>`,
		`<iq type='get' id='1'><query xmlns='jabber:iq:roster'/></iq>`,
		`<presence><show>away</show><priority>5</priority></presence>`,
		`<message xmlns:r='urn:xmpp:receipts'><r:request/></message>`,
		`<message><body><![CDATA[<x>]]></body></message>`,
		`<message xml:lang='de'><body>&lt;&#x263A;&amp;</body></message>`,
		`<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`,
		`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>biwsbj11c2VyLHI9YWJj</auth>`,
		`<message><!-- x --></message>`,
		`<message><body>&nbsp;</body></message>`,
		`</stream:stream>`,
		"<message>\xff</message>",
		`<a:b xmlns:a='urn:a' a:c='1' c='2'/>`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(io.MultiReader(bytes.NewReader([]byte(hdr)), bytes.NewReader(data)), WithMaxSize(4096), WithMaxDepth(16))
		if _, err := r.ReadHeader(); err != nil {
			t.Fatalf("valid header refused: %v", err)
		}
		for i := 0; i < 1000; i++ {
			el, err := r.Next()
			if err != nil {
				var se *SyntaxError
				if !errors.As(err, &se) && err != ErrStreamEnd && err != io.EOF && err != io.ErrUnexpectedEOF {
					t.Fatalf("unexpected error type %T: %v", err, err)
				}
				return
			}
			s := el.Append(nil, ns.Client)
			r2 := NewReader(io.MultiReader(bytes.NewReader([]byte(hdr)), bytes.NewReader(s)))
			r2.ReadHeader()
			el2, err := r2.Next()
			if err != nil {
				t.Fatalf("own output %q unreadable: %v", s, err)
			}
			if s2 := el2.Append(nil, ns.Client); !bytes.Equal(s, s2) {
				t.Fatalf("round trip changed\n%q\n%q", s, s2)
			}
			full := el.String()
			d := xml.NewDecoder(bytes.NewReader([]byte(full)))
			tok, err := d.Token()
			if err != nil {
				t.Fatalf("encoding/xml refuses %q: %v", full, err)
			}
			start, ok := tok.(xml.StartElement)
			if !ok {
				t.Fatalf("encoding/xml: first token of %q is %T", full, tok)
			}
			el3, err := FromTokens(start, d)
			if err != nil {
				t.Fatalf("encoding/xml refuses %q: %v", full, err)
			}
			if got := el3.String(); got != full {
				t.Fatalf("encoding/xml reads\n%q\nas\n%q", full, got)
			}
		}
	})
}
