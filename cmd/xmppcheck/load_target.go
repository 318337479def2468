package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

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

// startLoadTarget starts the fixture container fixtures/targets/NAME.
func startLoadTarget(ctx context.Context, name string, log io.Writer) (loadgen.Target, func(), loadgen.Provisioner, error) {
	return loadgen.Target{}, nil, nil, fmt.Errorf("load: --target is not available yet: give --server HOST:PORT")
}
