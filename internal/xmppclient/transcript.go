package xmppclient

import (
	"bytes"
	"encoding/xml"
	"regexp"
	"strings"
	"time"
)

// redacted replaces secrets in transcripts.
const redacted = "[redacted]"

// Structural redaction: the content of SASL payload elements and of
// password elements (XEP-0077) and password form fields (XEP-0004).
var (
	reSecretElem  = regexp.MustCompile(`(?s)<((?:[A-Za-z0-9_-]+:)?(?:auth|response|challenge|success|password))(\s[^>]*)?>(.*?)</(?:[A-Za-z0-9_-]+:)?(?:auth|response|challenge|success|password)>`)
	reSecretField = regexp.MustCompile(`(?s)(<field\b[^>]*\bvar=['"](?:password|old_password|new_password)['"][^>]*>.*?<value>)(.*?)(</value>)`)
)

// Redact returns data with SASL payloads, <password/> contents, password
// form fields and every literal secret (in plain and XML-escaped form)
// replaced by "[redacted]". It is what transcripts record.
func Redact(data []byte, secrets []string) []byte {
	out := reSecretElem.ReplaceAll(data, []byte("<$1$2>"+redacted+"</$1>"))
	out = reSecretField.ReplaceAll(out, []byte("${1}"+redacted+"${3}"))
	for _, s := range secrets {
		if s == "" {
			continue
		}
		for _, form := range secretForms(s) {
			out = bytes.ReplaceAll(out, []byte(form), []byte(redacted))
		}
	}
	return out
}

// secretForms lists the encodings of s that may appear in XML text.
func secretForms(s string) []string {
	forms := []string{s}
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	if e := b.String(); e != s {
		forms = append(forms, e)
	}
	if e := escape(s); e != s {
		forms = append(forms, e)
	}
	return forms
}

// record writes one transcript line: time, connection id, direction (C:
// client to server, S: server to client) and the redacted XML.
func (c *Client) record(dir byte, data []byte) {
	if c.cfg.transcript == nil || len(data) == 0 {
		return
	}
	c.mu.Lock()
	secrets := append([]string(nil), c.secrets...)
	c.mu.Unlock()
	line := Redact(data, secrets)
	line = bytes.ReplaceAll(line, []byte("\n"), []byte("&#10;"))
	var b bytes.Buffer
	b.WriteString(time.Now().UTC().Format("2006-01-02T15:04:05.000000Z"))
	b.WriteString(" #")
	b.WriteString(itoa(c.id))
	b.WriteByte(' ')
	b.WriteByte(dir)
	b.WriteString(": ")
	b.Write(line)
	b.WriteByte('\n')
	c.tmu.Lock()
	c.cfg.transcript.Write(b.Bytes())
	c.tmu.Unlock()
}
