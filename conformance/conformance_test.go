package conformance

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xmppcheck/xmppcheck/conformance/report"
	"github.com/xmppcheck/xmppcheck/internal/dockerenv"

	"github.com/xmppcheck/xmppcheck/conformance/target"
	"github.com/xmppcheck/xmppcheck/spec"
)

// TestConformance runs the Ginkgo suite (`go test ./conformance/...`)
// against the embedded reference server, or only lists the specs when
// XMPPCHECK_SPECLIST_OUT names a file (TestGoldenSpecList's dry run).
func TestConformance(t *testing.T) {
	pol := defaultPolicy(t)
	if out := os.Getenv("XMPPCHECK_SPECLIST_OUT"); out != "" {
		r, err := prepare(Config{Policy: pol, DryRun: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.execute(context.Background(), t); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(out, []byte(strings.Join(r.allSpecs, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	var tg target.Target
	switch file, name := os.Getenv("XMPPCHECK_TARGET_FILE"), os.Getenv("XMPPCHECK_TARGET"); {
	case file != "" || name != "":
		if file == "" {
			file = filepath.Join("..", "fixtures", "targets", name, "target.yaml")
		}
		dockerenv.Require(t)
		tf, err := target.LoadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		tg = target.NewContainer(tf, target.WithBuildLog(io.Discard))
	default:
		var err error
		tg, err = target.NewEmbedded(pol)
		if errors.Is(err, target.ErrEmbeddedUnavailable) {
			t.Skipf("SKIPPED: %v", err)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	var claims []string
	if c := os.Getenv("XMPPCHECK_CLAIMS"); c != "" {
		claims = []string{c}
	}
	cfg := Config{Policy: pol, Target: tg, Claims: claims}
	if testing.Verbose() {
		cfg.Progress, cfg.Verbose = os.Stdout, true
	}
	r, err := prepare(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r.execute(context.Background(), &reportOnlyT{t})
	if err != nil {
		t.Fatal(err)
	}
	for _, res := range rep.Results {
		t.Logf("%-30s %-12s %s", res.Claim, res.Verdict, res.Reason)
	}
	if out := os.Getenv("XMPPCHECK_REPORT_OUT"); out != "" {
		f, err := os.Create(out)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := report.WriteJSON(f, rep); err != nil {
			t.Fatal(err)
		}
		return
	}
	if rep.Summary.ExitCode != report.ExitPass {
		t.Errorf("the target does not keep every claim: %+v", rep.Summary)
	}
}

// reportOnlyT lets a run that only writes a report (for the fixture
// comparison) finish green whatever the verdicts: the comparison judges.
type reportOnlyT struct{ t *testing.T }

func (r *reportOnlyT) Fail() {
	if os.Getenv("XMPPCHECK_REPORT_OUT") == "" {
		r.t.Fail()
	}
}

// TestGoldenSpecList diffs the suite's specs, from a Ginkgo dry run in a
// child process, with the checked-in list testdata/conformance.txt
// (Kubernetes-conformance style). Regenerate it with
// XMPPCHECK_UPDATE_GOLDEN=1 go test ./conformance -run TestGoldenSpecList.
func TestGoldenSpecList(t *testing.T) {
	out := t.TempDir() + "/specs.txt"
	cmd := exec.Command(os.Args[0], "-test.run=^TestConformance$", "-test.count=1")
	cmd.Env = append(os.Environ(), "XMPPCHECK_SPECLIST_OUT="+out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("dry run: %v\n%s", err, b)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	const golden = "testdata/conformance.txt"
	if os.Getenv("XMPPCHECK_UPDATE_GOLDEN") != "" {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (create it with XMPPCHECK_UPDATE_GOLDEN=1)", err)
	}
	if string(got) != string(want) {
		t.Errorf("the conformance specs changed; review and regenerate %s with XMPPCHECK_UPDATE_GOLDEN=1\n--- got\n%s--- want\n%s", golden, got, want)
	}
	if n := strings.Count(string(got), "\n"); n != len(spec.Kinds()) {
		t.Errorf("%d specs, want one per claim kind (%d)", n, len(spec.Kinds()))
	}
}
