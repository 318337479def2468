package ci

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// stub writes a fake xmppcheck that records its arguments, writes a
// summary where --markdown says, and exits with code.
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

func TestGitHubAction(t *testing.T) {
	var action struct {
		Inputs map[string]struct {
			Required bool   `yaml:"required"`
			Default  string `yaml:"default"`
		} `yaml:"inputs"`
		Runs struct {
			Using string `yaml:"using"`
			Steps []struct {
				Name string            `yaml:"name"`
				ID   string            `yaml:"id"`
				Run  string            `yaml:"run"`
				Env  map[string]string `yaml:"env"`
			} `yaml:"steps"`
		} `yaml:"runs"`
	}
	raw, err := os.ReadFile("github/action.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &action); err != nil {
		t.Fatal(err)
	}
	if action.Runs.Using != "composite" || !action.Inputs["target-file"].Required {
		t.Fatalf("not a composite action with a required target-file: %+v", action.Runs.Using)
	}
	for _, ref := range strings.Split(string(raw), "inputs.")[1:] {
		name := strings.FieldsFunc(ref, func(r rune) bool { return r == ' ' || r == '}' || r == '\n' })[0]
		if _, ok := action.Inputs[name]; !ok {
			t.Errorf("uses undeclared input %q", name)
		}
	}
	var script string
	for _, s := range action.Runs.Steps {
		if s.ID == "conform" {
			script = s.Run
		}
	}
	if script == "" {
		t.Fatal("no conform step")
	}
	for _, tt := range []struct {
		code, strict string
		wantArgs     []string
	}{
		{"0", "false", []string{"--target-file", "t.yaml", "--junit"}},
		{"1", "true", []string{"--strict", "--claims", "tls.*"}},
	} {
		dir := t.TempDir()
		stub(t, dir, tt.code)
		out, summary := filepath.Join(dir, "out"), filepath.Join(dir, "summary")
		cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "RUNNER_TEMP="+dir, "GITHUB_OUTPUT="+out, "GITHUB_STEP_SUMMARY="+summary,
			"TARGET_FILE=t.yaml", "POLICY=", "CLAIMS=tls.*", "STRICT="+tt.strict, "TIMEOUT=60s", "OUT=rep")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("the step must not fail itself (the verdict step does): %v\n%s", err, b)
		}
		got, _ := os.ReadFile(out)
		if strings.TrimSpace(string(got)) != "exit-code="+tt.code {
			t.Errorf("GITHUB_OUTPUT = %q", got)
		}
		sum, _ := os.ReadFile(summary)
		if !strings.Contains(string(sum), "summary from xmppcheck") {
			t.Errorf("step summary not written: %q", sum)
		}
		args, _ := os.ReadFile(filepath.Join(dir, "args"))
		for _, w := range tt.wantArgs {
			if !strings.Contains(string(args), w+"\n") {
				t.Errorf("args lack %q:\n%s", w, args)
			}
		}
	}
}

func TestGitLabTemplate(t *testing.T) {
	raw, err := os.ReadFile("gitlab/xmppcheck.gitlab-ci.yml")
	if err != nil {
		t.Fatal(err)
	}
	var tmpl map[string]struct {
		Variables map[string]string `yaml:"variables"`
		Script    []string          `yaml:"script"`
		Artifacts struct {
			Reports map[string]string `yaml:"reports"`
		} `yaml:"artifacts"`
	}
	if err := yaml.Unmarshal(raw, &tmpl); err != nil {
		t.Fatal(err)
	}
	job, ok := tmpl[".xmppcheck-conform"]
	if !ok || job.Artifacts.Reports["junit"] != "xmppcheck-report/junit.xml" {
		t.Fatalf("template: %+v", tmpl)
	}
	run := job.Script[len(job.Script)-1]
	for _, code := range []string{"0", "1", "2"} {
		dir := t.TempDir()
		bin := filepath.Join(dir, "gopath", "bin")
		os.MkdirAll(bin, 0o755)
		stub(t, bin, code)
		// `go env GOPATH` in the script: a stub go that prints the path.
		os.WriteFile(filepath.Join(dir, "go"), []byte("#!/bin/sh\necho "+filepath.Join(dir, "gopath")+"\n"), 0o755)
		cmd := exec.Command("sh", "-c", run)
		cmd.Dir = dir
		cmd.Env = []string{"PATH=" + dir + ":/usr/bin:/bin", "XMPPCHECK_TARGET_FILE=t.yaml", "XMPPCHECK_TIMEOUT=60s",
			"XMPPCHECK_REPORT_DIR=" + filepath.Join(dir, "rep"), "XMPPCHECK_STRICT=true", "XMPPCHECK_CLAIMS=", "XMPPCHECK_POLICY="}
		os.MkdirAll(filepath.Join(dir, "rep"), 0o755)
		b, err := cmd.CombinedOutput()
		got := "0"
		if ee, ok := err.(*exec.ExitError); ok {
			got = string(rune('0' + ee.ExitCode()))
		}
		if got != code || !strings.Contains(string(b), "summary from xmppcheck") {
			t.Errorf("exit %s want %s; output:\n%s", got, code, b)
		}
		args, _ := os.ReadFile(filepath.Join(bin, "args"))
		if !strings.Contains(string(args), "--strict\n") || !strings.Contains(string(args), "--target-file\nt.yaml\n") {
			t.Errorf("args:\n%s", args)
		}
	}
}
