// Package report is the result model of xmppcheck's conformance suite —
// the versioned JSON schema xmppcheck.report/v1 — and its renderings: a
// console table, JUnit XML, JSON, one self-contained HTML file for auditors
// (policy quote → verdict → evidence → transcript) and Markdown for CI step
// summaries.
//
// A report written as JSON can be read back with [Read] and rendered again
// in any format (`xmppcheck report --from r.json --html out.html`).
package report
