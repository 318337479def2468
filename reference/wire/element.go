package wire

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/xmppcheck/xmppcheck/internal/ns"
)

// Name is an expanded XML name: namespace and local part.
type Name struct {
	Space, Local string
}

// Attr is an attribute. Namespace declarations are not attributes: they are
// resolved into Name.Space while reading and regenerated while writing.
type Attr struct {
	Name  Name
	Value string
}

// Node is a child of an element: an element or character data (exactly one
// of the two is set).
type Node struct {
	Elem *Element
	Text string
}

// Element is an XML element with its attributes and children.
type Element struct {
	Name     Name
	Attr     []Attr
	Children []Node
}

// New returns an element called local in namespace space.
func New(space, local string) *Element {
	return &Element{Name: Name{Space: space, Local: local}}
}

// Get returns the value of the attribute local (no namespace), or "".
func (e *Element) Get(local string) string {
	for _, a := range e.Attr {
		if a.Name.Local == local && a.Name.Space == "" {
			return a.Value
		}
	}
	return ""
}

// Has reports whether the attribute local (no namespace) is present.
func (e *Element) Has(local string) bool {
	for _, a := range e.Attr {
		if a.Name.Local == local && a.Name.Space == "" {
			return true
		}
	}
	return false
}

// Lang returns the xml:lang attribute, or "".
func (e *Element) Lang() string {
	for _, a := range e.Attr {
		if a.Name.Local == "lang" && a.Name.Space == ns.XML {
			return a.Value
		}
	}
	return ""
}

// SetAttr sets (or, with an empty value, removes) the attribute local and
// returns e.
func (e *Element) SetAttr(local, value string) *Element {
	for i, a := range e.Attr {
		if a.Name.Local == local && a.Name.Space == "" {
			if value == "" {
				e.Attr = append(e.Attr[:i], e.Attr[i+1:]...)
			} else {
				e.Attr[i].Value = value
			}
			return e
		}
	}
	if value != "" {
		e.Attr = append(e.Attr, Attr{Name: Name{Local: local}, Value: value})
	}
	return e
}

// Add appends child elements and returns e.
func (e *Element) Add(children ...*Element) *Element {
	for _, c := range children {
		if c != nil {
			e.Children = append(e.Children, Node{Elem: c})
		}
	}
	return e
}

// AddText appends character data and returns e.
func (e *Element) AddText(s string) *Element {
	if s != "" {
		e.Children = append(e.Children, Node{Text: s})
	}
	return e
}

// Child returns the first child element with the given name, or nil. An
// empty space matches any namespace.
func (e *Element) Child(space, local string) *Element {
	for _, c := range e.Children {
		if c.Elem != nil && c.Elem.Name.Local == local && (space == "" || c.Elem.Name.Space == space) {
			return c.Elem
		}
	}
	return nil
}

// Elements returns the child elements.
func (e *Element) Elements() []*Element {
	var out []*Element
	for _, c := range e.Children {
		if c.Elem != nil {
			out = append(out, c.Elem)
		}
	}
	return out
}

// FirstElement returns the first child element, or nil.
func (e *Element) FirstElement() *Element {
	for _, c := range e.Children {
		if c.Elem != nil {
			return c.Elem
		}
	}
	return nil
}

// Text returns the concatenated character data directly inside e.
func (e *Element) Text() string {
	n := 0
	var one string
	for _, c := range e.Children {
		if c.Elem == nil {
			n++
			one = c.Text
		}
	}
	if n <= 1 {
		return one
	}
	var b strings.Builder
	for _, c := range e.Children {
		if c.Elem == nil {
			b.WriteString(c.Text)
		}
	}
	return b.String()
}

// ChildText returns the text of the first child called local in space, or "".
func (e *Element) ChildText(space, local string) string {
	if c := e.Child(space, local); c != nil {
		return c.Text()
	}
	return ""
}

