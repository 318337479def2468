package ci

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rhysd/actionlint"
	"go.yaml.in/yaml/v3"
)

// stub writes a fake xmppcheck that records its arguments (one a line),
// writes a summary where --markdown says, and exits with code.
func stub(t *testing.T, dir, code string) string {
	t.Helper()
	p := filepath.Join(dir, "xmppcheck")
	script := `#!/usr/bin/env bash
printf '%s\n' "$@" > "` + dir + `/args"
while [ $# -gt 0 ]; do
  if [ "$1" = --markdown ]; then echo "## summary from xmppcheck" > "$2"; fi
  shift
done
exit ` + code + "\n"
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// strict decodes path into v, refusing keys v does not define.
func strict(t *testing.T, path string, v any) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return raw
}

var exprRe = regexp.MustCompile(`\$\{\{[^}]*\}\}`)

// TestGitHubAction (issue 12, item 7): the action's metadata decodes
// strictly; no input is pasted into a script (only env: and with: carry
// expressions into steps); the conform step, run by bash with a fake
// xmppcheck, passes every input as one argument, writes outputs and the
// step summary, and names the artifact uniquely per job and inputs.
func TestGitHubAction(t *testing.T) {
	var action actionMetadata
	raw := strict(t, "github/action.yml", &action)
	if action.Runs.Using != "composite" || !action.Inputs["target-file"].Required || action.Name == "" || action.Description == "" {
		t.Fatalf("not a composite action with a name, a description and a required target-file")
	}
	for name, o := range action.Outputs {
		if o.Value == "" {
			t.Errorf("output %s has no value (required for composite actions)", name)
		}
	}
	for _, ref := range strings.Split(string(raw), "inputs.")[1:] {
		name := strings.FieldsFunc(ref, func(r rune) bool { return r == ' ' || r == '}' || r == '\n' || r == '!' || r == '=' })[0]
		if _, ok := action.Inputs[name]; !ok {
			t.Errorf("uses undeclared input %q", name)
		}
	}
	var script string
	uploads := 0
	for _, s := range action.Runs.Steps {
		if m := exprRe.FindString(s.Run); m != "" {
			t.Errorf("step %q pastes %s into its script: pass it through env:", s.Name, m)
		}
		if s.Run != "" && s.Shell == "" {
			t.Errorf("step %q: composite run steps need shell:", s.Name)
		}
		if s.ID == "conform" {
			script = s.Run
		}
		if strings.HasPrefix(s.Uses, "actions/upload-artifact@") {
			uploads++
			if !strings.Contains(s.With["name"], "steps.conform.outputs.artifact-name") {
				t.Errorf("artifact name %q is fixed: it collides in a matrix", s.With["name"])
			}
		}
		if strings.Contains(s.Uses, "junit") && !strings.Contains(s.With["report_paths"], "junit") {
			t.Errorf("JUnit check step without the report: %+v", s.With)
		}
	}
	if script == "" || uploads != 1 {
		t.Fatalf("conform step %v, %d upload steps", script != "", uploads)
	}
	names := map[string]string{}
	for _, tt := range []struct {
		code, strict, claims, target string
		wantArgs                     []string
	}{
		{"0", "false", "", "t.yaml", []string{"--target-file\nt.yaml\n", "--junit\n", "--sarif\n"}},
		{"1", "true", "tls.*", "my target.yaml", []string{"--strict\n", "--claims\ntls.*\n", "--target-file\nmy target.yaml\n"}},
	} {
		dir := t.TempDir()
		stub(t, dir, tt.code)
		// a file the glob tls.* would match if it reached the shell unquoted
		os.WriteFile(filepath.Join(dir, "tls.example"), nil, 0o644)
		out, summary := filepath.Join(dir, "out"), filepath.Join(dir, "summary")
		cmd := exec.Command("bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "RUNNER_TEMP="+dir, "GITHUB_OUTPUT="+out, "GITHUB_STEP_SUMMARY="+summary, "GITHUB_JOB=conformance",
			"TARGET_FILE="+tt.target, "POLICY=", "CLAIMS="+tt.claims, "STRICT="+tt.strict, "TIMEOUT=60s", "OUT=rep", "WAIVERS=", "ARTIFACT_NAME=")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("the step must not fail itself (the verdict step does): %v\n%s", err, b)
		}
		got, _ := os.ReadFile(out)
		if !strings.Contains(string(got), "exit-code="+tt.code+"\n") || !strings.Contains(string(got), "junit=rep/junit.xml\n") {
			t.Errorf("GITHUB_OUTPUT = %q", got)
		}
		m := regexp.MustCompile(`artifact-name=(xmppcheck-conformance-[0-9a-f]{10})\n`).FindStringSubmatch(string(got))
		if m == nil {
			t.Errorf("no artifact name in %q", got)
		} else {
			names[m[1]] = tt.target
		}
		sum, _ := os.ReadFile(summary)
		if !strings.Contains(string(sum), "summary from xmppcheck") {
			t.Errorf("step summary not written: %q", sum)
		}
		args, _ := os.ReadFile(filepath.Join(dir, "args"))
		for _, w := range tt.wantArgs {
			if !strings.Contains(string(args), w) {
				t.Errorf("args lack %q:\n%s", w, args)
			}
		}
	}
	if len(names) != 2 {
		t.Errorf("two matrix jobs got the same artifact name: %v", names)
	}
}

