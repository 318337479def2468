package target

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// SRVResolver looks up SRV records; *net.Resolver is one.
type SRVResolver interface {
	LookupSRV(ctx context.Context, service, proto, name string) (string, []*net.SRV, error)
}

// ResolveDomain finds the addresses of domain's XMPP service the way a
// client does: _xmpp-client._tcp (RFC 6120 §3.2.1), _xmpps-client._tcp
// (XEP-0368 §2) and _xmpp-server._tcp (RFC 6120 §3.2.1). Without a client
// record it falls back to domain:5222 (RFC 6120 §3.2.2) and, for s2s, to
// domain:5269. A record whose target is "." says the service is
// decidedly not available (RFC 2782) and leaves the address empty.
func ResolveDomain(ctx context.Context, r SRVResolver, domain string) (Addrs, error) {
	if r == nil {
		r = net.DefaultResolver
	}
	var a Addrs
	for _, q := range []struct {
		service  string
		dst      *string
		fallback string
	}{
		{"xmpp-client", &a.C2S, "5222"},
		{"xmpps-client", &a.C2STLS, ""},
		{"xmpp-server", &a.S2S, "5269"},
	} {
		_, recs, err := r.LookupSRV(ctx, q.service, "tcp", domain)
		var dnsErr *net.DNSError
		switch {
		case err == nil && len(recs) > 0:
			// net.Resolver sorts by priority and weight (RFC 2782).
			if t := strings.TrimSuffix(recs[0].Target, "."); t != "" {
				*q.dst = net.JoinHostPort(t, strconv.Itoa(int(recs[0].Port)))
			}
		case err == nil || errors.As(err, &dnsErr) && dnsErr.IsNotFound:
			if q.fallback != "" {
				*q.dst = net.JoinHostPort(domain, q.fallback)
			}
		default:
			return Addrs{}, fmt.Errorf("target: SRV _%s._tcp.%s: %w", q.service, domain, err)
		}
	}
	if a.C2S == "" && a.C2STLS == "" {
		return Addrs{}, fmt.Errorf("target: %s publishes no XMPP client service (SRV target \".\")", domain)
	}
	return a, nil
}
