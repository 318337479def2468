package testcert_test

import (
	"crypto/x509"
	"testing"

	"github.com/xmppcheck/xmppcheck/internal/testcert"
)

func TestIssuedVerifiesAgainstCA(t *testing.T) {
	ca, err := testcert.NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		host string
		ok   bool
	}{
		{"a.example", true},
		{"127.0.0.1", true},
		{"b.example", false},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			c, err := ca.Issue(tt.host)
			if err != nil {
				t.Fatal(err)
			}
			name := tt.host
			if !tt.ok {
				name = "other.example"
			}
			_, err = c.Leaf.Verify(x509.VerifyOptions{Roots: ca.Pool, DNSName: name})
			if (err == nil) != tt.ok {
				t.Fatalf("Verify(%s) = %v, want ok=%v", name, err, tt.ok)
			}
		})
	}
}

func TestSelfSignedIsNotTrustedByACA(t *testing.T) {
	ca, err := testcert.NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	c, err := testcert.SelfSigned("a.example")
	if err != nil {
		t.Fatal(err)
	}
	if c.Leaf.IsCA {
		t.Fatal("self-signed leaf is a CA")
	}
	if _, err := c.Leaf.Verify(x509.VerifyOptions{Roots: ca.Pool, DNSName: "a.example"}); err == nil {
		t.Fatal("self-signed certificate verified against an unrelated CA")
	}
}

func TestCAServesAsItsOwnCertificate(t *testing.T) {
	ca, err := testcert.NewCA("localhost", "localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.Cert.Leaf.Verify(x509.VerifyOptions{Roots: ca.Pool, DNSName: "localhost"}); err != nil {
		t.Fatal(err)
	}
}
