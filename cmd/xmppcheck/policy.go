package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/xmppcheck/xmppcheck/spec"
	"github.com/xmppcheck/xmppcheck/spec/policies"
)

func newPolicyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Lint, show and check the coverage of policy files",
		Long: `A policy file (YAML) lists the claims of a privacy policy: each an instance
of a claim kind xmppcheck can test, with its parameters and the verbatim
sentence of the source document it comes from.

FILE may be "-" for the default policy embedded in xmppcheck
(spec/policies/jabberx.yaml).`,
	}
	cmd.AddCommand(newPolicyLintCmd(), newPolicyShowCmd(), newPolicyCoverageCmd(), newPolicyKindsCmd())
	return cmd
}

// loadPolicy loads file, or the embedded default when file is "" or "-".
// Diagnostics are printed to w and turned into an exit-2 error.
func loadPolicy(file string, w io.Writer) (*spec.Policy, error) {
	var p *spec.Policy
	var err error
	if file == "" || file == "-" {
		p, err = policies.LoadDefault()
	} else {
		p, err = spec.Load(file)
	}
	var ds spec.Diagnostics
	if errors.As(err, &ds) {
		for _, d := range ds {
			fmt.Fprintln(w, d)
		}
		return nil, &exitError{code: exitUsage, err: &policyProblems{file: file, ds: ds}}
	}
	if err != nil {
		return nil, usageErr("%v", err)
	}
	return p, nil
}

func newPolicyLintCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "lint FILE",
		Short: "Validate a policy file and report every problem with line and column",
		Long: `lint checks a policy file and reports ALL problems at once, each as
FILE:LINE:COL: message (hint: …): unknown claim ids (with the nearest valid
one), missing, ill-typed or out-of-range parameters, duplicate claims, unknown
keys, and quotes that are not verbatim in the source document (whitespace
aside) or not in the section given.

Exit status: 0 the file is valid, 1 it has problems, 2 it cannot be read.`,
		Example: `  xmppcheck policy lint spec/policies/jabberx.yaml`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := loadPolicy(args[0], cmd.ErrOrStderr())
			if pp := new(policyProblems); errors.As(err, &pp) {
				return failed(pp) // the file was read and has problems: a check failed
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: ok: %s, %s, %s\n",
				args[0], plural(len(p.Claims), "claim"), plural(len(p.Statements), "statement"), plural(len(p.Conflicts), "conflict"))
			return nil
		},
	}
}

// claimView is the JSON form of a claim in `policy show`.
type claimView struct {
	ID       spec.ClaimID      `json:"id"`
	Family   spec.Family       `json:"family"`
	Title    string            `json:"title"`
	Params   spec.Params       `json:"params"`
	Section  string            `json:"section"`
	Quote    string            `json:"quote"`
	Also     []spec.Quote      `json:"also,omitempty"`
	Notes    string            `json:"notes,omitempty"`
	Needs    []spec.Capability `json:"needs"`
	Refs     []string          `json:"refs,omitempty"`
	FileLine int               `json:"line"`
}

type policyView struct {
	Schema      string             `json:"schema"`
	Policy      string             `json:"policy"`
	Updated     string             `json:"updated,omitempty"`
	Source      string             `json:"source"`
	File        string             `json:"file"`
	Claims      []claimView        `json:"claims"`
	Statements  []spec.Statement   `json:"statements"`
	Conflicts   []spec.Conflict    `json:"conflicts"`
	Boilerplate []spec.Boilerplate `json:"boilerplate"`
}

func viewOf(p *spec.Policy) policyView {
	v := policyView{
		Schema: "xmppcheck.policy/v1", Policy: p.Name, Source: p.Source, File: p.File,
		Statements: p.Statements, Conflicts: p.Conflicts, Boilerplate: p.Boilerplate,
	}
	if !p.Updated.IsZero() {
		v.Updated = p.Updated.Format("2006-01-02")
	}
	for _, c := range p.Claims {
		k := c.Kind()
		v.Claims = append(v.Claims, claimView{
			ID: c.ID, Family: k.Family(), Title: k.Title, Params: c.Params,
			Section: c.Section, Quote: c.Text, Also: c.Also, Notes: c.Notes,
			Needs: k.Needs, Refs: k.Refs, FileLine: c.Pos.Line,
		})
	}
	return v
}

