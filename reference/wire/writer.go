package wire

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"

	"github.com/xmppcheck/xmppcheck/internal/ns"
)

// StreamHeader is the opening of a stream sent by a server (RFC 6120 §4.7).
type StreamHeader struct {
	From, To, ID string
	Lang         string // xml:lang; "en" when empty
	ContentNS    string // jabber:client or jabber:server
	Version      string // "1.0" when empty
	// Extra namespace declarations (prefix → namespace), e.g. db for
	// dialback on s2s streams.
	Extra [][2]string
}

// AppendHeader appends an XML declaration and the stream header.
func AppendHeader(buf []byte, h StreamHeader) []byte {
	buf = append(buf, "<?xml version='1.0'?><stream:stream xmlns='"...)
	buf = AppendEscaped(buf, h.ContentNS, true)
	buf = append(buf, "' xmlns:stream='"+ns.Stream+"'"...)
	for _, x := range h.Extra {
		buf = append(buf, " xmlns:"...)
		buf = append(buf, x[0]...)
		buf = append(buf, "='"...)
		buf = AppendEscaped(buf, x[1], true)
		buf = append(buf, '\'')
	}
	attr := func(name, v string) {
		if v == "" {
			return
		}
		buf = append(buf, ' ')
		buf = append(buf, name...)
		buf = append(buf, "='"...)
		buf = AppendEscaped(buf, v, true)
		buf = append(buf, '\'')
	}
	attr("from", h.From)
	attr("to", h.To)
	attr("id", h.ID)
	v := h.Version
	if v == "" {
		v = "1.0"
	}
	attr("version", v)
	lang := h.Lang
	if lang == "" {
		lang = "en"
	}
	attr("xml:lang", lang)
	return append(buf, '>')
}

// AppendStreamError appends a stream error (RFC 6120 §4.9) and the closing
// stream tag.
func AppendStreamError(buf []byte, cond Condition, text string) []byte {
	buf = append(buf, "<stream:error><"...)
	buf = append(buf, cond...)
	buf = append(buf, " xmlns='"+ns.StreamErrors+"'/>"...)
	if text != "" {
		buf = append(buf, "<text xmlns='"+ns.StreamErrors+"' xml:lang='en'>"...)
		buf = AppendEscaped(buf, text, false)
		buf = append(buf, "</text>"...)
	}
	return append(buf, "</stream:error></stream:stream>"...)
}

// StreamEnd closes a stream (RFC 6120 §4.4).
const StreamEnd = "</stream:stream>"

// TokenReader returns e as a stream of encoding/xml tokens, for code built
// on encoding/xml or mellium.im/xmlstream (for example an s2s stream).
func (e *Element) TokenReader() xml.TokenReader {
	var toks []xml.Token
	var walk func(*Element)
	walk = func(el *Element) {
		start := xml.StartElement{Name: xml.Name{Space: el.Name.Space, Local: el.Name.Local}}
		for _, a := range el.Attr {
			start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Space: a.Name.Space, Local: a.Name.Local}, Value: a.Value})
		}
		toks = append(toks, start)
		for _, c := range el.Children {
			if c.Elem != nil {
				walk(c.Elem)
			} else {
				toks = append(toks, xml.CharData(c.Text))
			}
		}
		toks = append(toks, start.End())
	}
	walk(e)
	return &sliceReader{toks: toks}
}

type sliceReader struct {
	toks []xml.Token
	i    int
}

func (s *sliceReader) Token() (xml.Token, error) {
	if s.i >= len(s.toks) {
		return nil, io.EOF
	}
	t := s.toks[s.i]
	s.i++
	return t, nil
}

// FromTokens builds an element from start and the tokens that follow it up
// to and including its end element. Namespace declarations in start.Attr
// (as encoding/xml reports them) are dropped; names must already carry their
// namespaces, as encoding/xml's Decoder.Token returns them.
func FromTokens(start xml.StartElement, r xml.TokenReader) (*Element, error) {
	el := elementOf(start)
	stack := []*Element{el}
	for len(stack) > 0 {
		tok, err := r.Token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("wire: from tokens: %w", err)
		}
		top := stack[len(stack)-1]
		switch t := tok.(type) {
		case xml.StartElement:
			c := elementOf(t)
			top.Add(c)
			stack = append(stack, c)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			top.AddText(string(t))
		}
	}
	return el, nil
}

func elementOf(s xml.StartElement) *Element {
	el := New(s.Name.Space, s.Name.Local)
	for _, a := range s.Attr {
		if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
			continue
		}
		space := a.Name.Space
		if space == "xml" {
			space = ns.XML
		}
		el.Attr = append(el.Attr, Attr{Name: Name{Space: space, Local: a.Name.Local}, Value: a.Value})
	}
	return el
}
