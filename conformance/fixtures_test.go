package conformance

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/xmppcheck/xmppcheck/conformance/report"
	"github.com/xmppcheck/xmppcheck/conformance/target"
	"github.com/xmppcheck/xmppcheck/internal/dockerenv"
	itarget "github.com/xmppcheck/xmppcheck/internal/target"
	"github.com/xmppcheck/xmppcheck/internal/testenv"
	"github.com/xmppcheck/xmppcheck/spec"
)

// expectedFile is fixtures/targets/NAME/expected.yaml (CONTRIBUTING.md).
type expectedFile struct {
	Base     string `yaml:"base"`
	Verdicts map[string]struct {
		Verdict report.Verdict `yaml:"verdict"`
		Why     string         `yaml:"why"`
	} `yaml:"verdicts"`
}

// TestFixtures runs the suite against every fixture target that has an
// expected.yaml and compares each verdict with the expected one; any
// difference fails (there is no list of tolerated disagreements: a
// verdict believed wrong is fixed in the suite or in the expectation).
// Each run is a child process (Ginkgo runs one suite per process)
// executing TestConformance with XMPPCHECK_TARGET_FILE.
//
// Images are built first, one at a time in the parent (bases before their
// variants, so every variant's build is a layer-cache hit), then the
// targets run concurrently, XMPPCHECK_FIXTURES_PARALLEL at a time (default
// 2, the cores of the machines it was tuned on; 1 runs them one after
// another). Set XMPPCHECK_FIXTURES to a comma-separated list of names to
// run only those.
func TestFixtures(t *testing.T) {
	dirs, _ := filepath.Glob("../fixtures/targets/*/target.yaml")
	if len(dirs) == 0 {
		testenv.Missing(t, "this checkout has no fixture target files (../fixtures/targets/*/target.yaml)")
	}
	dockerenv.Require(t)
	only := map[string]bool{}
	for _, n := range strings.Split(os.Getenv("XMPPCHECK_FIXTURES"), ",") {
		if n = strings.TrimSpace(n); n != "" {
			only[n] = true
		}
	}
	parallel, err := fixturesParallel(os.Getenv("XMPPCHECK_FIXTURES_PARALLEL"))
	if err != nil {
		t.Fatal(err)
	}
	pol := defaultPolicy(t)

	type fixture struct {
		name, file string
		exp        expectedFile
		tf         *target.File
	}
	var fixtures []fixture
	for _, tf := range dirs {
		dir := filepath.Dir(tf)
		name := filepath.Base(dir)
		if len(only) > 0 && !only[name] {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(dir, "expected.yaml"))
		if err != nil {
			continue // a target without expectations is not compared
		}
		f := fixture{name: name, file: tf}
		if err := yaml.Unmarshal(raw, &f.exp); err != nil {
			t.Errorf("%s: expected.yaml: %v", name, err)
			continue
		}
		if f.tf, err = target.LoadFile(tf); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		fixtures = append(fixtures, f)
	}
	// Bases first: their builds fill the layer cache their variants share.
	slices.SortStableFunc(fixtures, func(a, b fixture) int {
		variant := func(f fixture) int {
			if f.exp.Base != "" {
				return 1
			}
			return 0
		}
		return cmp.Compare(variant(a), variant(b))
	})

	t.Run("build", func(t *testing.T) {
		for _, f := range fixtures {
			b := f.tf.Build
			if b == nil {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
			var log bytes.Buffer
			var opts []dockerenv.BuildOption
			opts = append(opts, dockerenv.WithBuildLog(&log))
			for bin, pkg := range b.GoBinaries {
				opts = append(opts, dockerenv.WithGoBinary(bin, pkg))
			}
			start := time.Now()
			err := dockerenv.BuildImage(ctx, filepath.Join(f.tf.Dir, b.Context), b.Dockerfile, itarget.ImageTag(f.name), b.Args, opts...)
			cancel()
			if err != nil {
				t.Errorf("%s: %v", f.name, err)
				continue
			}
			t.Logf("image of %s built in %s", f.name, time.Since(start).Round(100*time.Millisecond))
		}
	})

	sem := make(chan struct{}, parallel)
	t.Run("run", func(t *testing.T) {
		for _, f := range fixtures {
			t.Run(f.name, func(t *testing.T) {
				t.Parallel()
				sem <- struct{}{}
				defer func() { <-sem }()
				runFixture(t, pol.Claims, f.name, f.file, f.exp)
			})
		}
	})
}

// fixturesParallel reads XMPPCHECK_FIXTURES_PARALLEL: how many fixtures
// run at once (default 2).
func fixturesParallel(v string) (int, error) {
	if v == "" {
		return 2, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("XMPPCHECK_FIXTURES_PARALLEL=%q: want a count of 1 or more", v)
	}
	return n, nil
}

// runFixture runs the suite against one fixture in a child process and
// compares its verdicts with the expected ones.
func runFixture(t *testing.T, claims []spec.Claim, name, tf string, exp expectedFile) {
	for _, c := range claims {
		e, ok := exp.Verdicts[string(c.ID)]
		switch {
		case !ok:
			t.Errorf("expected.yaml has no verdict for %s", c.ID)
		case !e.Verdict.Valid():
			t.Errorf("expected.yaml: %s: unknown verdict %q", c.ID, e.Verdict)
		case e.Verdict != report.Pass && strings.TrimSpace(e.Why) == "":
			t.Errorf("expected.yaml: %s: a %s needs a why", c.ID, e.Verdict)
		}
	}
	out := filepath.Join(t.TempDir(), "report.json")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestConformance$", "-test.count=1", "-test.timeout=20m")
	cmd.Env = append(os.Environ(), "XMPPCHECK_TARGET_FILE="+tf, "XMPPCHECK_REPORT_OUT="+out)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("suite run: %v\n%s", err, tail(buf.String(), 60))
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatalf("no report: %v\n%s", err, tail(buf.String(), 60))
	}
	defer f.Close()
	rep, err := report.Read(f)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %d pass, %d fail, %d not-testable, %d error in %s", name, rep.Summary.Pass, rep.Summary.Fail, rep.Summary.NotTestable, rep.Summary.Error, time.Since(start).Round(time.Second))
	for _, res := range rep.Results {
		if want := exp.Verdicts[res.Claim].Verdict; res.Verdict != want {
			t.Errorf("%s: got %s, expected %s\n    reason: %s\n%s", res.Claim, res.Verdict, want, res.Reason, evidenceLines(res))
		}
	}
}

func evidenceLines(res report.Result) string {
	var b strings.Builder
	for _, e := range res.Evidence {
		mark := "ok"
		if !e.OK {
			mark = "NOT OK"
		}
		fmt.Fprintf(&b, "    [%s] %s: %s\n", mark, e.What, e.Observed)
	}
	return b.String()
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
