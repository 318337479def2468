package report

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"strings"
)

//go:embed report.html.tmpl
var htmlTemplate string

var htmlTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"dur":   fmtDuration,
	"sec":   sectionRef,
	"join":  strings.Join,
	"lower": strings.ToLower,
	"failing": func(r *Report, res Result) bool {
		return res.Failing(r.Strict)
	},
	"byConcern": byConcern,
	"params":    paramList,
	"words":     TargetWords,
	"label":     verdictLabel,
	"count": func(r *Report, v string) int {
		n := 0
		for _, res := range r.Results {
			if string(res.Verdict) == v {
				n++
			}
		}
		return n
	},
}).Parse(htmlTemplate))

// sectionRef writes "§4" for a numbered section and the name otherwise
// ("Terms of Service").
func sectionRef(s string) string {
	if s != "" && s[0] >= '0' && s[0] <= '9' {
		return "§" + s
	}
	return s
}

// WriteHTML writes the report as one self-contained HTML file: no script,
// no external style sheet, font or image, so it opens offline and can be
// archived as it is. For each claim it shows the policy's quote, the
// verdict and reason, the evidence and the protocol transcript.
func WriteHTML(w io.Writer, r *Report) error {
	if err := htmlTmpl.Execute(w, r); err != nil {
		return fmt.Errorf("report: write html: %w", err)
	}
	return nil
}
