package wire

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"

	"github.com/xmppcheck/xmppcheck/internal/ns"
)

// Condition is an RFC 6120 §4.9.3 stream error condition a reader reports.
// Its value is the wire token.
type Condition string

// Stream error conditions the reader can raise.
const (
	// BadFormat: RFC 6120 §4.9.3.1, XML that is well-formed but cannot be
	// processed (an empty stream header).
	BadFormat Condition = "bad-format"
	// InvalidNamespace: RFC 6120 §4.9.3.10, a stream header in a namespace
	// other than http://etherx.jabber.org/streams.
	InvalidNamespace Condition = "invalid-namespace"
	// NotWellFormed: RFC 6120 §4.9.3.13, XML that is not well-formed.
	NotWellFormed Condition = "not-well-formed"
	// PolicyViolation: RFC 6120 §4.9.3.14, an element larger or deeper than
	// the limits.
	PolicyViolation Condition = "policy-violation"
	// RestrictedXML: RFC 6120 §4.9.3.18 and §11.1, comments, processing
	// instructions, DTDs or non-predefined entity references.
	RestrictedXML Condition = "restricted-xml"
	// UnsupportedEncoding: RFC 6120 §4.9.3.22 and §11.6, an encoding other
	// than UTF-8.
	UnsupportedEncoding Condition = "unsupported-encoding"
)

// SyntaxError is a violation of the stream's XML rules. The session answers
// it with a stream error of the same condition and closes the stream.
type SyntaxError struct {
	Condition Condition
	Text      string
	Offset    int64 // byte offset in the stream since the last Reset
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("wire: %s at byte %d: %s", e.Condition, e.Offset, e.Text)
}

// ErrStreamEnd is returned by Next when the peer closed the stream with
// </stream:stream> (RFC 6120 §4.4).
var ErrStreamEnd = errors.New("wire: stream closed by peer")

// Default limits.
const (
	DefaultMaxSize  = 256 << 10
	DefaultMaxDepth = 64
	readBufSize     = 2048
)

// ReaderOption configures a Reader.
type ReaderOption func(*Reader)

// WithMaxSize limits the size in bytes of one top-level element (and of the
// stream header); larger elements are a policy-violation.
func WithMaxSize(n int) ReaderOption { return func(r *Reader) { r.maxSize = n } }

// WithMaxDepth limits element nesting (the top-level element is depth 1).
func WithMaxDepth(n int) ReaderOption { return func(r *Reader) { r.maxDepth = n } }

// WithBufferSize sets the size of the read buffer (default 2 KiB).
func WithBufferSize(n int) ReaderOption { return func(r *Reader) { r.buf = make([]byte, n) } }

// Reader reads one XMPP stream. It is not safe for concurrent use.
type Reader struct {
	src      io.Reader
	buf      []byte
	r, w     int
	base     int64 // stream offset of buf[0]
	err      error
	maxSize  int
	maxDepth int
	start    int64 // stream offset where the current element began
	limit    bool

	text  []byte
	name  []byte
	attrs []rawAttr
	scope []binding

	streamPrefix, streamLocal string
}

type binding struct{ prefix, ns string }

type rawAttr struct {
	prefix, local, value string
}

// NewReader returns a reader of the stream src.
func NewReader(src io.Reader, opts ...ReaderOption) *Reader {
	r := &Reader{src: src, maxSize: DefaultMaxSize, maxDepth: DefaultMaxDepth}
	for _, o := range opts {
		o(r)
	}
	if r.buf == nil {
		r.buf = make([]byte, readBufSize)
	}
	if r.maxSize <= 0 {
		r.maxSize = DefaultMaxSize
	}
	if r.maxDepth <= 0 {
		r.maxDepth = DefaultMaxDepth
	}
	return r
}

// Reset discards buffered input, errors and namespace scope, and reads from
// src next: a stream restart (RFC 6120 §4.3.3) after STARTTLS or SASL. Any
// bytes buffered at a restart were sent before the peer could know the
// outcome and are dropped, as RFC 6120 §5.4.3.3 asks.
func (r *Reader) Reset(src io.Reader) {
	r.src = src
	r.r, r.w, r.base = 0, 0, 0
	r.err = nil
	r.scope = r.scope[:0]
	r.streamPrefix, r.streamLocal = "", ""
	if cap(r.text) > 64<<10 {
		r.text = nil
	}
}

