package xmppclient

import (
	"strconv"
	"strings"
)

// escape escapes s for use in XML text and single- or double-quoted
// attribute values.
func escape(s string) string {
	if !strings.ContainsAny(s, "<>&'\"\r\n\t") {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '&':
			b.WriteString("&amp;")
		case '\'':
			b.WriteString("&apos;")
		case '"':
			b.WriteString("&quot;")
		case '\r':
			b.WriteString("&#xD;")
		case '\n':
			b.WriteString("&#xA;")
		case '\t':
			b.WriteString("&#x9;")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Escape escapes s for XML text and attribute values, for callers that
// build stanzas for Send.
func Escape(s string) string { return escape(s) }

func trimSpace(s string) string { return strings.TrimSpace(s) }

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }
