package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/xmppcheck/xmppcheck/internal/fakexmpp"
	"github.com/xmppcheck/xmppcheck/loadgen/stats"
)

// The Kubernetes API types the manifests of ci/k8s use, written from the
// published API reference (batch/v1 Job, core/v1 PodSpec, Container,
// PersistentVolumeClaim), with only the fields the manifests set. Decoding
// is strict (yaml KnownFields): a misspelt or misplaced field fails the
// test. They are written here rather than imported from k8s.io/api because
// that module (39 MB of source) brings seventeen more modules into the
// build list and raises shared ones (golang.org/x/net, x/text) for the
// whole binary, for a test of three files.
type k8sMeta struct {
	Name   string            `yaml:"name"`
	Labels map[string]string `yaml:"labels"`
}

type k8sJob struct {
	APIVersion string  `yaml:"apiVersion"`
	Kind       string  `yaml:"kind"`
	Metadata   k8sMeta `yaml:"metadata"`
	Spec       struct {
		CompletionMode          string `yaml:"completionMode"`
		Completions             *int   `yaml:"completions"`
		Parallelism             *int   `yaml:"parallelism"`
		BackoffLimit            *int   `yaml:"backoffLimit"`
		ActiveDeadlineSeconds   *int64 `yaml:"activeDeadlineSeconds"`
		TTLSecondsAfterFinished *int   `yaml:"ttlSecondsAfterFinished"`
		Template                struct {
			Metadata k8sMeta    `yaml:"metadata"`
			Spec     k8sPodSpec `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type k8sPodSpec struct {
	RestartPolicy   string `yaml:"restartPolicy"`
	SecurityContext *struct {
		RunAsNonRoot *bool  `yaml:"runAsNonRoot"`
		RunAsUser    *int64 `yaml:"runAsUser"`
		RunAsGroup   *int64 `yaml:"runAsGroup"`
		FSGroup      *int64 `yaml:"fsGroup"`
	} `yaml:"securityContext"`
	TopologySpreadConstraints []struct {
		MaxSkew           int    `yaml:"maxSkew"`
		TopologyKey       string `yaml:"topologyKey"`
		WhenUnsatisfiable string `yaml:"whenUnsatisfiable"`
		LabelSelector     struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"labelSelector"`
	} `yaml:"topologySpreadConstraints"`
	InitContainers []k8sContainer `yaml:"initContainers"`
	Containers     []k8sContainer `yaml:"containers"`
	Volumes        []struct {
		Name                  string `yaml:"name"`
		PersistentVolumeClaim *struct {
			ClaimName string `yaml:"claimName"`
		} `yaml:"persistentVolumeClaim"`
	} `yaml:"volumes"`
}

type k8sContainer struct {
	Name            string   `yaml:"name"`
	Image           string   `yaml:"image"`
	ImagePullPolicy string   `yaml:"imagePullPolicy"`
	Command         []string `yaml:"command"`
	Args            []string `yaml:"args"`
	Env             []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			ResourceFieldRef *struct {
				Resource string `yaml:"resource"`
				Divisor  string `yaml:"divisor"`
			} `yaml:"resourceFieldRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	Resources *struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
}

type k8sPVC struct {
	APIVersion string  `yaml:"apiVersion"`
	Kind       string  `yaml:"kind"`
	Metadata   k8sMeta `yaml:"metadata"`
	Spec       struct {
		AccessModes []string `yaml:"accessModes"`
		Resources   struct {
			Requests map[string]string `yaml:"requests"`
		} `yaml:"resources"`
	} `yaml:"spec"`
}

func decodeStrict(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", filepath.Base(path), err)
	}
}

// podArgs is what the kubelet runs for c: command (or the image's
// entrypoint, xmppcheck) and args, with Kubernetes' $(VAR) references
// expanded from the container's env plus extra (JOB_COMPLETION_INDEX).
func podArgs(t *testing.T, c k8sContainer, extra map[string]string) []string {
	t.Helper()
	env := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			env[e.Name] = e.Value
		}
	}
	for k, v := range extra {
		env[k] = v
	}
	ref := regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)
	var out []string
	for _, a := range append(append([]string{}, c.Command...), c.Args...) {
		out = append(out, ref.ReplaceAllStringFunc(a, func(m string) string {
			v, ok := env[m[2:len(m)-1]]
			if !ok {
				t.Errorf("%s: $(%s) is not in the container's environment", c.Name, m[2:len(m)-1])
			}
			return v
		}))
	}
	if strings.Contains(strings.Join(out, " "), "${") {
		t.Errorf("%s: placeholder left unfilled: %v", c.Name, out)
	}
	return out
}

// TestK8sManifests renders ci/k8s with run.sh, decodes the manifests
// strictly against the Kubernetes API types, checks the pods may write the
// results volume (fsGroup), and executes what the pods would execute —
// the init container's mkdir, every shard's xmppcheck command line, the
// merge's with the documented thresholds — against a server on loopback,
// with the volume's mount path mapped to a temporary directory.
func TestK8sManifests(t *testing.T) {
	const shards, users = 2, 10
	srv := fakexmpp.Start(t)
	addLoadUsers(t, srv.AddUser, users)
	rendered := t.TempDir()
	render := exec.Command("bash", filepath.Join("..", "..", "ci", "k8s", "run.sh"), "render", rendered)
	render.Env = append(os.Environ(), fmt.Sprintf("SHARDS=%d", shards), "SERVER="+srv.Addr(), "DOMAIN="+srv.Domain(), "SCENARIO=chat",
		fmt.Sprintf("USERS=%d", users), "RATE=100", "DURATION=1s", "IMAGE=xmppcheck:dev", "START_DELAY=5",
		// As documented in ci/k8s/README.md and run.sh.
		"THRESHOLDS=--threshold=p99<50ms --threshold=errors<0.1%")
	if out, err := render.CombinedOutput(); err != nil {
		t.Fatalf("run.sh render: %v\n%s", err, out)
	}
	runIDb, _ := os.ReadFile(filepath.Join(rendered, "run-id"))
	runID := strings.TrimSpace(string(runIDb))

	var pvc k8sPVC
	decodeStrict(t, filepath.Join(rendered, "results-pvc.yaml"), &pvc)
	var job, merge k8sJob
	decodeStrict(t, filepath.Join(rendered, "load-shards.yaml"), &job)
	decodeStrict(t, filepath.Join(rendered, "load-merge.yaml"), &merge)
	if pvc.Kind != "PersistentVolumeClaim" || pvc.APIVersion != "v1" {
		t.Errorf("pvc: %s %s", pvc.APIVersion, pvc.Kind)
	}
	js := job.Spec
	if job.APIVersion != "batch/v1" || job.Kind != "Job" || js.CompletionMode != "Indexed" || js.Completions == nil || *js.Completions != shards ||
		js.Parallelism == nil || *js.Parallelism != shards || js.BackoffLimit == nil || *js.BackoffLimit != 0 || js.ActiveDeadlineSeconds == nil {
		t.Fatalf("shard job spec = %+v", js)
	}
	dockerfile, _ := os.ReadFile(filepath.Join("..", "..", "ci", "k8s", "Dockerfile"))
	for name, j := range map[string]k8sJob{"shards": job, "merge": merge} {
		ps := j.Spec.Template.Spec
		sc := ps.SecurityContext
		if sc == nil || sc.FSGroup == nil || sc.RunAsUser == nil || !strings.Contains(string(dockerfile), fmt.Sprintf("USER %d:", *sc.RunAsUser)) {
			t.Errorf("%s: the pod cannot write the results volume: securityContext %+v (the image's user: %q)", name, sc, dockerfile)
		}
		for _, c := range ps.Containers {
			if len(c.Command) > 0 {
				// A shell between the manifest and xmppcheck reads '<' in
				// a threshold as a redirect: the image's entrypoint
				// (xmppcheck) must get the args as written.
				t.Errorf("%s/%s: command %v overrides the image's entrypoint", name, c.Name, c.Command)
			}
		}
		vols := map[string]bool{}
		for _, v := range ps.Volumes {
			if v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != pvc.Metadata.Name {
				t.Errorf("%s: volume %s is not the results claim %s", name, v.Name, pvc.Metadata.Name)
			}
			vols[v.Name] = true
		}
		for _, c := range append(append([]k8sContainer{}, ps.InitContainers...), ps.Containers...) {
			for _, m := range c.VolumeMounts {
				if !vols[m.Name] {
					t.Errorf("%s/%s mounts unknown volume %s", name, c.Name, m.Name)
				}
			}
		}
	}

	// What the pods run: the volume's mount path becomes a temp dir.
	volume := t.TempDir()
	mounted := func(c k8sContainer) map[string]string {
		for _, e := range c.Env {
			if e.Name == "RESULTS" && len(c.VolumeMounts) == 1 && e.Value != c.VolumeMounts[0].MountPath {
				t.Fatalf("%s: RESULTS=%s but the volume is mounted at %s", c.Name, e.Value, c.VolumeMounts[0].MountPath)
			}
		}
		return map[string]string{"RESULTS": volume}
	}
	ps := job.Spec.Template.Spec
	var wg sync.WaitGroup
	errs := make([]string, shards)
	for i := range shards {
		for _, ic := range ps.InitContainers {
			env := mounted(ic)
			env["JOB_COMPLETION_INDEX"] = fmt.Sprint(i)
			argv := podArgs(t, ic, env)
			if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
				t.Fatalf("init container %v: %v\n%s", argv, err, out)
			}
		}
		env := mounted(ps.Containers[0])
		env["JOB_COMPLETION_INDEX"] = fmt.Sprint(i)
		argv := podArgs(t, ps.Containers[0], env)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code, out, errOut := runChild(t, argv...); code != 0 {
				errs[i] = fmt.Sprintf("shard pod %d: %v: exit %d\n%s\n%s", i, argv, code, out, errOut)
			}
		}()
	}
	wg.Wait()
	for _, e := range errs {
		if e != "" {
			t.Fatal(e)
		}
	}
	runDir := filepath.Join(volume, runID)
	for i := range shards {
		if _, err := os.Stat(filepath.Join(runDir, fmt.Sprintf("shard-%d.json", i))); err != nil {
			t.Errorf("shard %d wrote nothing in the run's directory: %v", i, err)
		}
	}
	margv := podArgs(t, merge.Spec.Template.Spec.Containers[0], mounted(merge.Spec.Template.Spec.Containers[0]))
	code, out, errOut := runChild(t, margv...)
	// The thresholds were evaluated (not a redirect, not a usage error):
	// the verdict is 0 or 1, never 2.
	if code == 2 || !strings.Contains(out, "threshold p99<50ms") || !strings.Contains(out, "threshold errors<0.1%") {
		t.Fatalf("merge pod %v: exit %d\n%s\n%s", margv, code, out, errOut)
	}
	res, err := stats.ReadFile(filepath.Join(runDir, "merged.json"))
	if err != nil {
		t.Fatal(err)
	}
	// The result spells the id as a number (no leading zeros).
	if res.Counters[stats.Completed] != 100 || len(res.Shards) != shards || res.Config["run_id"] != strings.TrimLeft(runID, "0") {
		t.Errorf("merged: counters %v, %d shards, run %v (want %s)", res.Counters, len(res.Shards), res.Config["run_id"], runID)
	}
	for _, f := range []string{"merged.csv", "merged.html"} {
		if _, err := os.Stat(filepath.Join(runDir, f)); err != nil {
			t.Error(err)
		}
	}
}