// Buffered returns the number of bytes read from the source but not yet
// parsed.
func (r *Reader) Buffered() int { return r.w - r.r }

// ShrinkBuffers drops scratch buffers grown by large elements, so that an
// idle session holds as little memory as possible.
func (r *Reader) ShrinkBuffers() {
	if cap(r.text) > 1024 {
		r.text = nil
	}
	if cap(r.attrs) > 32 {
		r.attrs = nil
	}
}

func (r *Reader) syntax(c Condition, format string, args ...any) error {
	return &SyntaxError{Condition: c, Text: fmt.Sprintf(format, args...), Offset: r.base + int64(r.r)}
}

func (r *Reader) fill() error {
	for tries := 0; ; tries++ {
		n, err := r.src.Read(r.buf)
		if n > 0 {
			r.base += int64(r.w)
			r.r, r.w = 0, n
			return nil
		}
		if err != nil {
			return err
		}
		if tries > 100 {
			return io.ErrNoProgress
		}
	}
}

// next returns the next byte of the stream. It is small enough to be
// inlined; refills and the size limit are in nextSlow.
func (r *Reader) next() (byte, error) {
	if r.r < r.w {
		c := r.buf[r.r]
		r.r++
		return c, nil
	}
	return r.nextSlow()
}

func (r *Reader) nextSlow() (byte, error) {
	if err := r.checkSize(); err != nil {
		return 0, err
	}
	if err := r.fill(); err != nil {
		return 0, err
	}
	c := r.buf[r.r]
	r.r++
	return c, nil
}

// checkSize enforces the size limit of the current element. It runs at
// every refill and at the end of each element, so an element is refused at
// most one buffer beyond the limit and never held whole in memory.
func (r *Reader) checkSize() error {
	if r.limit && r.base+int64(r.r)-r.start > int64(r.maxSize) {
		return r.syntax(PolicyViolation, "element larger than %d bytes", r.maxSize)
	}
	return nil
}

// back unreads the byte next just returned.
func (r *Reader) back() { r.r-- }

