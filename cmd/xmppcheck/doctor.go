package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/xmppcheck/xmppcheck/internal/dockerenv"
	"github.com/xmppcheck/xmppcheck/internal/xmppclient"
)

// finding is one line of doctor's output: ok, or a problem with its fix.
type finding struct {
	ok     bool
	what   string
	detail string
	fix    string
}

func (f finding) write(w io.Writer) {
	st := "ok     "
	if !f.ok {
		st = "problem"
	}
	fmt.Fprintf(w, "%s  %-22s %s\n", st, f.what, f.detail)
	if !f.ok && f.fix != "" {
		fmt.Fprintf(w, "%s  %-22s fix: %s\n", "       ", "", f.fix)
	}
}

type doctorFlags struct {
	remote     remoteSpec
	targetName string
	targetFile string
	fixtures   string
	ioTimeout  time.Duration
}

func newDoctorCmd() *cobra.Command {
	var f doctorFlags
	cmd := &cobra.Command{
		Use:   "doctor [flags]",
		Short: "Check, before a long run, that a target can be tested",
		Long: `doctor checks what a conformance run needs, one line per check, each ok or
a problem with its fix: for --remote, the SRV records, that the client port
answers with XMPP and TLS, the login of every supplied account and whether
in-band registration is offered; for --target and --target-file, that the
target file is valid and that a container engine answers.

Exit status: 0 every check ok, 1 a problem, 2 usage error.`,
		Example: `  xmppcheck doctor --remote example.org --accounts-file accounts.txt --ibr
  XMPPCHECK_ACCOUNTS='probe@example.org:secret' xmppcheck doctor --remote 127.0.0.1:5222 --domain localhost
  xmppcheck doctor --target-file deploy/target.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.remote.remote == "" && f.targetName == "" && f.targetFile == "" {
				return usageErr("doctor: give --remote, --target or --target-file")
			}
			var all []finding
			if f.remote.remote != "" {
				all = append(all, doctorRemote(cmd.Context(), f.remote, f.ioTimeout)...)
			}
			if f.targetName != "" || f.targetFile != "" {
				all = append(all, doctorTarget(f)...)
			}
			bad := 0
			for _, x := range all {
				x.write(cmd.OutOrStdout())
				if !x.ok {
					bad++
				}
			}
			if bad > 0 {
				return failed(fmt.Errorf("doctor: %d problem(s)", bad))
			}
			return nil
		},
	}
	fl := cmd.Flags()
	f.remote.flags(cmd)
	fl.StringVar(&f.targetName, "target", "", "fixture target `NAME`")
	fl.StringVar(&f.targetFile, "target-file", "", "target `FILE`")
	fl.StringVar(&f.fixtures, "fixtures", "", "`DIR` holding fixture targets")
	fl.DurationVar(&f.ioTimeout, "io-timeout", 10*time.Second, "time allowed for each network read or write")
	return cmd
}

// flags registers the remote flags shared by conform and doctor.
func (r *remoteSpec) flags(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&r.remote, "remote", "", "test a live server: `DOMAIN` (resolved by SRV like a client does) or its client STARTTLS port HOST:PORT")
	fl.StringVar(&r.remoteTLS, "remote-tls", "", "remote: direct TLS client port `HOST:PORT` (XEP-0368; default: from SRV)")
	fl.StringVar(&r.remoteS2S, "remote-s2s", "", "remote: server-to-server port `HOST:PORT` (default: from SRV)")
	fl.StringVar(&r.domain, "domain", "", "remote: the XMPP `DOMAIN` the server serves (default: --remote DOMAIN)")
	fl.StringArrayVar(&r.accounts, "account", nil, "remote: an existing test account `JID:PASSWORD` (repeatable; visible in ps: prefer --accounts-file or $"+accountsEnv+")")
	fl.StringVar(&r.accountsFile, "accounts-file", "", "remote: `FILE` of test accounts, one JID:PASSWORD a line (# comments)")
	fl.BoolVar(&r.ibr, "ibr", false, "remote: allow creating throwaway accounts (xmppcheck-throwaway-…) by in-band registration, removed at the end")
}

// loginFindings logs in as each supplied account.
func loginFindings(ctx context.Context, rr remoteResolved, ioTimeout time.Duration) []finding {
	var out []finding
	for _, a := range rr.accounts {
		jid := a.User + "@" + rr.domain
		c, err := xmppclient.Connect(ctx, rr.addrs.C2S, a.User, a.Password, xmppclient.WithDomain(rr.domain),
			xmppclient.WithInsecureSkipVerify(), xmppclient.WithTimeout(ioTimeout))
		if err != nil {
			out = append(out, finding{what: "login " + jid, detail: "login as " + a.User + " failed: " + loginReason(err),
				fix: "check the account exists and its password (--accounts-file or $" + accountsEnv + ")"})
			continue
		}
		c.Close(ctx)
		out = append(out, finding{ok: true, what: "login " + jid, detail: "logged in"})
	}
	return out
}

// loginReason is the SASL condition of a failed login, or the error.
func loginReason(err error) string {
	var se *xmppclient.SASLError
	if errors.As(err, &se) && se.Condition != "" {
		if se.Text != "" {
			// The server's own words tell a wrong password from a lockout
			// ("too many failed logins from your address").
			return fmt.Sprintf("%s (%q)", string(se.Condition), se.Text)
		}
		return string(se.Condition)
	}
	return err.Error()
}

func doctorRemote(ctx context.Context, rs remoteSpec, ioTimeout time.Duration) []finding {
	rr, err := rs.resolve(ctx)
	if err != nil {
		return []finding{{what: "remote", detail: err.Error(), fix: "give --remote HOST:PORT with --domain, or publish _xmpp-client._tcp SRV records"}}
	}
	var out []finding
	if rr.resolved {
		out = append(out, finding{ok: true, what: "SRV " + rs.remote, detail: fmt.Sprintf("c2s %s, direct TLS %s, s2s %s", orNone(rr.addrs.C2S), orNone(rr.addrs.C2STLS), orNone(rr.addrs.S2S))})
	}
	c, err := xmppclient.Dial(ctx, rr.addrs.C2S, xmppclient.WithDomain(rr.domain), xmppclient.WithInsecureSkipVerify(), xmppclient.WithTimeout(ioTimeout))
	if err != nil {
		return append(out, finding{what: "reach " + rr.addrs.C2S, detail: err.Error(),
			fix: "check the address and that the server serves " + rr.domain + " with STARTTLS"})
	}
	st := c.TLSState()
	c.Close(ctx)
	out = append(out, finding{ok: true, what: "reach " + rr.addrs.C2S, detail: "XMPP stream for " + rr.domain + " answered"})
	if st != nil {
		out = append(out, finding{ok: true, what: "tls", detail: tls.VersionName(st.Version) + ", " + tls.CipherSuiteName(st.CipherSuite)})
	}
	if len(rr.accounts) == 0 && !rs.ibr {
		out = append(out, finding{what: "accounts", detail: "no account supplied and --ibr not given: every claim needing accounts is not-testable",
			fix: "supply accounts (--accounts-file or $" + accountsEnv + ") or allow throwaway accounts with --ibr"})
	}
	out = append(out, loginFindings(ctx, rr, ioTimeout)...)
	if rs.ibr {
		c, err := xmppclient.Dial(ctx, rr.addrs.C2S, xmppclient.WithDomain(rr.domain), xmppclient.WithInsecureSkipVerify(), xmppclient.WithTimeout(ioTimeout))
		var form *xmppclient.RegistrationForm
		if err == nil {
			form, err = c.RegistrationForm(ctx)
			c.Close(ctx)
		}
		if err != nil {
			out = append(out, finding{what: "in-band registration", detail: "not offered: " + err.Error(),
				fix: "drop --ibr: the claims that remove accounts will be not-testable"})
		} else {
			out = append(out, finding{ok: true, what: "in-band registration", detail: "offered (" + strings.Join(form.Fields, ", ") + ")"})
		}
	}
	return out
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func doctorTarget(f doctorFlags) []finding {
	file, name, err := resolveTarget(f.targetName, f.targetFile, f.fixtures)
	if err != nil {
		return []finding{{what: "target", detail: err.Error(), fix: "name an embedded fixture target or give --target-file"}}
	}
	var out []finding
	if problems := lintTargetFile(file); len(problems) > 0 {
		for _, p := range problems {
			out = append(out, finding{what: "target file", detail: p.String(), fix: "xmppcheck target lint " + name})
		}
	} else {
		out = append(out, finding{ok: true, what: "target file", detail: name + " is valid"})
	}
	if ok, why := dockerenv.Available(); ok {
		out = append(out, finding{ok: true, what: "container engine", detail: "docker answers"})
	} else {
		out = append(out, finding{what: "container engine", detail: strings.TrimSpace(why), fix: "start a Docker engine (dockerd) and check `docker info`"})
	}
	return out
}

// preflight logs in as every supplied account before a remote run, so
// wrong credentials end the run at once with the reason, not in every
// claim.
func preflight(ctx context.Context, rr remoteResolved, ioTimeout time.Duration) error {
	for _, f := range loginFindings(ctx, rr, ioTimeout) {
		if !f.ok {
			return fmt.Errorf("preflight: %s (fix: %s)", f.detail, f.fix)
		}
	}
	return nil
}
