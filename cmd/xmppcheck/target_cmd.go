package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/xmppcheck/xmppcheck/conformance/target"
	itarget "github.com/xmppcheck/xmppcheck/internal/target"
)

func newTargetCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "target",
		Short: "Check target files (fixture targets and your own)",
	}
	var fixturesDir string
	lint := &cobra.Command{
		Use:   "lint FILE|NAME...",
		Short: "Report every problem of target files, as FILE:LINE:COL with hints",
		Long: `lint reads target files (the format of --target-file, described in
CONTRIBUTING.md) and reports every problem at once — unknown keys with the
nearest known one, values of the wrong shape or type, missing or
inconsistent settings — each as FILE:LINE:COL: message (hint: …).

An argument without a slash that names a fixture target (prosody,
reference, …) lints that target's file.

Exit status: 0 no problem, 1 a problem, 2 usage error.`,
		Example: `  xmppcheck target lint deploy/xmppcheck/target.yaml
  xmppcheck target lint prosody`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n := 0
			for _, a := range args {
				for _, p := range lintTargetFile(targetArg(a, fixturesDir)) {
					fmt.Fprintln(cmd.OutOrStdout(), p)
					n++
				}
			}
			if n > 0 {
				return failed(fmt.Errorf("target lint: %d problem(s)", n))
			}
			return nil
		},
	}
	lint.Flags().StringVar(&fixturesDir, "fixtures", "", "`DIR` holding fixture targets")
	cmd.AddCommand(lint)
	return cmd
}

// targetArg is a FILE, or the file of fixture target NAME.
func targetArg(a, fixturesDir string) string {
	if p, err := targetPath("target", a, "", fixturesDir); err == nil && !containsSlash(a) {
		return p
	}
	return a
}

func containsSlash(s string) bool {
	for _, r := range s {
		if r == '/' || r == '\\' {
			return true
		}
	}
	return false
}

func lintTargetFile(path string) []itarget.Problem { return target.Lint(path) }
