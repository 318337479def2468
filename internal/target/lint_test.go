package target

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLint (issue 12, item 4): every problem of a target file at once,
// each at its line and column with a hint, instead of the decoder's first
// raw Go error.
func TestLint(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "target.yaml")
	body := `name: x
imgae: prosody:0.12
domain: localhost
ports:
  c2s: five
wait: { port: c2s, timeout: soon }
accounts: { ibr: yes please }
evidence:
  logs: stdout
purge: ["prosodyctl", "cmd"]
`
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	got := Lint(p)
	want := []string{
		p + `:2:1: unknown key "imgae" in the target file (hint: did you mean "image"?)`,
		p + `:5:8: ports.c2s: want an integer, got "five" (str) (hint: an integer such as 5222)`,
		p + `:6:29: wait.timeout: "soon" is not a duration (use 60s or 2m)`,
		p + `:7:18: accounts.ibr: want true or false, got "yes please" (str) (hint: true or false)`,
		p + `:9:9: evidence.logs: want a list, got "stdout" (str) (hint: write a list: [a, b] or one "- item" per line)`,
		p + `:10:9: purge[0]: want a list, got "prosodyctl" (str)`,
		p + `:10:23: purge[1]: want a list, got "cmd" (str)`,
	}
	var lines []string
	for _, pr := range got {
		lines = append(lines, pr.String())
	}
	for _, w := range want {
		found := false
		for _, l := range lines {
			if strings.HasPrefix(l, w) {
				found = true
			}
		}
		if !found {
			t.Errorf("missing problem\n  %s\ngot:\n  %s", w, strings.Join(lines, "\n  "))
		}
	}

	// Shape right, semantics wrong: validation errors placed at their key.
	if err := os.WriteFile(p, []byte("name: x\nimage: i\ndomain: d\nports: { c2s: 5222 }\nwait: { port: http }\naccounts: { ibr: true }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got = Lint(p)
	if len(got) != 1 || got[0].Line != 5 || !strings.Contains(got[0].Msg, `wait.port "http"`) {
		t.Errorf("semantic problem: %v", got)
	}
}

// TestLintFixtures: every fixture target file is clean.
func TestLintFixtures(t *testing.T) {
	files, _ := filepath.Glob("../../fixtures/targets/*/target.yaml")
	if len(files) == 0 {
		t.Fatal("no fixture targets")
	}
	for _, f := range files {
		for _, p := range Lint(f) {
			t.Errorf("%s", p)
		}
	}
}
