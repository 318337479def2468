package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/xmppcheck/xmppcheck/conformance/report"
)

// outputs are the report files a run or a re-render writes.
type outputs struct {
	junit, json, html, markdown, sarif string
}

func (o *outputs) flags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.junit, "junit", "", "write JUnit XML to `FILE` (\"-\" for standard output)")
	f.StringVar(&o.json, "json", "", "write the JSON report (schema xmppcheck.report/v1) to `FILE`")
	f.StringVar(&o.html, "html", "", "write one self-contained HTML report for auditors to `FILE`")
	f.StringVar(&o.markdown, "markdown", "", "write a Markdown summary (CI step summary) to `FILE`")
	f.StringVar(&o.sarif, "sarif", "", "write a SARIF 2.1.0 log (code-scanning interfaces) to `FILE`")
}

func (o *outputs) any() bool {
	return o.junit != "" || o.json != "" || o.html != "" || o.markdown != "" || o.sarif != ""
}

// toStdout reports whether a report goes to standard output ("-").
func (o *outputs) toStdout() bool {
	return o.junit == "-" || o.json == "-" || o.html == "-" || o.markdown == "-" || o.sarif == "-"
}

// write renders r into every requested file. Files are written whole or
// not at all (a temporary file renamed into place).
func (o *outputs) write(r *report.Report, stdout io.Writer) error {
	for _, w := range []struct {
		file   string
		render func(io.Writer, *report.Report) error
	}{
		{o.json, report.WriteJSON}, {o.junit, report.WriteJUnit}, {o.html, report.WriteHTML}, {o.markdown, report.WriteMarkdown},
		{o.sarif, report.WriteSARIF},
	} {
		if w.file == "" {
			continue
		}
		if err := writeFile(w.file, stdout, func(wr io.Writer) error { return w.render(wr, r) }); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(name string, stdout io.Writer, render func(io.Writer) error) error {
	if name == "-" {
		return render(stdout)
	}
	tmp, err := os.CreateTemp(dirOf(name), ".xmppcheck-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	defer os.Remove(tmp.Name())
	if err := render(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

func dirOf(name string) string {
	for i := len(name) - 1; i >= 0; i-- {
		if os.IsPathSeparator(name[i]) {
			return name[:i+1]
		}
	}
	return "."
}

// isTerminal reports whether w is a character device (a terminal) and the
// user has not asked for no colour (NO_COLOR).
func isTerminal(w io.Writer) bool {
	if os.Getenv("NO_COLOR") != "" {
		return false
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func newReportCmd() *cobra.Command {
	var (
		from    string
		out     outputs
		verbose bool
	)
	cmd := &cobra.Command{
		Use:   "report --from FILE [--html FILE] [--junit FILE] [--markdown FILE] [--json FILE] [--sarif FILE]",
		Short: "Render a saved conformance report (JSON) again, in any format",
		Long: `report reads a JSON report written by 'xmppcheck conform --json' (schema
xmppcheck.report/v1) and renders it again: as the console table (the default
when no output file is given), JUnit XML, the self-contained HTML report for
auditors, Markdown for a CI step summary, or JSON.

The exit status is 0 when the report was rendered (whatever its verdicts),
2 when it cannot be read.`,
		Example: `  xmppcheck conform --json r.json
  xmppcheck report --from r.json --html audit.html
  xmppcheck report --from r.json --markdown "$GITHUB_STEP_SUMMARY"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from == "" {
				return usageErr("report: --from FILE is required")
			}
			f, err := os.Open(from)
			if err != nil {
				return usageErr("report: %v", err)
			}
			defer f.Close()
			r, err := report.Read(f)
			if err != nil {
				return usageErr("report: %s: %v", from, err)
			}
			stdout := cmd.OutOrStdout()
			if !out.any() {
				return report.WriteConsole(stdout, r, report.WithColor(isTerminal(stdout)), report.WithVerbose(verbose))
			}
			if err := out.write(r, stdout); err != nil {
				return usageErr("report: %v", err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "the JSON report to read (`FILE`)")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "console: list the evidence of passing claims too")
	out.flags(cmd)
	return cmd
}