// inElement turns io.EOF inside an element into io.ErrUnexpectedEOF.
func inElement(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// skipSpace skips white space and reports whether there was any.
func (r *Reader) skipSpace() (bool, error) {
	any := false
	for {
		c, err := r.next()
		if err != nil {
			return any, err
		}
		if !isSpace(c) {
			r.back()
			return any, nil
		}
		any = true
	}
}

func (r *Reader) expect(want byte, what string) error {
	c, err := r.next()
	if err != nil {
		return inElement(err)
	}
	if c != want {
		return r.syntax(NotWellFormed, "expected %q %s, found %q", want, what, c)
	}
	return nil
}

// readRune reads the rest of a multi-byte UTF-8 sequence that starts with
// lead, appends it to dst and returns the rune.
func (r *Reader) readRune(lead byte, dst []byte) (rune, []byte, error) {
	var n int
	switch {
	case lead&0xE0 == 0xC0:
		n = 2
	case lead&0xF0 == 0xE0:
		n = 3
	case lead&0xF8 == 0xF0:
		n = 4
	default:
		return 0, dst, r.syntax(NotWellFormed, "invalid UTF-8")
	}
	var tmp [4]byte
	tmp[0] = lead
	for i := 1; i < n; i++ {
		c, err := r.next()
		if err != nil {
			return 0, dst, inElement(err)
		}
		tmp[i] = c
	}
	ru, w := utf8.DecodeRune(tmp[:n])
	if w != n || (ru == utf8.RuneError && w == 1) {
		return 0, dst, r.syntax(NotWellFormed, "invalid UTF-8")
	}
	if !isChar(ru) {
		return 0, dst, r.syntax(NotWellFormed, "character U+%04X not allowed in XML", ru)
	}
	return ru, append(dst, tmp[:n]...), nil
}

// qname reads a qualified name (Namespaces in XML §4).
func (r *Reader) qname() (prefix, local string, err error) {
	b := r.name[:0]
	colon := -1
	segStart := true
	for {
		// Fast path: ASCII name characters straight from the buffer.
		if i := r.r; !segStart && i < r.w && asciiName[r.buf[i]] {
			i++
			for i < r.w && asciiName[r.buf[i]] {
				i++
			}
			b = append(b, r.buf[r.r:i]...)
			r.r = i
		}
		c, err := r.next()
		if err != nil {
			return "", "", inElement(err)
		}
		var ok bool
		if c < utf8.RuneSelf {
			switch {
			case c == ':':
				if colon >= 0 || segStart {
					return "", "", r.syntax(NotWellFormed, "malformed qualified name %q", b)
				}
				colon = len(b)
				b = append(b, c)
				segStart = true
				continue
			case segStart:
				ok = isNameStartChar(rune(c))
			default:
				ok = isNameChar(rune(c))
			}
			if !ok {
				r.back()
				break
			}
			b = append(b, c)
		} else {
			var ru rune
			ru, b, err = r.readRune(c, b)
			if err != nil {
				return "", "", err
			}
			if segStart && !isNameStartChar(ru) || !segStart && !isNameChar(ru) {
				return "", "", r.syntax(NotWellFormed, "character U+%04X not allowed in a name", ru)
			}
		}
		segStart = false
	}
	r.name = b
	if len(b) == 0 {
		return "", "", r.syntax(NotWellFormed, "expected a name")
	}
	if segStart {
		return "", "", r.syntax(NotWellFormed, "malformed qualified name %q", b)
	}
	if colon < 0 {
		return "", intern(b), nil
	}
	return intern(b[:colon]), intern(b[colon+1:]), nil
}

// entity reads a reference after '&' and appends its character to dst.
func (r *Reader) entity(dst []byte) ([]byte, error) {
	var nb [12]byte
	n := 0
	for {
		c, err := r.next()
		if err != nil {
			return dst, inElement(err)
		}
		if c == ';' {
			break
		}
		if n == len(nb) || c == '<' || c == '&' || isSpace(c) {
			return dst, r.syntax(NotWellFormed, "malformed entity reference")
		}
		nb[n] = c
		n++
	}
	s := nb[:n]
	switch string(s) {
	case "lt":
		return append(dst, '<'), nil
	case "gt":
		return append(dst, '>'), nil
	case "amp":
		return append(dst, '&'), nil
	case "apos":
		return append(dst, '\''), nil
	case "quot":
		return append(dst, '"'), nil
	}
	if n >= 2 && s[0] == '#' {
		var v uint64
		var err error
		if s[1] == 'x' {
			if n == 2 {
				return dst, r.syntax(NotWellFormed, "malformed character reference")
			}
			v, err = strconv.ParseUint(string(s[2:]), 16, 32)
		} else {
			v, err = strconv.ParseUint(string(s[1:]), 10, 32)
		}
		if err != nil || !isChar(rune(v)) {
			return dst, r.syntax(NotWellFormed, "invalid character reference &%s;", s)
		}
		return utf8.AppendRune(dst, rune(v)), nil
	}
	if n > 0 && isNameStartChar(rune(s[0])) {
		// RFC 6120 §11.1: only the predefined entities.
		return dst, r.syntax(RestrictedXML, "entity reference &%s; is not allowed", s)
	}
	return dst, r.syntax(NotWellFormed, "malformed entity reference")
}

// attrValue reads a quoted attribute value (XML 1.0 §3.3.3 normalisation of
// white space characters).
func (r *Reader) attrValue() (string, error) {
	q, err := r.next()
	if err != nil {
		return "", inElement(err)
	}
	if q != '"' && q != '\'' {
		return "", r.syntax(NotWellFormed, "attribute value must be quoted")
	}
	b := r.text[:0]
	for {
		if i := r.r; i < r.w && plainAttr[r.buf[i]] {
			i++
			for i < r.w && plainAttr[r.buf[i]] {
				i++
			}
			b = append(b, r.buf[r.r:i]...)
			r.r = i
		}
		c, err := r.next()
		if err != nil {
			return "", inElement(err)
		}
		switch {
		case c == q:
			r.text = b
			return intern(b), nil
		case c == '<':
			return "", r.syntax(NotWellFormed, "'<' in attribute value")
		case c == '&':
			if b, err = r.entity(b); err != nil {
				return "", err
			}
		case c == '\r':
			if c2, err := r.next(); err != nil {
				return "", inElement(err)
			} else if c2 != '\n' {
				r.back()
			}
			b = append(b, ' ')
		case c == '\n' || c == '\t':
			b = append(b, ' ')
		case c < 0x20:
			return "", r.syntax(NotWellFormed, "control character 0x%02X not allowed in XML", c)
		case c >= utf8.RuneSelf:
			if _, b, err = r.readRune(c, b); err != nil {
				return "", err
			}
		default:
			b = append(b, c)
		}
	}
}

func (r *Reader) lookup(prefix string) (string, bool) {
	if prefix == "xml" {
		return ns.XML, true
	}
	for i := len(r.scope) - 1; i >= 0; i-- {
		if r.scope[i].prefix == prefix {
			return r.scope[i].ns, true
		}
	}
	if prefix == "" {
		return "", true
	}
	return "", false
}

// startTag reads a start tag after its '<' and pushes its namespace
// declarations. It returns the element (children not yet read), the raw
// prefix of its name, and whether the tag was empty (<x/>).
func (r *Reader) startTag() (*Element, string, bool, error) {
	prefix, local, err := r.qname()
	if err != nil {
		return nil, "", false, err
	}
	attrs := r.attrs[:0]
	var empty bool
	for {
		ws, err := r.skipSpace()
		if err != nil {
			return nil, "", false, inElement(err)
		}
		c, err := r.next()
		if err != nil {
			return nil, "", false, inElement(err)
		}
		if c == '>' {
			break
		}
		if c == '/' {
			if err := r.expect('>', "after '/' in a start tag"); err != nil {
				return nil, "", false, err
			}
			empty = true
			break
		}
		if !ws {
			return nil, "", false, r.syntax(NotWellFormed, "attributes must be separated by white space")
		}
		r.back()
		ap, al, err := r.qname()
		if err != nil {
			return nil, "", false, err
		}
		if _, err := r.skipSpace(); err != nil {
			return nil, "", false, inElement(err)
		}
		if err := r.expect('=', "after an attribute name"); err != nil {
			return nil, "", false, err
		}
		if _, err := r.skipSpace(); err != nil {
			return nil, "", false, inElement(err)
		}
		v, err := r.attrValue()
		if err != nil {
			return nil, "", false, err
		}
		for _, a := range attrs {
			if a.prefix == ap && a.local == al {
				return nil, "", false, r.syntax(NotWellFormed, "duplicate attribute %q", al)
			}
		}
		attrs = append(attrs, rawAttr{ap, al, v})
	}
	r.attrs = attrs
	// Namespace declarations first (Namespaces in XML §3), then names.
	nattr := 0
	for _, a := range attrs {
		switch {
		case a.prefix == "" && a.local == "xmlns":
			if a.value == ns.XML || a.value == ns.XMLNS {
				return nil, "", false, r.syntax(NotWellFormed, "reserved namespace %q as default namespace", a.value)
			}
			r.scope = append(r.scope, binding{"", a.value})
		case a.prefix == "xmlns":
			switch {
			case a.value == "":
				return nil, "", false, r.syntax(NotWellFormed, "prefix %q bound to the empty namespace", a.local)
			case a.local == "xmlns", a.value == ns.XMLNS:
				return nil, "", false, r.syntax(NotWellFormed, "the xmlns prefix cannot be declared")
			case (a.local == "xml") != (a.value == ns.XML):
				return nil, "", false, r.syntax(NotWellFormed, "the xml prefix is bound only to %s", ns.XML)
			}
			r.scope = append(r.scope, binding{a.local, a.value})
		default:
			nattr++
		}
	}
	if prefix == "xmlns" {
		return nil, "", false, r.syntax(NotWellFormed, "element names cannot use the xmlns prefix")
	}
	space, ok := r.lookup(prefix)
	if !ok {
		return nil, "", false, r.syntax(NotWellFormed, "undeclared namespace prefix %q", prefix)
	}
	el := &Element{Name: Name{Space: space, Local: local}}
	if nattr > 0 {
		el.Attr = make([]Attr, 0, nattr)
		for _, a := range attrs {
			if a.prefix == "xmlns" || (a.prefix == "" && a.local == "xmlns") {
				continue
			}
			var as string
			if a.prefix != "" {
				if as, ok = r.lookup(a.prefix); !ok {
					return nil, "", false, r.syntax(NotWellFormed, "undeclared namespace prefix %q", a.prefix)
				}
			}
			n := Name{Space: as, Local: a.local}
			for _, b := range el.Attr {
				if b.Name == n {
					return nil, "", false, r.syntax(NotWellFormed, "duplicate attribute {%s}%s", n.Space, n.Local)
				}
			}
			el.Attr = append(el.Attr, Attr{Name: n, Value: a.value})
		}
	}
	return el, prefix, empty, nil
}

// pop removes the namespace declarations of the element whose scope started
// at mark.
func (r *Reader) pop(mark int) { r.scope = r.scope[:mark] }

// element reads an element after its '<'.
func (r *Reader) element(depth int) (*Element, error) {
	if depth > r.maxDepth {
		return nil, r.syntax(PolicyViolation, "elements nested deeper than %d", r.maxDepth)
	}
	mark := len(r.scope)
	el, prefix, empty, err := r.startTag()
	if err != nil {
		return nil, err
	}
	if empty {
		r.pop(mark)
		return el, nil
	}
	text := r.text[:0]
	flush := func() {
		if len(text) > 0 {
			if el.Children == nil {
				el.Children = make([]Node, 0, 4)
			}
			el.Children = append(el.Children, Node{Text: string(text)})
			text = text[:0]
		}
	}
	brackets := 0 // consecutive ']' in character data, to refuse "]]>"
	for {
		// Fast path: copy a run of plain text straight from the buffer.
		if i := r.r; i < r.w && plainText[r.buf[i]] {
			i++
			for i < r.w && plainText[r.buf[i]] {
				i++
			}
			text = append(text, r.buf[r.r:i]...)
			r.r = i
			brackets = 0
		}
		c, err := r.next()
		if err != nil {
			return nil, inElement(err)
		}
		if c != '<' {
			switch {
			case c == '&':
				if text, err = r.entity(text); err != nil {
					return nil, err
				}
			case c == '\r':
				if c2, err := r.next(); err != nil {
					return nil, inElement(err)
				} else if c2 != '\n' {
					r.back()
				}
				text = append(text, '\n')
			case c == '>' && brackets >= 2:
				return nil, r.syntax(NotWellFormed, "']]>' in character data")
			case c < 0x20 && c != '\n' && c != '\t':
				return nil, r.syntax(NotWellFormed, "control character 0x%02X not allowed in XML", c)
			case c >= utf8.RuneSelf:
				if _, text, err = r.readRune(c, text); err != nil {
					return nil, err
				}
			default:
				text = append(text, c)
			}
			if c == ']' {
				brackets++
			} else {
				brackets = 0
			}
			continue
		}
		brackets = 0
		c, err = r.next()
		if err != nil {
			return nil, inElement(err)
		}
		switch {
		case c == '/':
			p, l, err := r.qname()
			if err != nil {
				return nil, err
			}
			if p != prefix || l != el.Name.Local {
				return nil, r.syntax(NotWellFormed, "end tag %q does not match start tag %q", qn(p, l), qn(prefix, el.Name.Local))
			}
			if _, err := r.skipSpace(); err != nil {
				return nil, inElement(err)
			}
			if err := r.expect('>', "to close an end tag"); err != nil {
				return nil, err
			}
			flush()
			r.text = text
			r.pop(mark)
			return el, nil
		case c == '!':
			if text, err = r.bang(text); err != nil {
				return nil, err
			}
		case c == '?':
			return nil, r.syntax(RestrictedXML, "processing instructions are not allowed")
		default:
			r.back()
			flush()
			r.text = text
			child, err := r.element(depth + 1)
			if err != nil {
				return nil, err
			}
			if el.Children == nil {
				el.Children = make([]Node, 0, 4)
			}
			el.Children = append(el.Children, Node{Elem: child})
			text = r.text[:0]
		}
	}
}

// bang handles "<!" inside an element: a CDATA section (allowed) is
// appended to text; comments and DTDs are restricted XML.
func (r *Reader) bang(text []byte) ([]byte, error) {
	c, err := r.next()
	if err != nil {
		return text, inElement(err)
	}
	switch c {
	case '-':
		return text, r.syntax(RestrictedXML, "comments are not allowed")
	case '[':
	default:
		return text, r.syntax(RestrictedXML, "DTDs are not allowed")
	}
	for _, want := range []byte("CDATA[") {
		if err := r.expect(want, "in a CDATA section start"); err != nil {
			return text, err
		}
	}
	brackets := 0
	for {
		c, err := r.next()
		if err != nil {
			return text, inElement(err)
		}
		switch {
		case c == '>' && brackets >= 2:
			return text[:len(text)-2], nil
		case c == '\r':
			if c2, err := r.next(); err != nil {
				return text, inElement(err)
			} else if c2 != '\n' {
				r.back()
			}
			text = append(text, '\n')
		case c < 0x20 && c != '\n' && c != '\t':
			return text, r.syntax(NotWellFormed, "control character 0x%02X not allowed in XML", c)
		case c >= utf8.RuneSelf:
			if _, text, err = r.readRune(c, text); err != nil {
				return text, err
			}
		default:
			text = append(text, c)
		}
		if c == ']' {
			brackets++
		} else {
			brackets = 0
		}
	}
}

func qn(prefix, local string) string {
	if prefix == "" {
		return local
	}
	return prefix + ":" + local
}

// Byte classes for the fast paths: bytes that need no further look.
var plainText, plainAttr, asciiName [256]bool

func init() {
	for c := 0x20; c < 0x80; c++ {
		switch c {
		case '<', '&', ']', '>':
		default:
			plainText[c] = true
		}
		switch c {
		case '<', '&', '\'', '"':
		default:
			plainAttr[c] = true
		}
		asciiName[c] = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.'
	}
	plainText['\n'], plainText['\t'] = true, true
}

// Header is a stream header (RFC 6120 §4.7).
type Header struct {
	Name Name
	Attr []Attr
	// ContentNS is the default namespace declared on the header:
	// jabber:client or jabber:server for a well-behaved peer.
	ContentNS string
}

// Get returns the value of the header attribute local (no namespace).
func (h *Header) Get(local string) string {
	e := Element{Attr: h.Attr}
	return e.Get(local)
}

// Lang returns the header's xml:lang.
func (h *Header) Lang() string {
	e := Element{Attr: h.Attr}
	return e.Lang()
}

// ReadHeader reads an optional XML declaration and the stream header. The
// header's namespace declarations stay in scope for every element of the
// stream.
func (r *Reader) ReadHeader() (*Header, error) {
	if r.err != nil {
		return nil, r.err
	}
	h, err := r.readHeader()
	r.limit = false
	if err != nil {
		r.err = err
	}
	return h, err
}

func (r *Reader) readHeader() (*Header, error) {
	r.scope = r.scope[:0]
	r.limit, r.start = true, r.base+int64(r.r)
	c, err := r.next()
	if err != nil {
		return nil, err
	}
	if c == 0xEF { // UTF-8 byte order mark
		for _, want := range []byte{0xBB, 0xBF} {
			if err := r.expect(want, "in a byte order mark"); err != nil {
				return nil, err
			}
		}
	} else if c == 0xFE || c == 0xFF || c == 0 {
		return nil, r.syntax(UnsupportedEncoding, "only UTF-8 is supported")
	} else {
		r.back()
	}
	if _, err := r.skipSpace(); err != nil {
		return nil, err
	}
	if err := r.expect('<', "to start the stream header"); err != nil {
		return nil, err
	}
	if c, err = r.next(); err != nil {
		return nil, inElement(err)
	}
	if c == '?' {
		if err := r.xmlDecl(); err != nil {
			return nil, err
		}
		if _, err := r.skipSpace(); err != nil {
			return nil, inElement(err)
		}
		if err := r.expect('<', "to start the stream header"); err != nil {
			return nil, err
		}
		if c, err = r.next(); err != nil {
			return nil, inElement(err)
		}
	}
	switch c {
	case '!':
		return nil, r.syntax(RestrictedXML, "comments and DTDs are not allowed")
	case '?':
		return nil, r.syntax(RestrictedXML, "processing instructions are not allowed")
	}
	r.back()
	el, prefix, empty, err := r.startTag()
	if err != nil {
		return nil, err
	}
	if el.Name.Space != ns.Stream || el.Name.Local != "stream" {
		return nil, r.syntax(InvalidNamespace, "stream header is {%s}%s, not {%s}stream", el.Name.Space, el.Name.Local, ns.Stream)
	}
	if empty {
		return nil, r.syntax(BadFormat, "empty stream header")
	}
	r.streamPrefix, r.streamLocal = prefix, el.Name.Local
	ns, _ := r.lookup("")
	return &Header{Name: el.Name, Attr: el.Attr, ContentNS: ns}, nil
}

// xmlDecl reads an XML declaration after "<?" (XML 1.0 §2.8) and refuses
// encodings other than UTF-8 (RFC 6120 §11.6).
func (r *Reader) xmlDecl() error {
	var b []byte
	for {
		c, err := r.next()
		if err != nil {
			return inElement(err)
		}
		if c == '>' && len(b) > 0 && b[len(b)-1] == '?' {
			b = b[:len(b)-1]
			break
		}
		if len(b) > 200 {
			return r.syntax(NotWellFormed, "XML declaration too long")
		}
		b = append(b, c)
	}
	s := string(b)
	if len(s) < 4 || s[:3] != "xml" || !isSpace(s[3]) {
		return r.syntax(RestrictedXML, "processing instructions are not allowed")
	}
	if i := indexFold(s, "encoding"); i >= 0 {
		rest := s[i+len("encoding"):]
		for len(rest) > 0 && (isSpace(rest[0]) || rest[0] == '=') {
			rest = rest[1:]
		}
		if len(rest) < 2 {
			return r.syntax(NotWellFormed, "malformed XML declaration")
		}
		q := rest[0]
		end := -1
		for j := 1; j < len(rest); j++ {
			if rest[j] == q {
				end = j
				break
			}
		}
		if end < 0 {
			return r.syntax(NotWellFormed, "malformed XML declaration")
		}
		enc := rest[1:end]
		if !equalFold(enc, "UTF-8") && !equalFold(enc, "UTF8") {
			return r.syntax(UnsupportedEncoding, "encoding %q: only UTF-8 is supported", enc)
		}
	}
	return nil
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'a' <= x && x <= 'z' {
			x -= 'a' - 'A'
		}
		if 'a' <= y && y <= 'z' {
			y -= 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

func indexFold(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if equalFold(s[i:i+len(sub)], sub) {
			return i
		}
	}
	return -1
}

// Next returns the next top-level element of the stream, ErrStreamEnd when
// the peer closed the stream, io.EOF when the connection ended between
// elements, or a *SyntaxError. Errors are sticky.
func (r *Reader) Next() (*Element, error) {
	if r.err != nil {
		return nil, r.err
	}
	el, err := r.nextElement()
	r.limit = false
	if err != nil {
		r.err = err
	}
	return el, err
}

func (r *Reader) nextElement() (*Element, error) {
	if r.streamLocal == "" {
		return nil, errors.New("wire: Next before ReadHeader")
	}
	for {
		r.limit = false
		c, err := r.next()
		if err != nil {
			return nil, err
		}
		switch c {
		case ' ', '\t', '\r', '\n':
			continue // white space keepalives (RFC 6120 §4.6.1)
		case '<':
		default:
			return nil, r.syntax(NotWellFormed, "character data at stream level")
		}
		r.limit, r.start = true, r.base+int64(r.r)-1
		if c, err = r.next(); err != nil {
			return nil, inElement(err)
		}
		switch c {
		case '/':
			p, l, err := r.qname()
			if err != nil {
				return nil, err
			}
			if p != r.streamPrefix || l != r.streamLocal {
				return nil, r.syntax(NotWellFormed, "end tag %q does not match the stream header %q", qn(p, l), qn(r.streamPrefix, r.streamLocal))
			}
			if _, err := r.skipSpace(); err != nil {
				return nil, inElement(err)
			}
			if err := r.expect('>', "to close the stream"); err != nil {
				return nil, err
			}
			return nil, ErrStreamEnd
		case '!':
			c2, err := r.next()
			if err != nil {
				return nil, inElement(err)
			}
			if c2 == '[' {
				return nil, r.syntax(NotWellFormed, "character data at stream level")
			}
			return nil, r.syntax(RestrictedXML, "comments and DTDs are not allowed")
		case '?':
			return nil, r.syntax(RestrictedXML, "processing instructions are not allowed")
		}
		r.back()
		el, err := r.element(1)
		if err == nil {
			err = r.checkSize()
		}
		if err != nil {
			return nil, err
		}
		return el, nil
	}
}

// Parse reads one element from b, whose default namespace is defaultNS
// unless it declares its own.
func Parse(b []byte, defaultNS string) (*Element, error) {
	r := NewReader(bytesReader(b), WithMaxSize(len(b)+1))
	r.streamLocal = "\x00" // no stream: Next reads a lone element
	if defaultNS != "" {
		r.scope = append(r.scope, binding{"", defaultNS})
	}
	el, err := r.Next()
	if err != nil {
		return nil, err
	}
	return el, nil
}

type byteSliceReader struct{ b []byte }

func bytesReader(b []byte) *byteSliceReader { return &byteSliceReader{b} }

func (s *byteSliceReader) Read(p []byte) (int, error) {
	if len(s.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.b)
	s.b = s.b[n:]
	return n, nil
}
