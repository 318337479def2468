package wire

import (
	"bytes"
	"errors"
	"strconv"
)

// ErrTooLarge is returned when one element exceeds the scanner's limit.
var ErrTooLarge = errors.New("wire: element too large")

// ErrStreamEnd is returned by Next when it meets the server's </stream:stream>.
var ErrStreamEnd = errors.New("wire: stream closed by server")

// Next finds the first complete top-level element in buf (leading
// whitespace and keepalives skipped). It returns the element, the number of
// bytes of buf consumed, and ok=false if buf holds no complete element yet.
// A </stream:stream> end tag at top level returns err == ErrStreamEnd.
func Next(buf []byte) (el []byte, n int, ok bool, err error) {
	i := 0
	for i < len(buf) && isSpace(buf[i]) {
		i++
	}
	if i == len(buf) {
		return nil, i, false, nil
	}
	start := i
	depth := 0
	for {
		j := bytes.IndexByte(buf[i:], '<')
		if j < 0 {
			return nil, start, false, nil
		}
		i += j
		if i+1 >= len(buf) {
			return nil, start, false, nil
		}
		switch buf[i+1] {
		case '/':
			k := bytes.IndexByte(buf[i:], '>')
			if k < 0 {
				return nil, start, false, nil
			}
			i += k + 1
			depth--
			if depth == 0 {
				return buf[start:i], i, true, nil
			}
			if depth < 0 {
				return nil, i, false, ErrStreamEnd
			}
		case '?':
			k := bytes.Index(buf[i:], []byte("?>"))
			if k < 0 {
				return nil, start, false, nil
			}
			i += k + 2
		case '!':
			var end []byte
			switch {
			case bytes.HasPrefix(buf[i:], []byte("<!--")):
				end = []byte("-->")
			case bytes.HasPrefix(buf[i:], []byte("<![CDATA[")):
				end = []byte("]]>")
			case len(buf)-i < 9:
				return nil, start, false, nil
			default:
				end = []byte(">")
			}
			k := bytes.Index(buf[i:], end)
			if k < 0 {
				return nil, start, false, nil
			}
			i += k + len(end)
		default:
			// A start tag: find its '>' outside quoted attribute values.
			k := i + 1
			var quote byte
			for ; k < len(buf); k++ {
				c := buf[k]
				if quote != 0 {
					if c == quote {
						quote = 0
					}
					continue
				}
				if c == '"' || c == '\'' {
					quote = c
				} else if c == '>' {
					break
				}
			}
			if k >= len(buf) {
				return nil, start, false, nil
			}
			selfClosing := buf[k-1] == '/'
			i = k + 1
			if selfClosing {
				if depth == 0 {
					return buf[start:i], i, true, nil
				}
			} else {
				depth++
			}
		}
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\r' || c == '\t' }

// Name returns the element's qualified name ("message", "presence", "iq",
// "stream:error", …).
func Name(el []byte) []byte {
	if len(el) < 2 || el[0] != '<' {
		return nil
	}
	i := 1
	for i < len(el) && !isSpace(el[i]) && el[i] != '>' && el[i] != '/' {
		i++
	}
	return el[1:i]
}

// Attr returns the value of the start tag's attribute name (undecoded: the
// load generator's own values need no unescaping), or nil.
func Attr(el []byte, name string) []byte {
	end := bytes.IndexByte(el, '>')
	if end < 0 {
		end = len(el)
	}
	tag := el[:end]
	for i := 0; ; {
		k := bytes.Index(tag[i:], []byte(name))
		if k < 0 {
			return nil
		}
		k += i
		after := k + len(name)
		if k > 0 && isSpace(tag[k-1]) && after+1 < len(tag) && tag[after] == '=' && (tag[after+1] == '\'' || tag[after+1] == '"') {
			q := tag[after+1]
			v := tag[after+2:]
			e := bytes.IndexByte(v, q)
			if e < 0 {
				return nil
			}
			return v[:e]
		}
		i = after
	}
}

// MarkerPrefix starts the text the load generator puts in the stanzas it
// sends: "XC1 <run id> <scheduled unix ns> <sender>".
const MarkerPrefix = "XC1 "

// Marker is what a load stanza carries.
type Marker struct {
	Run       uint64 // run id: stanzas of other runs (stale offline messages) are ignored
	Scheduled int64  // scheduled send time, Unix nanoseconds
	Sender    int    // index of the sending simulated user
}

// AppendMarker appends the marker text.
func AppendMarker(b []byte, m Marker) []byte {
	b = append(b, MarkerPrefix...)
	b = strconv.AppendUint(b, m.Run, 16)
	b = append(b, ' ')
	b = strconv.AppendInt(b, m.Scheduled, 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(m.Sender), 10)
	return b
}

// FindMarker extracts the marker from a received element.
func FindMarker(el []byte) (Marker, bool) {
	i := bytes.Index(el, []byte(MarkerPrefix))
	if i < 0 {
		return Marker{}, false
	}
	rest := el[i+len(MarkerPrefix):]
	var fields [3][]byte
	for f := 0; f < 3; f++ {
		j := 0
		for j < len(rest) && rest[j] != ' ' && rest[j] != '<' {
			j++
		}
		fields[f] = rest[:j]
		if j < len(rest) && rest[j] == ' ' {
			j++
		}
		rest = rest[j:]
	}
	run, err1 := strconv.ParseUint(string(fields[0]), 16, 64)
	sched, err2 := strconv.ParseInt(string(fields[1]), 10, 64)
	sender, err3 := strconv.Atoi(string(fields[2]))
	if err1 != nil || err2 != nil || err3 != nil {
		return Marker{}, false
	}
	return Marker{Run: run, Scheduled: sched, Sender: sender}, true
}

// AppendMessage appends a chat message to to, with the marker and pad bytes
// of filler in its body (RFC 6121 §5.2). to must need no escaping (the load
// generator's own JIDs).
func AppendMessage(b []byte, to string, m Marker, pad int) []byte {
	b = append(b, "<message type='chat' to='"...)
	b = append(b, to...)
	b = append(b, "'><body>"...)
	b = AppendMarker(b, m)
	b = appendPad(b, pad)
	return append(b, "</body></message>"...)
}

// AppendPresence appends a broadcast presence whose status carries the
// marker (RFC 6121 §4.2, §4.7.2.2).
func AppendPresence(b []byte, m Marker) []byte {
	b = append(b, "<presence><status>"...)
	b = AppendMarker(b, m)
	return append(b, "</status></presence>"...)
}

const padText = " lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor"

func appendPad(b []byte, n int) []byte {
	for n > 0 {
		k := min(n, len(padText))
		b = append(b, padText[:k]...)
		n -= k
	}
	return b
}
