package reference

import (
	"crypto/tls"
	"fmt"
	"time"

	"github.com/xmppcheck/xmppcheck/reference/scramauth"
	"github.com/xmppcheck/xmppcheck/spec"
)

// settings are what the server takes from the policy. Where the policy
// makes no claim, the defaults below apply (and a compliant deployment of
// such a policy promises nothing about them).
type settings struct {
	c2sTLSMin, s2sTLSMin uint16
	hash                 string
	iterations           int
	bfMax                int
	bfWindow             time.Duration
	offlineMaxAge        time.Duration
	regRequired          []string
	regOptional          []string
	regMax               int
	regWindow            time.Duration
}

func settingsFrom(p *spec.Policy) (settings, error) {
	s := settings{
		c2sTLSMin: tls.VersionTLS12, s2sTLSMin: tls.VersionTLS12,
		hash: spec.HashSHA1, iterations: scramauth.MinIterations,
		bfMax: 5, bfWindow: 10 * time.Minute,
		offlineMaxAge: 30 * 24 * time.Hour,
		regRequired:   []string{"username", "password"},
		regMax:        5, regWindow: time.Hour,
	}
	if c, ok := p.Claim(spec.TLSC2SMinVersion); ok {
		s.c2sTLSMin = c.Params.TLSVersion("min")
	}
	if c, ok := p.Claim(spec.TLSS2SMinVersion); ok {
		s.s2sTLSMin = c.Params.TLSVersion("min")
	}
	if c, ok := p.Claim(spec.AuthSCRAMStorage); ok {
		s.hash = c.Params.Hash("hash")
		s.iterations = max(c.Params.Count("min_iterations"), scramauth.MinIterations)
	}
	if s.hash != spec.HashSHA1 && s.hash != spec.HashSHA256 {
		return s, fmt.Errorf("reference: policy asks for SCRAM-%s, which this server does not implement (SHA-1, SHA-256)", s.hash)
	}
	if c, ok := p.Claim(spec.AuthBruteForce); ok {
		s.bfMax, s.bfWindow = c.Params.Count("max_failures"), c.Params.Duration("window")
	}
	if c, ok := p.Claim(spec.OfflineRetention); ok {
		s.offlineMaxAge = c.Params.Duration("max_age")
	}
	if c, ok := p.Claim(spec.RegistrationMinimalData); ok {
		s.regRequired, s.regOptional = c.Params.Fields("required"), c.Params.Fields("optional")
	}
	if c, ok := p.Claim(spec.RegistrationRateLimited); ok {
		s.regMax, s.regWindow = c.Params.Count("max"), c.Params.Duration("window")
	}
	return s, nil
}

// purgeInterval is how often the offline purge runs: a hundredth of the
// retention, between a minute and an hour.
func purgeInterval(maxAge time.Duration) time.Duration {
	return min(max(maxAge/100, time.Minute), time.Hour)
}
