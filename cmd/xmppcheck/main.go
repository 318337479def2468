// Command xmppcheck proves, by testing, that an XMPP server keeps the
// promises of its privacy policy, and measures how much load it carries.
//
// Subcommands: serve (the reference server), admin (its accounts and test
// clock), conform (the conformance suite), load (the load generator), policy
// (lint, show and coverage of policy files) and report (re-render a report).
//
// Exit codes: 0 ok, 1 a check failed, 2 usage, input or infrastructure error.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// Exit codes shared by every subcommand.
const (
	exitOK     = 0
	exitFailed = 1 // a check failed: a claim, a lint, a threshold
	exitUsage  = 2 // usage, input or infrastructure error
)

// exitError carries an exit code out of a command. Its message, if any, is
// printed to standard error.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// failed returns an error that makes xmppcheck exit 1 (a check failed).
func failed(err error) error { return &exitError{code: exitFailed, err: err} }

// usageErr returns an error that makes xmppcheck exit 2. Wrap an error
// with %w, not %v, so that errors.Is and errors.As still see it.
func usageErr(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// usageHint returns an error that makes xmppcheck exit 2 and prints the
// message in place of err's own text, while errors.Is and errors.As still
// see err.
func usageHint(err error, format string, args ...any) error {
	return &exitError{code: exitUsage, err: &hinted{msg: fmt.Sprintf(format, args...), err: err}}
}

// hinted is an error told to the user in other words than its cause's.
type hinted struct {
	msg string
	err error
}

func (h *hinted) Error() string { return h.msg }
func (h *hinted) Unwrap() error { return h.err }

// silent makes xmppcheck exit with code without printing anything more.
func silent(code int) error { return &exitError{code: code} }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the command line args and returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(stderr, "xmppcheck:", ee.err)
		}
		return ee.code
	}
	// Anything else is a usage error from cobra (unknown flag or command,
	// bad argument count) or an input error.
	fmt.Fprintln(stderr, "xmppcheck:", err)
	return exitUsage
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "xmppcheck",
		Short: "Prove an XMPP server keeps its privacy promises, and measure its load",
		Long: `xmppcheck proves, by testing, that an XMPP server keeps the promises of its
privacy policy, and measures how much load it carries.

A policy file (YAML) turns each promise of a privacy policy into a typed claim
tied to the sentence it comes from. The conformance suite tests every claim
against a server: the embedded reference server (default), a server in a
container, or a remote deployment.

Exit codes: 0 ok, 1 a check failed, 2 usage, input or infrastructure error.`,
		Version:       versionString(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	// --version without a -v shorthand: -v is --verbose in the subcommands.
	root.Flags().Bool("version", false, "print the version and exit")
	root.SetVersionTemplate("xmppcheck version {{.Version}}\n")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageErr("%v\nRun '%s --help' for usage.", err, c.CommandPath())
	})
	root.AddCommand(
		newServeCmd(),
		newAdminCmd(),
		newConformCmd(),
		newLoadCmd(),
		newPolicyCmd(),
		newReportCmd(),
		newTargetCmd(),
		newDoctorCmd(),
		newVersionCmd(),
	)
	return root
}