func newPolicyShowCmd() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "show FILE",
		Short: "List the claims of a policy file with their parameters and quotes",
		Example: `  xmppcheck policy show spec/policies/jabberx.yaml
  xmppcheck policy show --format json spec/policies/jabberx.yaml | jq '.claims[].id'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "table" && format != "json" {
				return usageErr("--format must be table or json, not %q", format)
			}
			p, err := loadPolicy(args[0], cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if format == "json" {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(viewOf(p))
			}
			fmt.Fprintf(out, "%s (updated %s)\nsource: %s\n\n", p.Name, p.Updated.Format("2006-01-02"), p.Source)
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "CLAIM\tPARAMS\tNEEDS\t§\tQUOTE")
			for _, c := range p.Claims {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.ID, formatParams(c.Params), formatNeeds(c.Kind().Needs), c.Section, ellipsis(c.Text, 70))
			}
			tw.Flush()
			fmt.Fprintf(out, "\n%s, %s, %s\n", plural(len(p.Claims), "claim"), plural(len(p.Statements), "untestable statement"), plural(len(p.Conflicts), "conflict"))
			for _, cf := range p.Conflicts {
				fmt.Fprintf(out, "conflict (%s): tests §%s via %v\n", cf.About, cf.Tested, cf.Claims)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "table", "output format: table or json")
	return cmd
}

func formatParams(ps spec.Params) string {
	if len(ps) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(ps))
	for k := range ps {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + ps[k].String()
	}
	return strings.Join(parts, " ")
}

func formatNeeds(cs []spec.Capability) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = string(c)
	}
	return strings.Join(parts, ",")
}

func ellipsis(s string, n int) string {
	r := []rune(spec.NormalizeSpace(s))
	if len(r) <= n {
		return string(r)
	}
	return string(r[:n-1]) + "…"
}

func newPolicyCoverageCmd() *cobra.Command {
	var format string
	var all bool
	cmd := &cobra.Command{
		Use:   "coverage FILE",
		Short: "Show what accounts for every sentence of the policy's source document",
		Long: `coverage splits the source document into sentences and prints, for each, the
claim, untestable statement, recorded conflict or boilerplate mark that
accounts for it; then lists the sentences nothing accounts for.

Exit status is 0 when every sentence is accounted for and 1 when some are not.`,
		Example: `  xmppcheck policy coverage spec/policies/jabberx.yaml`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "table" && format != "json" {
				return usageErr("--format must be table or json, not %q", format)
			}
			p, err := loadPolicy(args[0], cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			cov := p.Coverage()
			var missing []spec.SentenceCoverage
			for _, s := range cov {
				if !s.Accounted() {
					missing = append(missing, s)
				}
			}
			out := cmd.OutOrStdout()
			if format == "json" {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(map[string]any{"sentences": cov, "unaccounted": len(missing)}); err != nil {
					return err
				}
			} else {
				tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "LINE\t§\tACCOUNTED FOR BY\tSENTENCE")
				counts := map[spec.Mark]int{}
				for _, s := range cov {
					marks := describeAccounts(s.Accounts)
					for _, a := range s.Accounts {
						counts[a.Mark]++
					}
					if !all && len(s.Accounts) == 1 && s.Accounts[0].Mark == spec.MarkHeading {
						continue
					}
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", s.Line, s.Section, marks, ellipsis(s.Text, 80))
				}
				tw.Flush()
				fmt.Fprintf(out, "\n%d sentences: %d by claims, %d by statements, %d by conflicts, %d boilerplate, %d headings; %d unaccounted\n",
					len(cov), counts[spec.MarkClaim], counts[spec.MarkStatement], counts[spec.MarkConflict], counts[spec.MarkBoilerplate], counts[spec.MarkHeading], len(missing))
				for _, s := range missing {
					fmt.Fprintf(out, "UNACCOUNTED line %d (§%s): %s\n", s.Line, s.Section, s.Text)
				}
			}
			if len(missing) > 0 {
				return failed(fmt.Errorf("%d sentence(s) of %s are accounted for by no claim, statement or boilerplate entry", len(missing), p.Source))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "table", "output format: table or json")
	cmd.Flags().BoolVar(&all, "all", false, "also list headings")
	return cmd
}

func describeAccounts(as []spec.Account) string {
	if len(as) == 0 {
		return string(spec.MarkNone)
	}
	var parts []string
	for _, a := range as {
		switch a.Mark {
		case spec.MarkClaim:
			parts = append(parts, a.Ref)
		case spec.MarkConflict:
			parts = append(parts, "conflict:"+a.Ref)
		case spec.MarkHeading:
			parts = append(parts, "heading")
		default:
			parts = append(parts, string(a.Mark))
		}
	}
	slices.Sort(parts)
	return strings.Join(slices.Compact(parts), ", ")
}

func newPolicyKindsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "kinds",
		Short: "List the claim kinds xmppcheck can test, with their parameters",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			for _, k := range spec.Kinds() {
				fmt.Fprintf(out, "%s — %s\n  passes when: %s\n  needs: %s\n", k.ID, k.Title, k.Passes, formatNeeds(k.Needs))
				if len(k.Refs) > 0 {
					fmt.Fprintf(out, "  refs: %s\n", strings.Join(k.Refs, ", "))
				}
				for _, p := range k.Params {
					def := "default " + p.Default
					if p.Required {
						def = "required"
					}
					fmt.Fprintf(out, "  param %s (%s, %s): %s\n", p.Name, p.Type, def, p.Doc)
				}
			}
			return nil
		},
	}
}

// plural is "1 conflict", "2 conflicts".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// policyProblems is a policy file's diagnostics, already printed one a line.
type policyProblems struct {
	file string
	ds   spec.Diagnostics
}

func (p *policyProblems) Error() string { return fmt.Sprintf("%s: %d problem(s)", p.file, len(p.ds)) }
func (p *policyProblems) Unwrap() error { return p.ds }
