package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xmppcheck/xmppcheck/loadgen/stats"
)

// readmeLoadBlock returns the sh block of the README's load section.
func readmeLoadBlock(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "### The load generator (`xmppcheck load`)")
	if i < 0 {
		t.Fatal("README has no load section")
	}
	s = s[i:]
	j := strings.Index(s, "```sh\n")
	if j < 0 {
		t.Fatal("README's load section has no sh block")
	}
	s = s[j+len("```sh\n"):]
	k := strings.Index(s, "```")
	return s[:k]
}

// TestREADMELoadExamples runs the README's load examples as they stand,
// with bash, against the 'xmppcheck serve' they start, the accounts
// provisioned as they say: every command must succeed (set -e). Only the
// port is changed, to a free one. Every run in it is small and bounded.
func TestREADMELoadExamples(t *testing.T) {
	block := readmeLoadBlock(t)
	for _, want := range []string{"xmppcheck serve", "admin", "user add", "--accounts", "load chat", "load login", "load merge", "load report", "--stages", "--find-max"} {
		if !strings.Contains(block, want) {
			t.Errorf("README's load examples lack %q", want)
		}
	}
	if strings.Contains(block, "--register") {
		t.Error("README's load examples use --register, which 'xmppcheck serve' limits to 5 an hour")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	block = strings.ReplaceAll(block, "127.0.0.1:15222", "127.0.0.1:"+port)

	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	os.Mkdir(bin, 0o755)
	// Exit 1 is a threshold that was evaluated and failed: the examples'
	// thresholds (p99<50ms) judge this machine's timing, which a test must
	// not (a loaded CI machine would fail it). The wrapper lets exit 1
	// through with a note; exit 2 (the run could not do its job, a usage
	// error) still stops the block.
	wrapper := "#!/bin/sh\nXMPPCHECK_TEST_MAIN=1 " + os.Args[0] + " \"$@\"\nrc=$?\n" +
		"if [ $rc -eq 1 ]; then echo \"xmppcheck exited 1: a threshold was evaluated and failed (this machine's timing)\" >&2; exit 0; fi\nexit $rc\n"
	if err := os.WriteFile(filepath.Join(bin, "xmppcheck"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(dir, "work")
	os.Mkdir(work, 0o755)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-e", "-x", "-c", block)
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// Output to a file, not a pipe: a server left running in the
	// background must not keep Wait waiting for the pipe to close.
	logPath := filepath.Join(dir, "out.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	err = cmd.Run()
	logf.Close()
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // the server, if the block stopped before 'kill "$server"'
	out, _ := os.ReadFile(logPath)
	if err != nil {
		t.Fatalf("README load examples: %v\n%s", err, out)
	}
	// What they claim to produce is there.
	for _, f := range []string{"r.json", "r.html", "r.results.jsonl", "r.csv", "shard-0.json", "shard-1.json", "all.json", "all.html"} {
		if _, err := os.Stat(filepath.Join(work, f)); err != nil {
			t.Errorf("README example output missing: %v", err)
		}
	}
	if res, err := stats.ReadFile(filepath.Join(work, "all.json")); err != nil || res.Counters[stats.Completed] != 600 {
		t.Errorf("merged shards: %v %v", err, res)
	}
	if !strings.Contains(string(out), "highest passing rate") {
		t.Errorf("find-max printed no result:\n%s", out)
	}
}
