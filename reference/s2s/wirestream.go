package s2s

import (
	"encoding/xml"
	"errors"
	"io"

	"github.com/xmppcheck/xmppcheck/internal/ns"
	"github.com/xmppcheck/xmppcheck/reference/wire"
)

// wireStream reads an inbound stream with the server's own XML reader
// (package wire: the one c2s uses, fuzzed, without encoding/xml's
// allocations), where the volume is: stanzas from remote servers.
type wireStream struct{ r *wire.Reader }

func newWireStream(src io.Reader, limit int) *wireStream {
	return &wireStream{wire.NewReader(src, wire.WithMaxSize(limit), wire.WithBufferSize(16<<10))}
}

// header reads the stream header and returns its from and to.
func (ws *wireStream) header() (from, to string, err error) {
	h, err := ws.r.ReadHeader()
	if err != nil {
		return "", "", err
	}
	if h.Name.Space != ns.Stream || h.Name.Local != "stream" {
		return "", "", errors.New("s2s: not a stream header")
	}
	return h.Get("from"), h.Get("to"), nil
}

// next reads the next top-level element. Stanzas keep the parsed element
// and its serialisation without a namespace of its own; other elements
// become a tree.
func (ws *wireStream) next() (*element, error) {
	el, err := ws.r.Next()
	if err != nil {
		if errors.Is(err, wire.ErrStreamEnd) {
			return nil, errStreamEnd
		}
		return nil, err
	}
	name := xml.Name{Space: el.Name.Space, Local: el.Name.Local}
	if isStanza(name) {
		e := &element{XMLName: name, Raw: el.Append(nil, el.Name.Space), welem: el}
		for _, a := range el.Attr {
			if a.Name.Space == "" {
				e.Attr = append(e.Attr, xml.Attr{Name: xml.Name{Local: a.Name.Local}, Value: a.Value})
			}
		}
		return e, nil
	}
	return fromWire(el), nil
}

func fromWire(el *wire.Element) *element {
	e := &element{XMLName: xml.Name{Space: el.Name.Space, Local: el.Name.Local}}
	for _, a := range el.Attr {
		e.Attr = append(e.Attr, xml.Attr{Name: xml.Name{Space: a.Name.Space, Local: a.Name.Local}, Value: a.Value})
	}
	for _, c := range el.Children {
		if c.Elem != nil {
			e.Children = append(e.Children, *fromWire(c.Elem))
		} else {
			e.Text += c.Text
		}
	}
	return e
}
