package upload

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"strconv"

	"github.com/xmppcheck/xmppcheck/internal/ns"
)

// ParseRequest decodes a XEP-0363 §4 slot request element.
func ParseRequest(payload []byte) (Request, error) {
	var r struct {
		XMLName     xml.Name `xml:"urn:xmpp:http:upload:0 request"`
		Filename    string   `xml:"filename,attr"`
		Size        string   `xml:"size,attr"`
		ContentType string   `xml:"content-type,attr"`
	}
	if err := xml.Unmarshal(payload, &r); err != nil {
		return Request{}, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	n, err := strconv.ParseInt(r.Size, 10, 64)
	if err != nil || n < 0 {
		return Request{}, fmt.Errorf("%w: size %q", ErrBadRequest, r.Size)
	}
	return Request{Filename: r.Filename, Size: n, ContentType: r.ContentType}, nil
}

func esc(s string) string {
	var b bytes.Buffer
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

// SlotXML is the <slot/> answer of XEP-0363 §4.
func SlotXML(s Slot) []byte {
	return []byte(`<slot xmlns='` + ns.Upload + `'><put url='` + esc(s.PutURL) + `'/><get url='` + esc(s.GetURL) + `'/></slot>`)
}

// ErrorXML is the <error/> child of an IQ error answering a refused slot
// request (XEP-0363 §4.1: file-too-large with max-file-size; quota as a
// resource-constraint to retry later).
func ErrorXML(err error) []byte {
	var se *SlotError
	errors.As(err, &se)
	text := "internal error"
	if se != nil {
		text = se.Text
	}
	t := func(s string) string {
		return `<text xmlns='` + ns.StanzaErrors + `'>` + esc(s) + `</text>`
	}
	switch {
	case errors.Is(err, ErrTooLarge):
		max := int64(0)
		if se != nil {
			max = se.MaxSize
		}
		return []byte(`<error type='modify'><not-acceptable xmlns='` + ns.StanzaErrors + `'/>` + t(text) +
			`<file-too-large xmlns='` + ns.Upload + `'><max-file-size>` + strconv.FormatInt(max, 10) +
			`</max-file-size></file-too-large></error>`)
	case errors.Is(err, ErrQuota):
		return []byte(`<error type='wait'><resource-constraint xmlns='` + ns.StanzaErrors + `'/>` + t(text) + `</error>`)
	case errors.Is(err, ErrBadRequest):
		return []byte(`<error type='modify'><bad-request xmlns='` + ns.StanzaErrors + `'/>` + t(text) + `</error>`)
	case errors.Is(err, ErrNoBaseURL):
		return []byte(`<error type='cancel'><service-unavailable xmlns='` + ns.StanzaErrors + `'/></error>`)
	}
	return []byte(`<error type='wait'><internal-server-error xmlns='` + ns.StanzaErrors + `'/></error>`)
}

// DiscoInfoXML is the disco#info answer of the upload service (XEP-0363 §3):
// the store/file identity, the feature, and the max-file-size form, in the
// order clients read it (FORM_TYPE first).
func (s *Service) DiscoInfoXML() []byte {
	return []byte(`<query xmlns='` + ns.DiscoInfo + `'>` +
		`<identity category='store' type='file' name='HTTP File Upload'/>` +
		`<feature var='` + ns.DiscoInfo + `'/>` +
		`<feature var='` + ns.Upload + `'/>` +
		`<x xmlns='` + ns.DataForms + `' type='result'>` +
		`<field var='FORM_TYPE' type='hidden'><value>` + ns.Upload + `</value></field>` +
		`<field var='max-file-size'><value>` + strconv.FormatInt(s.cfg.maxFileSize, 10) + `</value></field>` +
		`</x></query>`)
}

// HandleIQ answers an IQ get whose payload is a slot request from owner (a
// bare JID): the result payload, or the <error/> element to send instead.
func (s *Service) HandleIQ(ctx context.Context, owner string, payload []byte) (result, errXML []byte) {
	req, err := ParseRequest(payload)
	if err == nil {
		var slot Slot
		if slot, err = s.RequestSlot(ctx, owner, req); err == nil {
			return SlotXML(slot), nil
		}
	}
	if !errors.Is(err, ErrBadRequest) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrQuota) {
		s.cfg.logger.Error("upload: slot request", "err", err)
	}
	var se *SlotError
	if !errors.As(err, &se) && errors.Is(err, ErrBadRequest) {
		err = &SlotError{Err: ErrBadRequest, Text: err.Error()}
	}
	return nil, ErrorXML(err)
}
