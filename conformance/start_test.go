package conformance

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"

	"github.com/xmppcheck/xmppcheck/conformance/report"
	"github.com/xmppcheck/xmppcheck/conformance/target"
	"github.com/xmppcheck/xmppcheck/internal/dockerenv"
	itarget "github.com/xmppcheck/xmppcheck/internal/target"
	"github.com/xmppcheck/xmppcheck/spec"
)

// slowStartTarget is a fake target whose Start takes a given time, as a
// cold image build does; it honours the context it is given.
type slowStartTarget struct {
	*fakeTarget
	delay time.Duration
}

func (s *slowStartTarget) Start(ctx context.Context) error {
	select {
	case <-time.After(s.delay):
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// startChildEnv names the mode of a child process of TestSlowStart.
const startChildEnv = "XMPPCHECK_START_CHILD"

// TestSlowStart (issue 9, item 6): a target whose start takes longer than
// a claim's whole budget (--timeout plus Ginkgo's 10 s margin) is started
// before the first claim, outside every claim's budget: its claims end in
// the verdicts the server earns, none in "spec timeout". A start longer
// than the start timeout ends every claim in error naming that timeout.
// Each run is a child process (Ginkgo runs one suite per process).
func TestSlowStart(t *testing.T) {
	if mode := os.Getenv(startChildEnv); mode != "" {
		slowStartChild(t, mode)
		return
	}
	tests := []struct {
		mode  string
		check func(t *testing.T, res report.Result)
	}{
		{"slow", func(t *testing.T, res report.Result) {
			if res.Verdict != report.Pass {
				t.Errorf("%s: %s (%s), want pass: the slow start must not count against the claim", res.Claim, res.Verdict, res.Reason)
			}
		}},
		{"limit", func(t *testing.T, res report.Result) {
			if res.Verdict != report.Error || !strings.Contains(res.Reason, "did not start within") {
				t.Errorf("%s: %s (%s), want error naming the start timeout", res.Claim, res.Verdict, res.Reason)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "report.json")
			cmd := exec.Command(os.Args[0], "-test.run=^TestSlowStart$", "-test.count=1", "-test.timeout=5m")
			cmd.Env = append(os.Environ(), startChildEnv+"="+tt.mode, "XMPPCHECK_REPORT_OUT="+out)
			var buf bytes.Buffer
			cmd.Stdout, cmd.Stderr = &buf, &buf
			if err := cmd.Run(); err != nil {
				t.Fatalf("child run: %v\n%s", err, buf.String())
			}
			f, err := os.Open(out)
			if err != nil {
				t.Fatalf("no report: %v\n%s", err, buf.String())
			}
			defer f.Close()
			rep, err := report.Read(f)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Results) != 3 {
				t.Fatalf("%d results, want the 3 TLS claims\n%s", len(rep.Results), buf.String())
			}
			for _, res := range rep.Results {
				if strings.Contains(res.Reason, "spec timeout") {
					t.Errorf("%s: %s", res.Claim, res.Reason)
				}
				tt.check(t, res)
			}
			if tt.mode == "slow" && !strings.Contains(buf.String(), "target fake ready in") {
				t.Errorf("no progress line for the start:\n%s", buf.String())
			}
		})
	}
}

// slowStartChild runs the TLS claims against compliant fake servers behind
// a target whose start outlasts a claim's budget, and writes the report.
func slowStartChild(t *testing.T, mode string) {
	const claimTimeout = 5 * time.Second
	var tg target.Target = &slowStartTarget{fakeTarget: tlsTarget(t), delay: claimTimeout + 10*time.Second + 3*time.Second}
	cfg := Config{Policy: defaultPolicy(t), Target: tg, Timeout: claimTimeout, Progress: os.Stdout,
		Claims: []string{string(spec.TLSC2SRequired), string(spec.TLSC2SMinVersion), string(spec.TLSS2SMinVersion)}}
	switch mode {
	case "limit":
		cfg.StartTimeout = time.Second
	case "docker":
		// TestSlowImageBuild: a cold build of 90 s, a claim timeout of 20 s.
		tf, err := target.LoadFile("testdata/slow-build/target.yaml")
		if err != nil {
			t.Fatal(err)
		}
		tf.Build.Args["NONCE"] = UniqueName("nonce") // a cold build every run
		cfg.Target = target.NewContainer(tf, target.WithBuildLog(os.Stdout))
		cfg.Timeout, cfg.StartTimeout = 20*time.Second, tf.StartTimeout()
	}
	r, err := prepare(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rep, _ := r.execute(context.Background(), &reportOnlyT{t: t})
	f, err := os.Create(os.Getenv("XMPPCHECK_REPORT_OUT"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := report.WriteJSON(f, rep); err != nil {
		t.Fatal(err)
	}
}

// TestSlowImageBuild (issue 9, item 6) is TestSlowStart with a real cold
// image build of 90 s against a claim timeout of 20 s: the TLS claims get
// the reference server's verdicts (pass), none "spec timeout", and the
// build shows its progress. It needs a Docker engine (skipped without
// one, failed under CI).
func TestSlowImageBuild(t *testing.T) {
	if os.Getenv(startChildEnv) != "" {
		return // a child of another test
	}
	dockerenv.Require(t)
	dir := t.TempDir()
	t.Cleanup(func() {
		cli, err := testcontainers.NewDockerClientWithOpts(context.Background())
		if err == nil {
			cli.ImageRemove(context.Background(), itarget.ImageTag("xmppcheck-slow-build-test"), client.ImageRemoveOptions{Force: true, PruneChildren: true})
			cli.Close()
		}
	})
	out := filepath.Join(dir, "report.json")
	cmd := exec.Command(os.Args[0], "-test.run=^TestSlowStart$", "-test.count=1", "-test.timeout=15m")
	cmd.Env = append(os.Environ(), startChildEnv+"=docker", "XMPPCHECK_REPORT_OUT="+out)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil {
		t.Fatalf("child run: %v\n%s", err, buf.String())
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatalf("no report: %v\n%s", err, buf.String())
	}
	defer f.Close()
	rep, err := report.Read(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 3 {
		t.Fatalf("%d results, want the 3 TLS claims\n%s", len(rep.Results), buf.String())
	}
	for _, res := range rep.Results {
		if res.Verdict != report.Pass {
			t.Errorf("%s: %s (%s), want pass", res.Claim, res.Verdict, res.Reason)
		}
	}
	for _, line := range []string{"building image " + itarget.ImageTag("xmppcheck-slow-build-test") + "… (", "ready in"} {
		if !strings.Contains(buf.String(), line) {
			t.Errorf("no progress line %q:\n%s", line, tail(buf.String(), 40))
		}
	}
	t.Logf("progress:\n%s", grepLines(buf.String(), "target "))
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
