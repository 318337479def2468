package s2s

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/xmppcheck/xmppcheck/internal/ns"
	"github.com/xmppcheck/xmppcheck/reference/wire"
)

// errRestricted is restricted XML (RFC 6120 §11.1: no DTDs, comments,
// processing instructions).
var errRestricted = errors.New("s2s: restricted XML")

// errTooBig is an element over the size limit.
var errTooBig = errors.New("s2s: element too large")

// recorder feeds the decoder byte by byte and keeps what it read, so a
// stanza's exact bytes can be forwarded without re-encoding.
type recorder struct {
	r     *bufio.Reader
	buf   []byte
	base  int64 // stream offset of buf[0]
	limit int
}

func (rc *recorder) ReadByte() (byte, error) {
	b, err := rc.r.ReadByte()
	if err == nil {
		rc.buf = append(rc.buf, b)
		if len(rc.buf) > rc.limit {
			return 0, errTooBig
		}
	}
	return b, err
}

func (rc *recorder) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	b, err := rc.ReadByte()
	if err != nil {
		return 0, err
	}
	p[0] = b
	return 1, nil
}

// discard forgets the bytes before stream offset off.
func (rc *recorder) discard(off int64) {
	n := int(off - rc.base)
	if n <= 0 {
		return
	}
	n = min(n, len(rc.buf))
	rc.buf = append(rc.buf[:0], rc.buf[n:]...)
	rc.base += int64(n)
}

// slice returns a copy of the bytes at stream offsets [from, to).
func (rc *recorder) slice(from, to int64) []byte {
	return bytes.Clone(rc.buf[from-rc.base : to-rc.base])
}

// streamReader reads one XML stream: the header, then top-level elements.
type streamReader struct {
	d   *xml.Decoder
	rec *recorder
}

func newStreamReader(r io.Reader, limit int) *streamReader {
	rec := &recorder{r: bufio.NewReaderSize(r, 16<<10), limit: limit}
	d := xml.NewDecoder(rec)
	d.Strict = true
	return &streamReader{d: d, rec: rec}
}

// header reads up to the stream's opening tag.
func (sr *streamReader) header() (xml.StartElement, error) {
	for {
		tok, err := sr.d.Token()
		if err != nil {
			return xml.StartElement{}, err
		}
		switch t := tok.(type) {
		case xml.ProcInst:
			if t.Target != "xml" {
				return xml.StartElement{}, errRestricted
			}
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				return xml.StartElement{}, fmt.Errorf("s2s: text before the stream header")
			}
		case xml.StartElement:
			if t.Name.Space != ns.Stream || t.Name.Local != "stream" {
				return xml.StartElement{}, fmt.Errorf("s2s: got <%s xmlns='%s'>, want a stream header", t.Name.Local, t.Name.Space)
			}
			sr.rec.discard(sr.d.InputOffset())
			return t, nil
		default:
			return xml.StartElement{}, errRestricted
		}
	}
}

// element is a decoded top-level element. Stanzas keep their raw bytes;
// other elements are decoded into a tree.
type element struct {
	XMLName  xml.Name
	Attr     []xml.Attr    `xml:",any,attr"`
	Text     string        `xml:",chardata"`
	Children []element     `xml:",any"`
	Raw      []byte        `xml:"-"` // stanzas only
	welem    *wire.Element // stanzas read by a wireStream
}

