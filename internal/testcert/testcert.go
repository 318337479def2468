package testcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"time"
)

// validity is how long a test certificate lives, from an hour before it
// was made.
const validity = 24 * time.Hour

// CA is a self-signed certificate authority. Its certificate may also serve
// as a server's own certificate when it names hosts (a fake server whose
// clients trust Pool).
type CA struct {
	Cert tls.Certificate // Leaf is set
	Pool *x509.CertPool  // holds Cert alone
}

// NewCA makes a CA named commonName whose certificate also names hosts (DNS
// names or IP addresses).
func NewCA(commonName string, hosts ...string) (*CA, error) {
	tmpl := template(commonName, hosts)
	tmpl.IsCA = true
	tmpl.BasicConstraintsValid = true
	tmpl.KeyUsage |= x509.KeyUsageCertSign
	cert, err := create(tmpl, nil)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	return &CA{Cert: cert, Pool: pool}, nil
}

// Issue makes a certificate for hosts (the first is its common name)
// signed by ca.
func (ca *CA) Issue(hosts ...string) (tls.Certificate, error) {
	return create(template(first(hosts), hosts), ca)
}

// SelfSigned makes a self-signed certificate for hosts (the first is its
// common name) that is not a CA.
func SelfSigned(hosts ...string) (tls.Certificate, error) {
	return create(template(first(hosts), hosts), nil)
}

func first(hosts []string) string {
	if len(hosts) == 0 {
		return ""
	}
	return hosts[0]
}

func template(commonName string, hosts []string) *x509.Certificate {
	now := time.Now()
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: commonName},
		NotBefore:   now.Add(-time.Hour),
		NotAfter:    now.Add(validity),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return tmpl
}

// create signs tmpl with ca, or with its own new key when ca is nil.
func create(tmpl *x509.Certificate, ca *CA) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("testcert: key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("testcert: serial: %w", err)
	}
	tmpl.SerialNumber = serial
	parent, signer := tmpl, any(key)
	if ca != nil {
		parent, signer = ca.Cert.Leaf, ca.Cert.PrivateKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("testcert: create: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("testcert: parse: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}
