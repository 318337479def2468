package dockerenv

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

// BuildOption configures BuildImage.
type BuildOption func(*buildConfig)

type buildConfig struct {
	log       io.Writer
	binaries  []goBinary
	baseOpts  []BaseOption
	outputMax int
}

type goBinary struct{ name, pkg string }

// WithBuildLog streams the build output to w as it arrives (it is kept
// for error messages in any case).
func WithBuildLog(w io.Writer) BuildOption { return func(c *buildConfig) { c.log = w } }

// WithGoBinary compiles the Go package pkg of this module (for example
// "./cmd/xmppcheck") as a static Linux binary (CGO_ENABLED=0, -trimpath, so
// the same source gives the same bytes and Docker's layer cache holds) and
// places it as name at the root of a copy of the build context, for a
// Dockerfile to COPY. No registry is reachable, so no Go toolchain image can
// be pulled: the host's toolchain builds it.
func WithGoBinary(name, pkg string) BuildOption {
	return func(c *buildConfig) { c.binaries = append(c.binaries, goBinary{name, pkg}) }
}

// WithBaseOptions passes options to EnsureBaseImage when the Dockerfile
// starts FROM one of BaseImages.
func WithBaseOptions(opts ...BaseOption) BuildOption {
	return func(c *buildConfig) { c.baseOpts = append(c.baseOpts, opts...) }
}

// BuildError is a failed image build with the tail of its output.
type BuildError struct {
	Tag    string
	Output string // the last lines of the build output
	Err    error
}

func (e *BuildError) Error() string {
	return fmt.Sprintf("dockerenv: build %s: %v\n--- build output (tail) ---\n%s", e.Tag, e.Err, e.Output)
}

func (e *BuildError) Unwrap() error { return e.Err }

// BuildImage builds the image tag from dockerfile (a path relative to
// contextDir) with the given build arguments, and keeps it.
//
// It builds through the Docker Engine API with testcontainers-go's build
// (rather than the docker CLI, whose version and BuildKit/buildx plugin
// differ between machines: Debian's docker.io has no buildx), which honours
// .dockerignore and uses the engine's layer cache. The build runs with host
// networking so apt-get inside RUN reaches the host's package mirror, and
// never pulls: parent images must exist locally. When the Dockerfile starts
// FROM one of BaseImages, EnsureBaseImage makes it first.
//
// On failure the error is a *BuildError holding the end of the build output.
func BuildImage(ctx context.Context, contextDir, dockerfile, tag string, buildArgs map[string]string, opts ...BuildOption) error {
	Setup()
	cfg := buildConfig{outputMax: 60}
	for _, o := range opts {
		o(&cfg)
	}
	if dockerfile == "" {
		dockerfile = "Dockerfile"
	}
	froms, err := dockerfileFroms(filepath.Join(contextDir, dockerfile), buildArgs)
	if err != nil {
		return fmt.Errorf("dockerenv: build %s: %w", tag, err)
	}
	ensured := map[string]bool{}
	for _, f := range froms {
		if _, ok := BaseSuite(f); ok && !ensured[f] {
			ensured[f] = true
			if err := EnsureBaseImage(ctx, append([]BaseOption{ForImage(f)}, cfg.baseOpts...)...); err != nil {
				return err
			}
		}
	}

	if len(cfg.binaries) > 0 {
		tmp, err := os.MkdirTemp("", "xmppcheck-build-*")
		if err != nil {
			return fmt.Errorf("dockerenv: build %s: %w", tag, err)
		}
		defer os.RemoveAll(tmp)
		if err := os.CopyFS(tmp, os.DirFS(contextDir)); err != nil {
			return fmt.Errorf("dockerenv: build %s: copy context: %w", tag, err)
		}
		for _, b := range cfg.binaries {
			if err := buildGoBinary(ctx, contextDir, b.pkg, filepath.Join(tmp, b.name)); err != nil {
				return fmt.Errorf("dockerenv: build %s: %w", tag, err)
			}
		}
		contextDir = tmp
	}

	repo, version := splitTag(tag)
	args := make(map[string]*string, len(buildArgs))
	for k, v := range buildArgs {
		args[k] = &v
	}
	out := &tailBuffer{max: cfg.outputMax}
	var w io.Writer = out
	if cfg.log != nil {
		w = io.MultiWriter(out, cfg.log)
	}
	req := testcontainers.ContainerRequest{FromDockerfile: testcontainers.FromDockerfile{
		Context:        contextDir,
		Dockerfile:     dockerfile,
		Repo:           repo,
		Tag:            version,
		BuildArgs:      args,
		BuildLogWriter: w,
		KeepImage:      true,
		BuildOptionsModifier: func(o *client.ImageBuildOptions) {
			o.NetworkMode = "host" // apt-get in RUN reaches the mirror
			o.PullParent = false   // no registry: parents are local
		},
	}}
	p, err := testcontainers.NewDockerProvider()
	if err != nil {
		return fmt.Errorf("dockerenv: build %s: docker provider: %w", tag, err)
	}
	defer p.Close()
	if _, err := p.BuildImage(ctx, &req); err != nil {
		return &BuildError{Tag: tag, Output: out.String(), Err: err}
	}
	return nil
}

