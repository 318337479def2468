package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/xmppcheck/xmppcheck/conformance/target"
)

// accountsEnv names the environment variable that may hold remote test
// accounts, one JID:PASSWORD per line (CI secrets), so that passwords
// never appear on a command line (ps, CI logs).
const accountsEnv = "XMPPCHECK_ACCOUNTS"

// srvResolver is the resolver --remote DOMAIN uses (tests point it at an
// in-process DNS server).
var srvResolver target.SRVResolver

// remoteSpec is what the remote flags of conform and doctor describe.
type remoteSpec struct {
	remote, remoteTLS, remoteS2S, domain string
	accounts                             []string
	accountsFile                         string
	ibr                                  bool
}

// remoteResolved is a remote target's addresses and accounts, resolved
// and parsed.
type remoteResolved struct {
	addrs    target.Addrs
	domain   string
	resolved bool // the addresses came from SRV records
	accounts []target.Account
}

// resolve turns the flags into addresses and accounts: --remote HOST:PORT
// as given, --remote DOMAIN by SRV (RFC 6120 §3.2.1, XEP-0368) with
// --domain defaulting to it; accounts from --account, --accounts-file and
// $XMPPCHECK_ACCOUNTS.
func (r remoteSpec) resolve(ctx context.Context) (remoteResolved, error) {
	var out remoteResolved
	out.domain = r.domain
	if _, _, err := net.SplitHostPort(r.remote); err == nil {
		out.addrs = target.Addrs{C2S: r.remote}
		if out.domain == "" {
			return out, errors.New("--remote needs --domain when it is HOST:PORT (or give --remote DOMAIN to resolve its SRV records)")
		}
	} else {
		if out.domain == "" {
			out.domain = r.remote
		}
		a, err := target.ResolveDomain(ctx, srvResolver, r.remote)
		if err != nil {
			return out, err
		}
		out.addrs, out.resolved = a, true
	}
	if r.remoteTLS != "" {
		out.addrs.C2STLS = r.remoteTLS
	}
	if r.remoteS2S != "" {
		out.addrs.S2S = r.remoteS2S
	}
	if out.addrs.C2S == "" { // SRV offered only direct TLS
		out.addrs.C2S = out.addrs.C2STLS
	}
	lines := append([]string(nil), r.accounts...)
	if r.accountsFile != "" {
		l, err := readAccountLines(r.accountsFile)
		if err != nil {
			return out, err
		}
		lines = append(lines, l...)
	}
	lines = append(lines, splitAccountLines(os.Getenv(accountsEnv))...)
	for _, l := range lines {
		a, err := target.ParseAccount(l, out.domain)
		if err != nil {
			return out, err
		}
		out.accounts = append(out.accounts, a)
	}
	return out, nil
}

func readAccountLines(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--accounts-file: %w", err)
	}
	return splitAccountLines(string(b)), nil
}

// splitAccountLines splits JID:PASSWORD lines, skipping blank lines and
// # comments.
func splitAccountLines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

// target builds the remote target.
func (rr remoteResolved) target(ibr bool) *target.Remote {
	opts := []target.RemoteOption{target.WithRemoteAddrs(rr.addrs)}
	for _, a := range rr.accounts {
		opts = append(opts, target.WithAccount(a))
	}
	if ibr {
		opts = append(opts, target.WithIBR())
	}
	return target.NewRemote(rr.addrs.C2S, rr.domain, opts...)
}
