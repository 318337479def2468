package dockerenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/testcontainers/testcontainers-go"
)

// BaseImage is the image most fixture Dockerfiles start FROM (Debian
// bookworm: Prosody 0.12, ejabberd 23.01). No registry is reachable where
// fixtures are built, so fixtures/base-image.sh makes it locally with
// debootstrap when it is missing.
const BaseImage = "debian:bookworm-slim"

// TrixieImage is the base of the fixtures of current server versions
// (Debian trixie: Prosody 13, ejabberd 24.12), made the same way.
const TrixieImage = "debian:trixie-slim"

// BaseImages are the local base images fixtures/base-image.sh can make,
// one per Debian suite.
var BaseImages = []string{BaseImage, TrixieImage}

// BaseSuite returns the Debian suite of a base image this package can make
// ("debian:trixie-slim" → "trixie"), and false for any other image.
func BaseSuite(image string) (string, bool) {
	if !slices.Contains(BaseImages, image) {
		return "", false
	}
	return strings.TrimSuffix(strings.TrimPrefix(image, "debian:"), "-slim"), true
}

// BaseImageScript is the path of the script that makes BaseImage, relative
// to the module root.
const BaseImageScript = "fixtures/base-image.sh"

// ErrNoScript means the base image is missing and no copy of
// fixtures/base-image.sh could be found to make it.
var ErrNoScript = errors.New("base image script not found")

// BaseOption configures EnsureBaseImage.
type BaseOption func(*baseConfig)

type baseConfig struct {
	image   string
	script  string
	content []byte
	lock    string
}

// WithScript runs the script at path instead of looking for
// fixtures/base-image.sh above the working directory.
func WithScript(path string) BaseOption { return func(c *baseConfig) { c.script = path } }

// WithScriptContent runs the given script text (for example the copy
// embedded in a binary by package fixtures) from a temporary file.
func WithScriptContent(b []byte) BaseOption { return func(c *baseConfig) { c.content = b } }

// ForImage makes image (one of BaseImages) instead of BaseImage.
func ForImage(image string) BaseOption { return func(c *baseConfig) { c.image = image } }

// WithLockFile serialises base-image builds on this file instead of
// $TMPDIR/xmppcheck-base-image.lock.
func WithLockFile(path string) BaseOption { return func(c *baseConfig) { c.lock = path } }

// EnsureBaseImage makes sure BaseImage (or the image of ForImage) exists
// in the local Docker engine,
// running fixtures/base-image.sh (debootstrap + docker import, root needed)
// when it does not. Concurrent callers, in this and other processes, are
// serialised with an exclusive lock on a lock file; the image is checked
// again once the lock is held, so it is built once. When the image exists
// it costs one Engine API call.
func EnsureBaseImage(ctx context.Context, opts ...BaseOption) error {
	Setup()
	cfg := baseConfig{image: BaseImage, lock: filepath.Join(os.TempDir(), "xmppcheck-base-image.lock")}
	for _, o := range opts {
		o(&cfg)
	}
	image := cfg.image
	suite, ok := BaseSuite(image)
	if !ok {
		return fmt.Errorf("dockerenv: ensure base image: %s is not one of %v", image, BaseImages)
	}
	ok, err := imageExists(ctx, image)
	if err != nil {
		return fmt.Errorf("dockerenv: ensure base image: %w", err)
	}
	if ok {
		return nil
	}

	unlock, err := lockFile(ctx, cfg.lock)
	if err != nil {
		return fmt.Errorf("dockerenv: ensure base image: lock %s: %w", cfg.lock, err)
	}
	defer unlock()
	if ok, err := imageExists(ctx, image); err != nil {
		return fmt.Errorf("dockerenv: ensure base image: %w", err)
	} else if ok {
		return nil // made by another process while we waited
	}

	script := cfg.script
	if cfg.content != nil {
		f, err := os.CreateTemp("", "xmppcheck-base-image-*.sh")
		if err != nil {
			return fmt.Errorf("dockerenv: ensure base image: %w", err)
		}
		defer os.Remove(f.Name())
		if _, err := f.Write(cfg.content); err != nil {
			f.Close()
			return fmt.Errorf("dockerenv: ensure base image: %w", err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("dockerenv: ensure base image: %w", err)
		}
		script = f.Name()
	}
	if script == "" {
		root, err := ModuleRoot()
		if err != nil {
			return fmt.Errorf("dockerenv: ensure base image %s: %w: %w", image, ErrNoScript, err)
		}
		script = filepath.Join(root, BaseImageScript)
	}
	if _, err := os.Stat(script); err != nil {
		return fmt.Errorf("dockerenv: ensure base image %s: %w: %w", image, ErrNoScript, err)
	}

	cmd := exec.CommandContext(ctx, "sh", script)
	cmd.Env = append(os.Environ(), "XMPPCHECK_BASE_IMAGE_LOCKED=1", "BASE_IMAGE="+image, "SUITE="+suite)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("dockerenv: ensure base image: %s: %w\n%s", script, err, tail(out.String(), 40))
	}
	if ok, err := imageExists(ctx, image); err != nil || !ok {
		return fmt.Errorf("dockerenv: ensure base image: %s ran but %s is still missing (%v)\n%s", script, image, err, tail(out.String(), 40))
	}
	return nil
}

// ModuleRoot returns the nearest directory at or above the working
// directory that holds fixtures/base-image.sh next to a go.mod: the root of
// an xmppcheck checkout.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if isFile(filepath.Join(dir, "go.mod")) && isFile(filepath.Join(dir, BaseImageScript)) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no xmppcheck checkout (go.mod with %s) at or above the working directory", BaseImageScript)
		}
		dir = parent
	}
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// imageExists asks the engine whether ref names a local image.
func imageExists(ctx context.Context, ref string) (bool, error) {
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return false, fmt.Errorf("docker client: %w", err)
	}
	defer cli.Close()
	if _, err := cli.ImageInspect(ctx, ref); err != nil {
		if isNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("inspect %s: %w", ref, err)
	}
	return true, nil
}

func isNotFound(err error) bool { return cerrdefs.IsNotFound(err) }

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
