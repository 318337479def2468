package upload

import (
	"context"
	"encoding/xml"
	"errors"
	"strings"
	"testing"

	"github.com/xmppcheck/xmppcheck/internal/ns"
	mupload "mellium.im/xmpp/upload"
)

func TestParseRequest(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Request
		err  error
	}{
		{`<request xmlns='urn:xmpp:http:upload:0' filename='a b.jpg' size='23456' content-type='image/jpeg'/>`,
			Request{Filename: "a b.jpg", Size: 23456, ContentType: "image/jpeg"}, nil},
		{`<request xmlns='urn:xmpp:http:upload:0' filename='x' size='1'/>`, Request{Filename: "x", Size: 1}, nil},
		{`<request xmlns='urn:xmpp:http:upload:0' filename='x' size='-1'/>`, Request{}, ErrBadRequest},
		{`<request xmlns='urn:xmpp:http:upload:0' filename='x'/>`, Request{}, ErrBadRequest},
		{`<request xmlns='urn:xmpp:http:upload' filename='x' size='1'/>`, Request{}, ErrBadRequest},
		{`<request xmlns='urn:xmpp:http:upload:0' filename='x' size='1'`, Request{}, ErrBadRequest},
	} {
		got, err := ParseRequest([]byte(tc.in))
		if !errors.Is(err, tc.err) || got != tc.want {
			t.Errorf("%s: got %+v, %v; want %+v, %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestHandleIQ(t *testing.T) {
	f := newFixture(t, WithMaxFileSize(100), WithQuota(150))
	ctx := context.Background()
	req := func(size string) []byte {
		return []byte(`<request xmlns='urn:xmpp:http:upload:0' filename='a&amp;b.txt' size='` + size + `' content-type='text/plain'/>`)
	}
	res, errX := f.svc.HandleIQ(ctx, "alice@example.org", req("100"))
	if errX != nil {
		t.Fatalf("error %s", errX)
	}
	// The answer decodes with an independent XEP-0363 implementation.
	var slot mupload.Slot
	if err := xml.Unmarshal(res, &slot); err != nil {
		t.Fatalf("%s: %v", res, err)
	}
	if slot.PutURL == nil || slot.GetURL == nil || !strings.HasSuffix(slot.GetURL.Path, "/a&b.txt") {
		t.Fatalf("slot %s decoded as %+v", res, slot)
	}

	for _, tc := range []struct {
		name, size string
		want       []string
	}{
		{"too large", "101", []string{"type='modify'", "<not-acceptable", "<file-too-large xmlns='urn:xmpp:http:upload:0'><max-file-size>100</max-file-size>"}},
		{"quota", "51", []string{"type='wait'", "<resource-constraint", "quota reached"}},
		{"bad size", "x", []string{"type='modify'", "<bad-request"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, errX := f.svc.HandleIQ(ctx, "alice@example.org", req(tc.size))
			if res != nil || errX == nil {
				t.Fatalf("got result %s", res)
			}
			var e struct {
				XMLName xml.Name `xml:"error"`
			}
			if err := xml.Unmarshal(errX, &e); err != nil {
				t.Fatalf("error element %s: %v", errX, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(errX), w) {
					t.Errorf("%s lacks %s", errX, w)
				}
			}
		})
	}
}

func TestDiscoInfo(t *testing.T) {
	f := newFixture(t, WithMaxFileSize(12345))
	var q struct {
		Identity []struct {
			Category string `xml:"category,attr"`
			Type     string `xml:"type,attr"`
		} `xml:"identity"`
		Feature []struct {
			Var string `xml:"var,attr"`
		} `xml:"feature"`
		X struct {
			Field []struct {
				Var   string `xml:"var,attr"`
				Value string `xml:"value"`
			} `xml:"field"`
		} `xml:"jabber:x:data x"`
	}
	if err := xml.Unmarshal(f.svc.DiscoInfoXML(), &q); err != nil {
		t.Fatal(err)
	}
	if len(q.Identity) != 1 || q.Identity[0].Category != "store" || q.Identity[0].Type != "file" {
		t.Errorf("identity %+v", q.Identity)
	}
	found := false
	for _, fe := range q.Feature {
		found = found || fe.Var == ns.Upload
	}
	if !found {
		t.Errorf("feature %s missing", ns.Upload)
	}
	// Clients such as go-sendxmpp read max-file-size right after FORM_TYPE.
	if len(q.X.Field) != 2 || q.X.Field[0].Value != ns.Upload || q.X.Field[1].Var != "max-file-size" || q.X.Field[1].Value != "12345" {
		t.Errorf("form %+v", q.X.Field)
	}
}
