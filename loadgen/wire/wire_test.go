package wire

import (
	"bytes"
	"encoding/xml"
	"errors"
	"strings"
	"testing"
)

func TestNext(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string // complete elements in order
		rest string   // what remains unconsumed
		end  bool
	}{
		{"one", "<message to='a'><body>x</body></message>", []string{"<message to='a'><body>x</body></message>"}, "", false},
		{"self closing", "<presence/>", []string{"<presence/>"}, "", false},
		{"keepalive and two", " \n<presence from='a'/>\t<iq type='result' id='1'/>", []string{"<presence from='a'/>", "<iq type='result' id='1'/>"}, "", false},
		{"partial", "<message><body>x</bo", nil, "<message><body>x</bo", false},
		{"partial tag", "<message to='a", nil, "<message to='a", false},
		{"gt in attribute", "<message a='x>y'><body>z</body></message>", []string{"<message a='x>y'><body>z</body></message>"}, "", false},
		{"nested same name", "<message><x><x/></x></message><p/>", []string{"<message><x><x/></x></message>", "<p/>"}, "", false},
		{"cdata and comment", "<message><body><![CDATA[</message>]]></body><!-- </x> --></message>", []string{"<message><body><![CDATA[</message>]]></body><!-- </x> --></message>"}, "", false},
		{"stream end", "<presence/></stream:stream>", []string{"<presence/>"}, "", true},
		{"whitespace only", "   ", nil, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf := []byte(tt.in)
			var got []string
			end := false
			for {
				el, n, ok, err := Next(buf)
				if errors.Is(err, ErrStreamEnd) {
					end = true
					buf = buf[n:]
					break
				}
				if !ok {
					buf = buf[n:]
					break
				}
				got = append(got, string(el))
				buf = buf[n:]
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") || string(buf) != tt.rest || end != tt.end {
				t.Errorf("got %q rest %q end %v; want %q rest %q end %v", got, buf, end, tt.want, tt.rest, tt.end)
			}
		})
	}
}

// TestNextByteByByte feeds a stream in every split position: the result
// must not depend on how reads cut it.
func TestNextByteByByte(t *testing.T) {
	stream := "<message from='a@b/c' to='d@e/f' type='chat'><body>XC1 1f 1700000000000000000 3 pad</body></message>  <presence from='x'><status>s</status></presence><iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>"
	want := 3
	for cut := 1; cut < len(stream); cut++ {
		var buf []byte
		n := 0
		for _, part := range []string{stream[:cut], stream[cut:]} {
			buf = append(buf, part...)
			for {
				_, c, ok, err := Next(buf)
				if err != nil {
					t.Fatal(err)
				}
				buf = buf[c:]
				if !ok {
					break
				}
				n++
			}
		}
		if n != want || len(bytes.TrimSpace(buf)) != 0 {
			t.Fatalf("cut %d: %d elements, rest %q", cut, n, buf)
		}
	}
}

func TestMarkerRoundTrip(t *testing.T) {
	m := Marker{Run: 0xdeadbeef, Scheduled: 1700000000123456789, Sender: 42}
	msg := AppendMessage(nil, "u1@localhost", m, 100)
	el, _, ok, err := Next(msg)
	if !ok || err != nil {
		t.Fatalf("own message not a complete element: %q", msg)
	}
	var parsed struct {
		To   string `xml:"to,attr"`
		Body string `xml:"body"`
	}
	if err := xml.Unmarshal(el, &parsed); err != nil {
		t.Fatalf("not well-formed XML: %v", err)
	}
	if parsed.To != "u1@localhost" || !strings.HasPrefix(parsed.Body, "XC1 ") || len(parsed.Body) < 100 {
		t.Errorf("parsed = %+v", parsed)
	}
	// As relayed by a server, with from added and attributes reordered.
	relayed := []byte("<message from='u0@localhost/r' to='u1@localhost' type='chat' xml:lang='en'><body>" + parsed.Body + "</body></message>")
	got, ok := FindMarker(relayed)
	if !ok || got != m {
		t.Errorf("FindMarker = %+v %v, want %+v", got, ok, m)
	}
	p := AppendPresence(nil, m)
	if got, ok := FindMarker(p); !ok || got != m {
		t.Errorf("presence marker = %+v", got)
	}
	if _, ok := FindMarker([]byte("<message><body>hello</body></message>")); ok {
		t.Error("marker found in a foreign message")
	}
}

func TestNameAttr(t *testing.T) {
	el := []byte(`<iq type="get" id='p1' from='localhost'><ping xmlns='urn:xmpp:ping' type='x'/></iq>`)
	if string(Name(el)) != "iq" || string(Attr(el, "type")) != "get" || string(Attr(el, "id")) != "p1" || Attr(el, "to") != nil {
		t.Errorf("Name/Attr wrong: %q %q %q", Name(el), Attr(el, "type"), Attr(el, "id"))
	}
	if string(Name([]byte("<stream:error><x/></stream:error>"))) != "stream:error" {
		t.Error("stream:error name")
	}
	// "xtype" must not match "type".
	if Attr([]byte("<a xtype='1' type='2'/>"), "type") == nil || string(Attr([]byte("<a xtype='1' type='2'/>"), "type")) != "2" {
		t.Error("attribute prefix confusion")
	}
}

var benchStanza = []byte("<message from='load17@localhost/4f2a' to='load16@localhost' type='chat' id='x'><body>XC1 1f 1700000000000000000 17 lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor</body></message>")

func BenchmarkSplit(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchStanza)))
	for i := 0; i < b.N; i++ {
		el, _, ok, _ := Next(benchStanza)
		if !ok {
			b.Fatal("incomplete")
		}
		if _, ok := FindMarker(el); !ok {
			b.Fatal("no marker")
		}
	}
}

// BenchmarkEncodingXML is the same work with encoding/xml, the way a
// DOM-less but token-based client (mellium.im/xmpp) reads a stanza.
func BenchmarkEncodingXML(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchStanza)))
	var v struct {
		From string `xml:"from,attr"`
		Body string `xml:"body"`
	}
	for i := 0; i < b.N; i++ {
		d := xml.NewDecoder(bytes.NewReader(benchStanza))
		if err := d.Decode(&v); err != nil {
			b.Fatal(err)
		}
		if _, ok := FindMarker([]byte(v.Body)); !ok {
			b.Fatal("no marker")
		}
	}
}

func BenchmarkAppendMessage(b *testing.B) {
	b.ReportAllocs()
	buf := make([]byte, 0, 512)
	for i := 0; i < b.N; i++ {
		buf = AppendMessage(buf[:0], "load16@localhost", Marker{Run: 31, Scheduled: int64(i), Sender: 17}, 64)
	}
}