// Copy returns a deep copy of e.
func (e *Element) Copy() *Element {
	if e == nil {
		return nil
	}
	c := &Element{Name: e.Name}
	if len(e.Attr) > 0 {
		c.Attr = append([]Attr(nil), e.Attr...)
	}
	if len(e.Children) > 0 {
		c.Children = make([]Node, len(e.Children))
		for i, n := range e.Children {
			if n.Elem != nil {
				c.Children[i] = Node{Elem: n.Elem.Copy()}
			} else {
				c.Children[i] = n
			}
		}
	}
	return c
}

// Rename replaces namespace from with to in e and every descendant. It is
// how a stanza moves between the content namespaces jabber:client and
// jabber:server (RFC 6120 §4.8.3).
func (e *Element) Rename(from, to string) {
	if e.Name.Space == from {
		e.Name.Space = to
	}
	for _, c := range e.Children {
		if c.Elem != nil {
			c.Elem.Rename(from, to)
		}
	}
}

// String returns e serialised with its namespace declared.
func (e *Element) String() string { return string(e.Append(nil, "")) }

// Append appends e serialised to buf. parentNS is the default namespace in
// scope where e is written (for a stanza on a c2s stream, ns.Client): e's own
// namespace is declared only when it differs. Namespaced attributes other
// than xml: get generated prefixes.
func (e *Element) Append(buf []byte, parentNS string) []byte {
	buf = append(buf, '<')
	buf = append(buf, e.Name.Local...)
	if e.Name.Space != parentNS {
		buf = append(buf, " xmlns='"...)
		buf = AppendEscaped(buf, e.Name.Space, true)
		buf = append(buf, '\'')
	}
	gen := 0
	for _, a := range e.Attr {
		buf = append(buf, ' ')
		switch a.Name.Space {
		case "":
		case ns.XML:
			buf = append(buf, "xml:"...)
		default:
			p := "a" + strconv.Itoa(gen)
			gen++
			buf = append(buf, "xmlns:"...)
			buf = append(buf, p...)
			buf = append(buf, "='"...)
			buf = AppendEscaped(buf, a.Name.Space, true)
			buf = append(buf, "' "...)
			buf = append(buf, p...)
			buf = append(buf, ':')
		}
		buf = append(buf, a.Name.Local...)
		buf = append(buf, "='"...)
		buf = AppendEscaped(buf, a.Value, true)
		buf = append(buf, '\'')
	}
	if len(e.Children) == 0 {
		return append(buf, "/>"...)
	}
	buf = append(buf, '>')
	for _, c := range e.Children {
		if c.Elem != nil {
			buf = c.Elem.Append(buf, e.Name.Space)
		} else {
			buf = AppendEscaped(buf, c.Text, false)
		}
	}
	buf = append(buf, "</"...)
	buf = append(buf, e.Name.Local...)
	return append(buf, '>')
}

// AppendEscaped appends s with the characters XML requires escaped. In
// attribute values (attr true) quotes and whitespace other than space are
// escaped too, so that they survive attribute-value normalisation. Invalid
// UTF-8 and characters XML 1.0 does not allow are replaced by U+FFFD.
func AppendEscaped(buf []byte, s string, attr bool) []byte {
	last := 0
	for i := 0; i < len(s); {
		c := s[i]
		var esc string
		width := 1
		switch {
		case c == '&':
			esc = "&amp;"
		case c == '<':
			esc = "&lt;"
		case c == '>':
			esc = "&gt;"
		case c == '\'' && attr:
			esc = "&apos;"
		case c == '"' && attr:
			esc = "&quot;"
		case c == '\r':
			esc = "&#xD;"
		case c == '\n' && attr:
			esc = "&#xA;"
		case c == '\t' && attr:
			esc = "&#x9;"
		case c < 0x20 && c != '\n' && c != '\t':
			esc = "\uFFFD"
		case c >= utf8.RuneSelf:
			r, w := utf8.DecodeRuneInString(s[i:])
			width = w
			if (r == utf8.RuneError && w == 1) || !isChar(r) {
				esc = "\uFFFD"
			}
		}
		if esc == "" {
			i += width
			continue
		}
		buf = append(buf, s[last:i]...)
		buf = append(buf, esc...)
		i += width
		last = i
	}
	return append(buf, s[last:]...)
}