// splitTag splits "repo/name:tag" into repo and tag ("latest" when absent).
func splitTag(ref string) (string, string) {
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return ref[:i], ref[i+1:]
	}
	return ref, "latest"
}

// dockerfileFroms lists the images named by FROM lines (stage names and
// "scratch" included). References to ARGs declared before the first FROM
// (`FROM debian:${SUITE}-slim`) are expanded with the build arguments, or
// the ARG's default; other references are returned unexpanded.
func dockerfileFroms(path string, buildArgs map[string]string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var froms []string
	global := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(froms) == 0 && len(f) >= 2 && strings.EqualFold(f[0], "ARG") {
			name, def, _ := strings.Cut(f[1], "=")
			if v, ok := buildArgs[name]; ok {
				def = v
			}
			global[name] = strings.Trim(def, `"'`)
			continue
		}
		if len(f) < 2 || !strings.EqualFold(f[0], "FROM") {
			continue
		}
		for i := range f {
			f[i] = os.Expand(f[i], func(k string) string {
				if v, ok := global[k]; ok {
					return v
				}
				return "${" + k + "}"
			})
		}
		img := ""
		for _, x := range f[1:] {
			if !strings.HasPrefix(x, "--") {
				img = x
				break
			}
		}
		if img != "" {
			froms = append(froms, img)
		}
	}
	return froms, sc.Err()
}

// buildGoBinary compiles pkg of the module containing dir as a static
// Linux binary at out.
func buildGoBinary(ctx context.Context, dir, pkg, out string) error {
	root, err := goModRoot(dir)
	if err != nil {
		return err
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("go toolchain needed to build %s: %w", pkg, err)
	}
	cmd := exec.CommandContext(ctx, goTool, "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return nil
}

func goModRoot(dir string) (string, error) {
	d, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		if isFile(filepath.Join(d, "go.mod")) {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", errors.New("no go.mod at or above " + dir)
		}
		d = parent
	}
}

// tailBuffer keeps the last max lines written to it.
type tailBuffer struct {
	mu    sync.Mutex
	max   int
	lines []string
	part  []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.part = append(t.part, p...)
	for {
		i := bytes.IndexByte(t.part, '\n')
		if i < 0 {
			break
		}
		t.lines = append(t.lines, string(t.part[:i]))
		t.part = t.part[i+1:]
		if len(t.lines) > t.max {
			t.lines = t.lines[len(t.lines)-t.max:]
		}
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := strings.Join(t.lines, "\n")
	if len(t.part) > 0 {
		s += "\n" + string(t.part)
	}
	return s
}
