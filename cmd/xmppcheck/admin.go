package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/xmppcheck/xmppcheck/reference"
	"github.com/xmppcheck/xmppcheck/reference/control"
	"github.com/xmppcheck/xmppcheck/reference/store"
)

// adminEnv is what every admin subcommand needs.
type adminEnv struct {
	dataDir, keyFile, policyFile, domain string
	timeout                              time.Duration
}

func newAdminCmd() *cobra.Command {
	env := &adminEnv{}
	cmd := &cobra.Command{
		Use:   "admin",
		Short: "Manage the reference server's accounts, store and test clock",
		Long: `admin manages a reference server's data directory.

While 'xmppcheck serve' runs on the data directory, admin talks to it over the
control socket DATA/admin.sock (a Unix socket, mode 0600; each request proves
knowledge of the key in --key-file). When no server runs, admin opens the store
itself. It never touches a store another process holds: if the store is locked
and no server answers on the socket, it says so and stops.

Passwords are read from standard input (first line), never from the command
line.`,
		Example: `  echo 's3cret' | xmppcheck admin --data DIR --key-file KEY user add alice@localhost
  xmppcheck admin --data DIR --key-file KEY user list
  xmppcheck admin --data DIR --key-file KEY user delete alice
  xmppcheck admin --data DIR --key-file KEY clock advance 7d   # server started with --test-clock
  xmppcheck admin --data DIR --key-file KEY dump               # the store, opened, as JSON lines`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&env.dataDir, "data", defaultDataDir, "the server's data directory")
	pf.StringVar(&env.keyFile, "key-file", defaultKeyFile, "the server's at-rest key file")
	pf.StringVar(&env.policyFile, "policy", "", "policy file, used when no server runs (SCRAM iteration count)")
	pf.StringVar(&env.domain, "domain", "localhost", "XMPP domain, used when no server runs")
	pf.DurationVar(&env.timeout, "timeout", time.Minute, "how long to wait for a running server's answer before giving up with an error")

	user := &cobra.Command{Use: "user", Short: "Add, delete, list accounts and set passwords"}
	user.AddCommand(
		&cobra.Command{
			Use: "add JID", Short: "Create an account (password from standard input)", Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				pass, err := readPassword(cmd.InOrStdin())
				if err != nil {
					return err
				}
				if _, err := env.do(cmd.Context(), control.Request{Op: control.OpUserAdd, User: args[0], Password: pass}); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "created %s\n", args[0])
				return nil
			},
		},
		&cobra.Command{
			Use: "delete JID", Short: "Delete an account and everything it owns (roster, vCard, offline messages, uploads)", Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				if _, err := env.do(cmd.Context(), control.Request{Op: control.OpUserDelete, User: args[0]}); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "deleted %s\n", args[0])
				return nil
			},
		},
		&cobra.Command{
			Use: "passwd JID", Short: "Set an account's password (from standard input)", Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				pass, err := readPassword(cmd.InOrStdin())
				if err != nil {
					return err
				}
				if _, err := env.do(cmd.Context(), control.Request{Op: control.OpUserPassword, User: args[0], Password: pass}); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "password set for %s\n", args[0])
				return nil
			},
		},
		&cobra.Command{
			Use: "list", Short: "List accounts", Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				resp, err := env.do(cmd.Context(), control.Request{Op: control.OpUserList})
				if err != nil {
					return err
				}
				for _, u := range resp.Users {
					fmt.Fprintln(cmd.OutOrStdout(), u)
				}
				return nil
			},
		},
	)
	clk := &cobra.Command{
		Use:   "clock",
		Short: "Read or move the test clock of a server started with --test-clock",
		Long: `clock talks to a running server started with --test-clock. 'advance' moves its
clock forward and returns once every purge that became due has run, so a test
can check retention right after it. A server on the real clock refuses.`,
	}
	clk.AddCommand(
		&cobra.Command{
			Use: "advance DURATION", Short: "Move the test clock forward (7d, 36h, 90m, 30s)", Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				resp, err := env.call(cmd.Context(), control.Request{Op: control.OpClockAdvance, Duration: args[0]})
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), resp.Now)
				return nil
			},
		},
		&cobra.Command{
			Use: "now", Short: "Print the test clock's time", Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				resp, err := env.call(cmd.Context(), control.Request{Op: control.OpClockNow})
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), resp.Now)
				return nil
			},
		},
	)
	var scramOnly bool
	dump := &cobra.Command{
		Use:   "dump",
		Short: "Print every record of the store, opened with the key, as JSON lines",
		Long: `dump prints what the server stores, decrypted: one JSON object per record with
its bucket, key (hexadecimal) and value. It is the evidence an auditor reads
alongside the raw data directory (which holds only sealed values).

--scram prints only the SCRAM records, one line per account and hash:
"scram USER@DOMAIN HASH ITERATIONS SALT STOREDKEY SERVERKEY" (base64).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			op := control.OpDump
			if scramOnly {
				op = control.OpDumpSCRAM
			}
			resp, err := env.do(cmd.Context(), control.Request{Op: op})
			if err != nil {
				return err
			}
			fmt.Fprint(cmd.OutOrStdout(), resp.Dump)
			return nil
		},
	}
	dump.Flags().BoolVar(&scramOnly, "scram", false, "print only the SCRAM credential records")
	cmd.AddCommand(user, clk, dump)
	return cmd
}

func readPassword(r io.Reader) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", usageErr("reading the password from standard input: %w", err)
	}
	pass := strings.TrimRight(line, "\r\n")
	if pass == "" {
		return "", usageErr("no password on standard input (pipe it in: echo PASSWORD | xmppcheck admin user add JID)")
	}
	return pass, nil
}

// call sends req to the running server. Its errors wrap control's, so
// that errors.Is tells control.ErrNoServer apart.
func (e *adminEnv) call(ctx context.Context, req control.Request) (control.Response, error) {
	key, err := store.ReadKey(e.keyFile)
	if err != nil {
		return control.Response{}, usageErr("%w", err)
	}
	if e.timeout <= 0 {
		return control.Response{}, usageErr("--timeout must be positive")
	}
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	resp, err := control.Call(ctx, filepath.Join(e.dataDir, control.SocketName), store.DeriveKey(key, control.KeyLabel), req)
	switch {
	case errors.Is(err, control.ErrNoServer):
		return resp, usageHint(err, "no server runs on %s: start 'xmppcheck serve --data %s' first", e.dataDir, e.dataDir)
	case errors.Is(err, control.ErrTimeout):
		return resp, usageErr("%w (--timeout %s)", err, e.timeout)
	case err != nil:
		return resp, usageErr("%w", err)
	}
	return resp, nil
}

// do sends req to the running server or, when none runs, carries it out on
// the store directly.
func (e *adminEnv) do(ctx context.Context, req control.Request) (control.Response, error) {
	resp, err := e.call(ctx, req)
	if !errors.Is(err, control.ErrNoServer) {
		return resp, err
	}
	pol, err := loadPolicy(e.policyFile, io.Discard)
	if err != nil {
		return control.Response{}, err
	}
	domain := e.domain
	if at := strings.IndexByte(req.User, '@'); at >= 0 {
		domain = strings.SplitN(req.User[at+1:], "/", 2)[0]
	}
	srv, err := reference.New(pol, reference.WithDataDir(e.dataDir), reference.WithKeyFile(e.keyFile), reference.WithDomain(domain),
		reference.WithC2SAddr(""), reference.WithC2STLSAddr(""), reference.WithControlSocket(""))
	if err != nil {
		return control.Response{}, usageErr("%w", err)
	}
	if err := srv.Start(ctx); err != nil {
		if errors.Is(err, store.ErrLocked) {
			return control.Response{}, usageHint(err, "%s is locked by another process and no server answers on its admin socket; stop that process or check --data", e.dataDir)
		}
		return control.Response{}, usageErr("%w", err)
	}
	defer srv.Close()
	resp, err = srv.Control(ctx, req)
	if err != nil {
		return resp, failed(err)
	}
	return resp, nil
}