// TestWorkflowExample (issue 12, item 7): the complete example workflow
// passes actionlint, and so does the same workflow calling this
// repository's action locally (so actionlint checks its inputs against
// action.yml). It checks out the repository and pins the action to a tag.
func TestWorkflowExample(t *testing.T) {
	raw, err := os.ReadFile("github/example-workflow.yml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), "uses: actions/checkout@") {
		t.Error("the example does not check out the repository")
	}
	if regexp.MustCompile(`ci/github@(main|master)\b`).Match(raw) {
		t.Error("the example pins the action to a branch")
	}
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, ".github", "workflows"), 0o755)
	os.MkdirAll(filepath.Join(root, "ci", "github"), 0o755)
	act, _ := os.ReadFile("github/action.yml")
	os.WriteFile(filepath.Join(root, "ci", "github", "action.yml"), act, 0o644)
	local := regexp.MustCompile(`xmppcheck/xmppcheck/ci/github@\S+`).ReplaceAll(raw, []byte("./ci/github"))
	if bytes.Equal(local, raw) {
		t.Fatal("the example does not use the action")
	}
	proj, err := actionlint.NewProject(root)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	l, err := actionlint.NewLinter(&logs, &actionlint.LinterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string][]byte{"example.yml": raw, "local.yml": local} {
		p := filepath.Join(root, ".github", "workflows", name)
		os.WriteFile(p, body, 0o644)
		errs, err := l.LintFile(p, proj)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range errs {
			t.Errorf("actionlint %s:%d:%d: %s [%s]", name, e.Line, e.Column, e.Message, e.Kind)
		}
	}
	// The check must be able to fail: an undeclared input is caught.
	bad := bytes.Replace(local, []byte("strict: \"true\""), []byte("strickt: \"true\""), 1)
	p := filepath.Join(root, ".github", "workflows", "bad.yml")
	os.WriteFile(p, bad, 0o644)
	if errs, _ := l.LintFile(p, proj); len(errs) == 0 {
		t.Error("actionlint accepted an input the action does not declare")
	}
}

// TestGitLabTemplate (issue 12, item 7): the template decodes strictly;
// documented for include: remote: with a pinned ref and a privileged
// runner; its script, run by sh with a fake xmppcheck, quotes every
// argument, honours XMPPCHECK_REPORT_DIR and exits with xmppcheck's code;
// the artifacts and the junit report follow the report dir.
func TestGitLabTemplate(t *testing.T) {
	var tmpl map[string]gitlabJob
	raw := strict(t, "gitlab/xmppcheck.gitlab-ci.yml", &tmpl)
	job, ok := tmpl[".xmppcheck-conform"]
	if !ok {
		t.Fatal("no .xmppcheck-conform job")
	}
	for _, w := range []string{"include:", "- remote:", "privileged = true"} {
		if !strings.Contains(string(raw), w) {
			t.Errorf("the template's documentation lacks %q", w)
		}
	}
	if strings.Contains(string(raw), "project: xmppcheck") {
		t.Error("documents include: project:, which works only on the same instance")
	}
	if job.Artifacts.Reports.JUnit != "$XMPPCHECK_REPORT_DIR/junit.xml" || len(job.Artifacts.Paths) != 1 || !strings.HasPrefix(job.Artifacts.Paths[0], "$XMPPCHECK_REPORT_DIR") {
		t.Errorf("artifacts ignore XMPPCHECK_REPORT_DIR: %+v", job.Artifacts)
	}
	if len(job.Services) != 1 || !strings.Contains(job.Services[0].Name, "dind") || job.Services[0].Alias != "docker" {
		t.Errorf("no docker-in-docker service: %+v", job.Services)
	}
	for _, s := range job.Script {
		if strings.Contains(s, "apt-get install") && !strings.Contains(s, "command -v docker") {
			t.Errorf("installs packages on every run: %s", s)
		}
	}
	run := job.Script[len(job.Script)-1]
	for _, code := range []string{"0", "1", "2"} {
		dir := t.TempDir()
		bin := filepath.Join(dir, "gopath", "bin")
		os.MkdirAll(bin, 0o755)
		stub(t, bin, code)
		os.WriteFile(filepath.Join(dir, "tls.example"), nil, 0o644)
		// `go env GOPATH` in the script: a stub go that prints the path.
		os.WriteFile(filepath.Join(dir, "go"), []byte("#!/bin/sh\necho "+filepath.Join(dir, "gopath")+"\n"), 0o755)
		cmd := exec.Command("sh", "-c", run)
		cmd.Dir = dir
		cmd.Env = []string{"PATH=" + dir + ":/usr/bin:/bin", "XMPPCHECK_TARGET_FILE=my target.yaml", "XMPPCHECK_TIMEOUT=60s",
			"XMPPCHECK_REPORT_DIR=out/reports", "XMPPCHECK_STRICT=true", "XMPPCHECK_CLAIMS=tls.*", "XMPPCHECK_POLICY=", "XMPPCHECK_WAIVERS="}
		b, err := cmd.CombinedOutput()
		got := "0"
		if ee, ok := err.(*exec.ExitError); ok {
			got = string(rune('0' + ee.ExitCode()))
		}
		if got != code || !strings.Contains(string(b), "summary from xmppcheck") {
			t.Errorf("exit %s want %s; output:\n%s", got, code, b)
		}
		args, _ := os.ReadFile(filepath.Join(bin, "args"))
		for _, w := range []string{"--strict\n", "--target-file\nmy target.yaml\n", "--claims\ntls.*\n", "--junit\nout/reports/junit.xml\n"} {
			if !strings.Contains(string(args), w) {
				t.Errorf("args lack %q:\n%s", w, args)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, "out", "reports")); err != nil {
			t.Errorf("report dir not made: %v", err)
		}
	}
}
