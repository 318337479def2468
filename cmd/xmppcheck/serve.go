package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/xmppcheck/xmppcheck/reference"
)

const (
	defaultDataDir = "xmppcheck-data"
	defaultKeyFile = "xmppcheck-at-rest.key"
)

func newServeCmd() *cobra.Command {
	var (
		dataDir, keyFile, policyFile, domain, configFile string
		c2sAddr, c2sTLSAddr, s2sAddr, httpAddr, metrics  string
		testClock                                        bool
		logFormat, logLevel                              string
		s2sHosts                                         []string
		s2sStaticOnly                                    bool
		uploadURL                                        string
		uploadMaxSize, uploadQuota                       string
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the reference XMPP server, configured from a policy file",
		Long: `serve runs xmppcheck's reference XMPP server: a small server configured from
the policy file (the embedded JabberX policy by default) that keeps its promises
— STARTTLS required above the policy's TLS floor, SCRAM stored keys only, no
message archive, offline messages purged at the policy's age, rate-limited
in-band registration and account removal, no client address in any log except
failed logins, everything stored sealed with AES-256-GCM.

On first start it creates the data directory, a self-signed certificate in it
(tls/cert.pem) and a new at-rest key at --key-file, which must lie outside the
data directory. It prints the addresses it listens on and runs until SIGINT
or SIGTERM.

--test-clock runs the server on a test clock that moves only when told:
'xmppcheck admin clock advance 7d' (same --data and --key-file) moves it over
the data directory's control socket, and purges then run as if that time had
passed. Never use it in production.

Flags override the optional --config YAML file (see the reference package's
FileConfig for its keys: listeners, certificate, limits, log format).

The server raises its open-file limit to the hard limit, for many sessions.
Under abuse it keeps serving: every listener retries accept errors such as
"too many open files" with backoff; each address (an IPv6 /64) may hold 100
connections on c2s and direct TLS together, 100 on HTTPS upload, 100 on
metrics and 10 on s2s;
unauthenticated connections share a budget of half the open-file limit, so
that signed-in sessions and the admin socket keep their descriptors; stream
header, STARTTLS and TLS must be done within 10 s. A listener that dies for
good stops the server with exit status 2. It refuses to start, changing
nothing on disk, on a damaged, truncated or empty store, on a missing key file
beside an existing store, and on a key file that group or others can access.`,
		Example: `  # zero-config first start on loopback
  xmppcheck serve

  # a deployment
  xmppcheck serve --data /var/lib/xmppcheck --key-file /etc/xmppcheck/at-rest.key \
      --domain example.org --c2s 0.0.0.0:5222 --c2s-tls 0.0.0.0:5223 --metrics 127.0.0.1:9090

  # for tests: a test clock and random ports
  xmppcheck serve --test-clock --c2s 127.0.0.1:0 --c2s-tls 127.0.0.1:0

  # federation and file upload, with a peer pinned to a local address
  xmppcheck serve --domain a.example --s2s 127.0.0.1:5269 --http 127.0.0.1:5443 \
      --s2s-host b.example=127.0.0.1:5270 --s2s-static-only`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			flags := cmd.Flags()
			flag := func(name, value string) reference.Flag {
				return reference.Flag{Value: value, Given: flags.Changed(name)}
			}
			var fc *reference.FileConfig
			if configFile != "" {
				var err error
				if fc, err = reference.LoadConfig(configFile); err != nil {
					return usageErr("%w", err)
				}
			}
			var maxSize, quota int64
			var err error
			if uploadMaxSize != "" {
				if maxSize, err = parseBytes(uploadMaxSize); err != nil {
					return usageErr("--upload-max-size: %w", err)
				}
			}
			if uploadQuota != "" {
				if quota, err = parseBytes(uploadQuota); err != nil {
					return usageErr("--upload-quota: %w", err)
				}
			}
			cfg := reference.MergeServe(fc, reference.ServeFlags{
				Policy: flag("policy", policyFile), Data: flag("data", dataDir), KeyFile: flag("key-file", keyFile),
				Domain: flag("domain", domain), C2S: flag("c2s", c2sAddr), C2STLS: flag("c2s-tls", c2sTLSAddr),
				S2S: flag("s2s", s2sAddr), HTTP: flag("http", httpAddr), Metrics: flag("metrics", metrics),
				LogFormat: flag("log-format", logFormat), LogLevel: flag("log-level", logLevel),
				S2SHosts: s2sHosts, S2SStaticOnly: s2sStaticOnly, UploadURL: uploadURL,
				UploadMaxSize: maxSize, UploadQuota: quota, TestClock: testClock,
			})
			logger, err := newLogger(cmd.ErrOrStderr(), cfg.LogFormat, cfg.LogLevel)
			if err != nil {
				return err
			}
			pol, err := loadPolicy(cfg.Policy, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			opts, err := cfg.Options()
			if err != nil {
				return usageErr("%w", err)
			}
			opts = append(opts, reference.WithLogger(logger))
			srv, err := reference.New(pol, opts...)
			if err != nil {
				return usageErr("%w", err)
			}
			limit, lerr := reference.RaiseFileLimit()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if err := srv.Start(ctx); err != nil {
				return usageErr("%w", err)
			}
			defer srv.Close()
			out := cmd.OutOrStdout()
			keyMade, certMade := srv.Created()
			a := srv.Addrs()
			fmt.Fprintf(out, "xmppcheck reference server for %s (policy: %s)\n", srv.Domain(), pol.File)
			fmt.Fprintf(out, "  data directory: %s\n", srv.DataDir())
			fmt.Fprintf(out, "  at-rest key:    %s%s\n", srv.KeyFile(), ifThen(keyMade, " (created)"))
			if certMade {
				fmt.Fprintf(out, "  certificate:    %s/%s (self-signed, created)\n", srv.DataDir(), reference.CertFile)
			}
			for _, l := range []struct{ name, addr string }{
				{"c2s (STARTTLS)", a.C2S}, {"c2s (direct TLS)", a.C2STLS}, {"s2s", a.S2S},
				{"http (upload)", a.HTTP}, {"metrics", a.Metrics}, {"admin socket", a.Control},
			} {
				if l.addr != "" {
					fmt.Fprintf(out, "  %-17s %s\n", l.name+":", l.addr)
				}
			}
			if srv.TestClock() != nil {
				fmt.Fprintf(out, "  TEST CLOCK: time moves only with 'xmppcheck admin clock advance'\n")
			}
			if lerr == nil {
				fmt.Fprintf(out, "  open-file limit: %d\n", limit)
			}
			select {
			case <-ctx.Done():
			case <-srv.Done():
				// A listener died for good: stop loudly, not half alive.
				return usageErr("%w", srv.Err())
			}
			fmt.Fprintln(out, "shutting down")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data", defaultDataDir, "data directory (store, certificate, admin socket)")
	f.StringVar(&keyFile, "key-file", defaultKeyFile, "at-rest key file, created on first start; must be outside --data")
	f.StringVar(&policyFile, "policy", "", `policy file (default: the embedded JabberX policy; "-" also means it)`)
	f.StringVar(&domain, "domain", "localhost", "XMPP domain served")
	f.StringVar(&c2sAddr, "c2s", "127.0.0.1:5222", `client listener with STARTTLS ("" disables it)`)
	f.StringVar(&c2sTLSAddr, "c2s-tls", "127.0.0.1:5223", `client listener with direct TLS, XEP-0368 ("" disables it)`)
	f.StringVar(&s2sAddr, "s2s", "", "server-to-server listener (off by default)")
	f.StringArrayVar(&s2sHosts, "s2s-host", nil, "route s2s for a domain to an address instead of DNS, DOMAIN=HOST:PORT (repeatable)")
	f.BoolVar(&s2sStaticOnly, "s2s-static-only", false, "reach only the domains given with --s2s-host (no DNS lookups)")
	f.StringVar(&httpAddr, "http", "", "HTTP File Upload listener, HTTPS (off by default)")
	f.StringVar(&uploadMaxSize, "upload-max-size", "", "largest file an upload slot is issued for, e.g. 100MiB (default 100MiB)")
	f.StringVar(&uploadQuota, "upload-quota", "", "bytes one user may hold in uploads and open slots, e.g. 1GiB (default 1GiB)")
	f.StringVar(&uploadURL, "upload-url", "", "base of upload slot URLs (default: the --http address, or https://upload.DOMAIN:PORT when it listens on all interfaces)")
	f.StringVar(&metrics, "metrics", "", "Prometheus /metrics listener, loopback only (off by default)")
	f.StringVar(&configFile, "config", "", "optional YAML configuration file; flags override it")
	f.BoolVar(&testClock, "test-clock", false, "run on a test clock moved by 'xmppcheck admin clock advance' (tests only)")
	f.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	return cmd
}

func ifThen(b bool, s string) string {
	if b {
		return s
	}
	return ""
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usageErr("--log-level: %v", err)
	}
	o := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, o)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, o)), nil
	}
	return nil, usageErr("--log-format must be text or json, not %q", format)
}

// parseBytes reads a size such as 512, 64KiB, 100MiB or 2GiB (also kB, MB,
// GB as powers of 1000).
func parseBytes(s string) (int64, error) {
	units := []struct {
		suffix string
		mul    int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"kB", 1e3}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	mul := int64(1)
	num := strings.TrimSpace(s)
	for _, u := range units {
		if n, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mul = strings.TrimSpace(n), u.mul
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mul {
		return 0, fmt.Errorf("%q is not a size such as 100MiB", s)
	}
	return n * mul, nil
}
