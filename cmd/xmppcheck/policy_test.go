package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// runCLI runs xmppcheck in-process from the module root.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	t.Chdir("../..")
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestPolicyLint(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		code     int
		stdout   []string
		stderr   []string
		noStderr bool
	}{
		{name: "valid", args: []string{"policy", "lint", "spec/policies/jabberx.yaml"}, code: 0, stdout: []string{"ok: 18 claims"}, noStderr: true},
		{name: "embedded", args: []string{"policy", "lint", "-"}, code: 0, stdout: []string{"ok: 18 claims"}},
		{name: "three errors", args: []string{"policy", "lint", "spec/testdata/lint/three-errors.yaml"}, code: 1, stderr: []string{
			"spec/testdata/lint/three-errors.yaml:47:29: parameter \"max_failures\"",
			"spec/testdata/lint/three-errors.yaml:103:9: unknown claim id \"offline.retension\" (hint: did you mean \"offline.retention\"?)",
			"spec/testdata/lint/three-errors.yaml:129:12: quote not found verbatim",
			"3 problem(s)",
		}},
		{name: "missing file", args: []string{"policy", "lint", "nope.yaml"}, code: 2, stderr: []string{"nope.yaml"}},
		{name: "no args", args: []string{"policy", "lint"}, code: 2, stderr: []string{"accepts 1 arg"}},
		{name: "bad format", args: []string{"policy", "show", "--format", "xml", "-"}, code: 2, stderr: []string{"--format must be table or json"}},
		{name: "unknown flag", args: []string{"policy", "show", "--frobnicate", "-"}, code: 2, stderr: []string{"unknown flag", "--help"}},
		{name: "unknown command", args: []string{"frobnicate"}, code: 2, stderr: []string{"unknown command"}},
		{name: "version", args: []string{"--version"}, code: 0, stdout: []string{"xmppcheck version"}},
		{name: "coverage", args: []string{"policy", "coverage", "spec/policies/jabberx.yaml"}, code: 0, stdout: []string{"0 unaccounted", "registration.rate-limited"}},
		{name: "kinds", args: []string{"policy", "kinds"}, code: 0, stdout: []string{"offline.retention", "param max_age (duration, required)"}},
		{name: "help", args: []string{"policy", "lint", "--help"}, code: 0, stdout: []string{"FILE:LINE:COL", "Example"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit code %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, out, errOut)
			}
			for _, s := range tt.stdout {
				if !strings.Contains(out, s) {
					t.Errorf("stdout lacks %q:\n%s", s, out)
				}
			}
			for _, s := range tt.stderr {
				if !strings.Contains(errOut, s) {
					t.Errorf("stderr lacks %q:\n%s", s, errOut)
				}
			}
			if tt.noStderr && errOut != "" {
				t.Errorf("unexpected stderr: %s", errOut)
			}
		})
	}
}

func TestPolicyShowJSON(t *testing.T) {
	code, out, errOut := runCLI(t, "policy", "show", "--format", "json", "spec/policies/jabberx.yaml")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var v struct {
		Schema string `json:"schema"`
		Claims []struct {
			ID     string         `json:"id"`
			Params map[string]any `json:"params"`
			Quote  string         `json:"quote"`
			Needs  []string       `json:"needs"`
		} `json:"claims"`
		Conflicts []struct {
			Tested string `json:"tested"`
		} `json:"conflicts"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("invalid JSON: %v\n%s", err, out)
	}
	if v.Schema != "xmppcheck.policy/v1" || len(v.Claims) < 16 {
		t.Fatalf("schema %q, %d claims", v.Schema, len(v.Claims))
	}
	for _, c := range v.Claims {
		if c.Quote == "" || len(c.Needs) == 0 {
			t.Errorf("claim %s lacks quote or needs", c.ID)
		}
		if c.ID == "offline.retention" && c.Params["max_age"] != "7d" {
			t.Errorf("offline.retention max_age = %v", c.Params["max_age"])
		}
		if c.ID == "auth.brute-force-protection" && c.Params["max_failures"] != float64(5) {
			t.Errorf("max_failures = %#v, want the number 5", c.Params["max_failures"])
		}
	}
}

// Coverage exits 1 and names the sentence when a promise is unaccounted.
func TestPolicyCoverageUnaccounted(t *testing.T) {
	src, err := os.ReadFile("../../spec/policies/jabberx.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cut := strings.Replace(string(src), `  - id: upload.retention
    params: { max_age: 14d }
    section: "2.4"
    quote: "All uploads are automatically deleted after 14 days."
`, "", 1)
	if cut == string(src) {
		t.Fatal("test input not found in jabberx.yaml")
	}
	f := t.TempDir() + "/p.yaml"
	cut = strings.Replace(cut, "source: source/", "source: "+mustAbs(t, "../../spec/policies/source")+"/", 1)
	os.WriteFile(f, []byte(cut), 0o644)
	code, out, _ := runCLI(t, "policy", "coverage", f)
	if code != 1 || !strings.Contains(out, "UNACCOUNTED line 38") || !strings.Contains(out, "deleted after 14 days") {
		t.Errorf("exit %d, output:\n%s", code, out)
	}
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return wd + "/" + p
}
