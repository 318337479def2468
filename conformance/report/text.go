package report

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// ConsoleOption configures WriteConsole.
type ConsoleOption func(*consoleConfig)

type consoleConfig struct {
	color   bool
	verbose bool
}

// WithColor colours verdicts with ANSI escapes (for a terminal).
func WithColor(on bool) ConsoleOption { return func(c *consoleConfig) { c.color = on } }

// WithVerbose lists every evidence line, not only those of non-passing claims.
func WithVerbose(on bool) ConsoleOption { return func(c *consoleConfig) { c.verbose = on } }

var ansi = map[Verdict]string{Pass: "\x1b[32m", Fail: "\x1b[31m", NotTestable: "\x1b[33m", Error: "\x1b[35m"}

const ansiReset = "\x1b[0m"

// WriteConsole writes a table of verdicts, then the reasons and failing
// evidence of every claim that did not pass, then the summary.
func WriteConsole(w io.Writer, r *Report, opts ...ConsoleOption) error {
	var cfg consoleConfig
	for _, o := range opts {
		o(&cfg)
	}
	paint := func(v Verdict, s string) string {
		if !cfg.color {
			return s
		}
		return ansi[v] + s + ansiReset
	}
	fmt.Fprintf(w, "%s — target %s (%s)\n\n", r.Policy.Name, r.Target.Name, r.Target.Kind)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLAIM\tVERDICT\tTIME\tREASON")
	for _, res := range r.Results {
		v := string(res.Verdict)
		switch {
		case res.Waiver != nil && res.Waiver.Expired:
			v += " (waiver expired)"
		case res.Waived():
			v += " (waived)"
		case res.Failing(r.Strict) && res.Verdict == NotTestable:
			v += " (strict)"
		}
		// Pad before colouring so escapes do not upset the column widths.
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", res.Claim, paint(res.Verdict, fmt.Sprintf("%-12s", v)),
			fmtDuration(res.Duration), firstLine(res.Reason, 90))
	}
	tw.Flush()
	for _, res := range r.Results {
		if res.Verdict == Pass && !cfg.verbose {
			continue
		}
		fmt.Fprintf(w, "\n%s: %s\n", paint(res.Verdict, strings.ToUpper(string(res.Verdict))), res.Claim)
		fmt.Fprintf(w, "  policy %s: %q\n", sectionRef(res.Quote.Section), res.Quote.Text)
		if res.Reason != "" {
			fmt.Fprintf(w, "  reason: %s\n", res.Reason)
		}
		if wv := res.Waiver; wv != nil {
			fmt.Fprintf(w, "  waiver until %s%s: %s\n", wv.Expires, map[bool]string{true: " (EXPIRED: the run fails)", false: ""}[wv.Expired], wv.Reason)
		}
		for _, e := range res.Evidence {
			if e.OK && !cfg.verbose {
				continue
			}
			mark := "✓"
			if !e.OK {
				mark = "✗"
			}
			fmt.Fprintf(w, "  %s %s: %s\n", mark, e.What, e.Observed)
			for i, h := range e.Hits {
				if i == 5 {
					fmt.Fprintf(w, "      … %d more\n", len(e.Hits)-5)
					break
				}
				fmt.Fprintf(w, "      %s:%d (%s): %s\n", h.File, h.Line, h.Form, h.Context)
			}
		}
	}
	s := r.Summary
	waived := ""
	if s.Waived > 0 {
		waived = fmt.Sprintf(" (%d waived)", s.Waived)
	}
	fmt.Fprintf(w, "\n%d claims: %s, %s%s, %s, %s in %s\n", len(r.Results),
		paint(Pass, fmt.Sprintf("%d pass", s.Pass)), paint(Fail, fmt.Sprintf("%d fail", s.Fail)), waived,
		paint(NotTestable, fmt.Sprintf("%d not-testable", s.NotTestable)), paint(Error, fmt.Sprintf("%d error", s.Error)),
		fmtDuration(r.Duration))
	return nil
}

func fmtDuration(d Duration) string {
	ms := int64(d) / 1e6
	if ms < 1000 {
		return fmt.Sprintf("%dms", ms)
	}
	return fmt.Sprintf("%.1fs", float64(ms)/1000)
}

func firstLine(s string, n int) string {
	s, _, _ = strings.Cut(s, "\n")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// WriteMarkdown writes a summary for CI step summaries (GitHub's
// $GITHUB_STEP_SUMMARY, GitLab job reports): a verdict table and the
// reasons of every claim that did not pass.
func WriteMarkdown(w io.Writer, r *Report) error {
	icon := map[Verdict]string{Pass: "✅", Fail: "❌", NotTestable: "⚪", Error: "⚠️"}
	s := r.Summary
	fmt.Fprintf(w, "## xmppcheck conformance: %s\n\n", mdEscape(r.Policy.Name))
	fmt.Fprintf(w, "Target: %s (`%s`). %d pass, %d fail, %d not-testable, %d error",
		mdEscape(TargetWords(r.Target)), mdEscape(r.Target.Name), s.Pass, s.Fail, s.NotTestable, s.Error)
	if s.Waived > 0 {
		fmt.Fprintf(w, " (%d of the failures waived)", s.Waived)
	}
	if r.Strict {
		fmt.Fprint(w, " (strict: not-testable fails)")
	}
	fmt.Fprintf(w, ".\n\n| | Claim | Verdict | Policy | Reason |\n|---|---|---|---|---|\n")
	for _, res := range r.Results {
		fmt.Fprintf(w, "| %s | `%s` | %s | %s “%s” | %s |\n", icon[res.Verdict], res.Claim, verdictLabel(r, res),
			mdEscape(sectionRef(res.Quote.Section)), mdEscape(firstLine(res.Quote.Text, 80)), mdEscape(firstLine(res.Reason, 120)))
	}
	var details []Result
	for _, res := range r.Results {
		if res.Verdict != Pass {
			details = append(details, res)
		}
	}
	if len(details) > 0 {
		fmt.Fprintf(w, "\n### Not passing\n")
		for _, res := range details {
			fmt.Fprintf(w, "\n<details><summary>%s <code>%s</code>: %s</summary>\n\n", icon[res.Verdict], res.Claim, res.Verdict)
			fmt.Fprintf(w, "> %s\n\n%s\n\n", mdEscape(res.Quote.Text), mdEscape(res.Reason))
			for _, e := range res.Evidence {
				mark := "✓"
				if !e.OK {
					mark = "✗"
				}
				fmt.Fprintf(w, "- %s %s: %s\n", mark, mdEscape(e.What), mdEscape(e.Observed))
			}
			fmt.Fprintf(w, "\n</details>\n")
		}
	}
	return nil
}

var mdReplacer = strings.NewReplacer("|", `\|`, "<", "&lt;", ">", "&gt;", "\n", " ", "`", "'")

func mdEscape(s string) string { return mdReplacer.Replace(s) }