func (e *element) attr(name string) string {
	for _, a := range e.Attr {
		if a.Name.Space == "" && a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

func (e *element) child(space, local string) *element {
	for i := range e.Children {
		if e.Children[i].XMLName.Space == space && e.Children[i].XMLName.Local == local {
			return &e.Children[i]
		}
	}
	return nil
}

var errStreamEnd = errors.New("s2s: stream closed by peer")

// next reads the next top-level element; whitespace keepalives are skipped.
// The closing stream tag returns errStreamEnd.
func (sr *streamReader) next() (*element, error) {
	for {
		start := sr.d.InputOffset()
		tok, err := sr.d.Token()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.CharData:
			sr.rec.discard(sr.d.InputOffset())
			continue
		case xml.EndElement:
			return nil, errStreamEnd
		case xml.StartElement:
			if isStanza(t.Name) {
				if err := sr.d.Skip(); err != nil {
					return nil, err
				}
				end := sr.d.InputOffset()
				raw := sr.rec.slice(start, end)
				sr.rec.discard(end)
				e := &element{XMLName: t.Name, Attr: t.Attr, Raw: raw}
				return e, nil
			}
			e := &element{}
			if err := sr.d.DecodeElement(e, &t); err != nil {
				return nil, err
			}
			sr.rec.discard(sr.d.InputOffset())
			return e, nil
		default:
			return nil, errRestricted
		}
	}
}

func isStanza(n xml.Name) bool {
	return (n.Space == ns.Server || n.Space == ns.Client) && (n.Local == "message" || n.Local == "presence" || n.Local == "iq")
}

// attrEscape escapes s for a single-quoted attribute value.
func attrEscape(s string) string { return string(wire.AppendEscaped(nil, s, true)) }

// textEscape escapes s for character data.
func textEscape(s string) string { return string(wire.AppendEscaped(nil, s, false)) }

// streamHeader is the opening tag of a server stream (RFC 6120 §4.7); the
// dialback namespace is declared as XEP-0220 §2.1 asks.
func streamHeader(from, to, id string) string {
	var b strings.Builder
	b.WriteString("<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' version='1.0'")
	if from != "" {
		b.WriteString(" from='" + attrEscape(from) + "'")
	}
	if to != "" {
		b.WriteString(" to='" + attrEscape(to) + "'")
	}
	if id != "" {
		b.WriteString(" id='" + attrEscape(id) + "'")
	}
	b.WriteString(">")
	return b.String()
}

func headerAttr(h xml.StartElement, name string) string {
	for _, a := range h.Attr {
		if a.Name.Space == "" && a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// streamError is the stream error element of RFC 6120 §4.9.
func streamError(cond, text string) string {
	s := "<stream:error><" + cond + " xmlns='" + ns.StreamErrors + "'/>"
	if text != "" {
		s += "<text xmlns='" + ns.StreamErrors + "'>" + textEscape(text) + "</text>"
	}
	return s + "</stream:error>"
}

// reroot rewrites a stanza's opening tag for a stream of another default
// namespace: an explicit xmlns='jabber:client' or 'jabber:server' on the
// stanza itself is dropped, so it inherits the stream's. The rest of the
// element is kept byte for byte.
func reroot(raw []byte) ([]byte, xml.StartElement, error) {
	d := xml.NewDecoder(bytes.NewReader(raw))
	d.Strict = true
	for {
		tok, err := d.RawToken()
		if err != nil {
			return nil, xml.StartElement{}, fmt.Errorf("s2s: stanza: %w", err)
		}
		st, ok := tok.(xml.StartElement)
		if !ok {
			if _, isText := tok.(xml.CharData); isText {
				continue
			}
			return nil, xml.StartElement{}, errRestricted
		}
		if st.Name.Space != "" {
			return nil, xml.StartElement{}, fmt.Errorf("s2s: prefixed stanza element %s:%s", st.Name.Space, st.Name.Local)
		}
		off := d.InputOffset()
		selfClosing := off >= 2 && string(raw[off-2:off]) == "/>"
		var b bytes.Buffer
		b.Grow(len(raw))
		b.WriteString("<" + st.Name.Local)
		var kept []xml.Attr
		for _, a := range st.Attr {
			if a.Name.Space == "" && a.Name.Local == "xmlns" {
				if a.Value == ns.Client || a.Value == ns.Server {
					continue
				}
				return nil, xml.StartElement{}, fmt.Errorf("s2s: stanza in namespace %q", a.Value)
			}
			kept = append(kept, a)
			b.WriteString(" ")
			if a.Name.Space != "" {
				b.WriteString(a.Name.Space + ":")
			}
			b.WriteString(a.Name.Local + "='" + attrEscape(a.Value) + "'")
		}
		if selfClosing {
			b.WriteString("/>")
		} else {
			b.WriteString(">")
			b.Write(raw[off:])
		}
		st.Attr = kept
		return b.Bytes(), st, nil
	}
}
