package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	tclog "github.com/testcontainers/testcontainers-go/log"

	itarget "github.com/xmppcheck/xmppcheck/internal/target"
	"github.com/xmppcheck/xmppcheck/internal/xmppclient"
	"github.com/xmppcheck/xmppcheck/loadgen"
	"github.com/xmppcheck/xmppcheck/reference"
	"github.com/xmppcheck/xmppcheck/spec/policies"
)

// startEmbeddedForLoad starts the reference server in-process on loopback
// with temporary data and key directories (removed afterwards), its log in
// the temporary directory, the test clock (nothing is purged during a
// run), and no per-address connection limit (every simulated user comes
// from 127.0.0.1). Accounts are created directly in its store.
func startEmbeddedForLoad(ctx context.Context, log io.Writer) (loadgen.Target, func(), loadgen.Provisioner, error) {
	pol, err := policies.LoadDefault()
	if err != nil {
		return loadgen.Target{}, nil, nil, fmt.Errorf("load: embedded server: %w", err)
	}
	tmp, err := os.MkdirTemp("", "xmppcheck-load-")
	if err != nil {
		return loadgen.Target{}, nil, nil, fmt.Errorf("load: embedded server: %w", err)
	}
	logFile, err := os.Create(filepath.Join(tmp, "server.log"))
	if err != nil {
		os.RemoveAll(tmp)
		return loadgen.Target{}, nil, nil, fmt.Errorf("load: embedded server: %w", err)
	}
	srv, err := reference.New(pol,
		reference.WithDataDir(filepath.Join(tmp, "data")),
		reference.WithKeyFile(filepath.Join(tmp, "at-rest.key")),
		reference.WithC2SAddr("127.0.0.1:0"),
		reference.WithC2STLSAddr(""),
		reference.WithControlSocket(""),
		reference.WithLogWriter(logFile),
		reference.WithTestClock(),
		reference.WithLimits(reference.Limits{MaxConnsPerAddr: -1}),
	)
	cleanup := func() {
		if srv != nil {
			srv.Close()
		}
		logFile.Close()
		os.RemoveAll(tmp)
	}
	if err != nil {
		cleanup()
		return loadgen.Target{}, nil, nil, fmt.Errorf("load: embedded server: %w", err)
	}
	if err := srv.Start(ctx); err != nil {
		cleanup()
		return loadgen.Target{}, nil, nil, fmt.Errorf("load: embedded server: %w", err)
	}
	fmt.Fprintf(log, "embedded reference server on %s (domain %s)\n", srv.Addrs().C2S, srv.Domain())
	t := loadgen.Target{Addr: srv.Addrs().C2S, Domain: srv.Domain(), InProcess: true}
	prov := func(ctx context.Context, a loadgen.Account) error {
		err := srv.CreateUser(ctx, a.User, a.Password)
		if errors.Is(err, reference.ErrUserExists) {
			return nil
		}
		return err
	}
	return t, cleanup, prov, nil
}

// loadTargetFile resolves --target NAME (fixtures/targets/NAME/target.yaml
// under --fixtures or the enclosing checkout) or --target-file FILE.
func loadTargetFile(name, file, fixtures string) (*itarget.File, error) {
	file, err := targetPath("load", name, file, fixtures)
	if err != nil {
		return nil, err
	}
	f, err := itarget.LoadFile(file)
	if err != nil {
		return nil, usageErr("load: %v", err)
	}
	return f, nil
}

// startLoadTarget builds (when the file says how) and starts the container
// a target file describes, with its ports on 127.0.0.1, and returns the
// target (direct TLS: the file's c2s_tls port), a cleanup that always
// terminates the container (also after an interrupt), and a provisioner
// that creates accounts as the file says (exec in the container, or
// in-band registration).
func startLoadTarget(ctx context.Context, f *itarget.File, mode xmppclient.TLSMode, log io.Writer, verbose bool) (loadgen.Target, func(), loadgen.Provisioner, error) {
	if mode == xmppclient.DirectTLS && f.Ports.C2STLS == 0 {
		return loadgen.Target{}, nil, nil, usageErr("load: --tls direct: target %s has no c2s_tls port", f.Name)
	}
	buildLog := io.Discard
	if verbose {
		buildLog = log
	} else {
		// testcontainers-go narrates every container step and the Docker
		// engine's details on its global logger; the CLI says what matters
		// itself.
		tclog.SetDefault(tclog.NewNoopLogger())
	}
	what := "starting"
	if f.Build != nil {
		what = "building (if changed) and starting"
	}
	fmt.Fprintf(log, "%s target %s (%s)…\n", what, f.Name, f.Path)
	c, err := itarget.Start(ctx, f, itarget.WithBuildLog(buildLog))
	if err != nil {
		return loadgen.Target{}, nil, nil, fmt.Errorf("load: %w", err)
	}
	cleanup := func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := c.Close(cctx); err != nil {
			fmt.Fprintf(log, "load: %v (remove it with: docker rm -f %s)\n", err, c.ID())
			return
		}
		fmt.Fprintf(log, "target %s: container stopped and removed\n", f.Name)
	}
	t := loadgen.Target{Name: f.Name, Addr: c.Addrs().C2S, Domain: f.Domain, TLSMode: mode}
	if mode == xmppclient.DirectTLS {
		t.Addr = c.Addrs().C2STLS
	}
	fmt.Fprintf(log, "target %s: container %s, c2s on %s (domain %s)\n", f.Name, c.ID()[:12], t.Addr, t.Domain)
	prov := func(ctx context.Context, a loadgen.Account) error {
		return c.CreateAccount(ctx, a.User, a.Password)
	}
	return t, cleanup, prov, nil
}
