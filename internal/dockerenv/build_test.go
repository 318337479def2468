package dockerenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
)

func TestSplitTag(t *testing.T) {
	for _, tc := range []struct{ in, repo, tag string }{
		{"xmppcheck/prosody:dev", "xmppcheck/prosody", "dev"},
		{"xmppcheck/prosody", "xmppcheck/prosody", "latest"},
		{"localhost:5000/x", "localhost:5000/x", "latest"},
		{"localhost:5000/x:1", "localhost:5000/x", "1"},
	} {
		repo, tag := splitTag(tc.in)
		if repo != tc.repo || tag != tc.tag {
			t.Errorf("splitTag(%q) = %q, %q; want %q, %q", tc.in, repo, tag, tc.repo, tc.tag)
		}
	}
}

func TestDockerfileFroms(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "Dockerfile")
	os.WriteFile(p, []byte("# FROM commented\nFROM --platform=linux/amd64 debian:bookworm-slim AS base\nRUN x\nfrom scratch\n"), 0o644)
	got, err := dockerfileFroms(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "debian:bookworm-slim,scratch" {
		t.Errorf("froms = %q", got)
	}
	os.WriteFile(p, []byte("ARG SUITE=bookworm\nARG OTHER\nFROM debian:${SUITE}-slim\nARG LATE=x\nFROM $LATE\nFROM img:$OTHER\n"), 0o644)
	for _, tc := range []struct {
		args map[string]string
		want string
	}{
		{nil, "debian:bookworm-slim,${LATE},img:"},
		{map[string]string{"SUITE": "trixie", "OTHER": "1"}, "debian:trixie-slim,${LATE},img:1"},
	} {
		got, err := dockerfileFroms(p, tc.args)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(got, ",") != tc.want {
			t.Errorf("froms(%v) = %q, want %q", tc.args, got, tc.want)
		}
	}
}

func TestTailBuffer(t *testing.T) {
	b := &tailBuffer{max: 2}
	io.WriteString(b, "one\ntw")
	io.WriteString(b, "o\nthree\nfour")
	if got, want := b.String(), "two\nthree\nfour"; got != want {
		t.Errorf("tail = %q, want %q", got, want)
	}
}

func randomMarker(t *testing.T) string {
	b := make([]byte, 8)
	rand.Read(b)
	return "xmppcheck-" + hex.EncodeToString(b)
}

// runOnce starts image with cmd, waits for it to exit and returns its output.
func runOnce(t *testing.T, ctx context.Context, image string, cmd ...string) string {
	t.Helper()
	c, err := testcontainers.Run(ctx, image,
		testcontainers.WithCmd(cmd...),
		testcontainers.WithWaitStrategy(wait.ForExit().WithExitTimeout(60*time.Second)))
	testcontainers.CleanupContainer(t, c)
	if err != nil {
		t.Fatalf("run %s: %v", image, err)
	}
	rc, err := c.Logs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	return string(b)
}

func removeImage(t *testing.T, tag string) {
	t.Cleanup(func() {
		cli, err := testcontainers.NewDockerClientWithOpts(context.Background())
		if err != nil {
			return
		}
		defer cli.Close()
		cli.ImageRemove(context.Background(), tag, client.ImageRemoveOptions{Force: true, PruneChildren: true})
	})
}

// TestBuildImage builds a tiny image FROM the locally made base image,
// installing a Debian package in RUN (host networking) and baking in a build
// argument, then runs it.
func TestBuildImage(t *testing.T) {
	Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := EnsureBaseImage(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, err := imageExists(ctx, BaseImage); err != nil || !ok {
		t.Fatalf("after EnsureBaseImage: exists=%v err=%v", ok, err)
	}
	marker := randomMarker(t)
	tag := "xmppcheck-test/tiny:" + marker[len(marker)-8:]
	removeImage(t, tag)
	var log strings.Builder
	err := BuildImage(ctx, "testdata/tiny", "Dockerfile", tag, map[string]string{"GREETING": marker}, WithBuildLog(&log))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "hello") {
		t.Errorf("build log does not show the apt-get install of hello:\n%s", log.String())
	}
	if out := runOnce(t, ctx, tag, "sh", "-c", "hello; cat /greeting"); !strings.Contains(out, "Hello, world!") || !strings.Contains(out, marker) {
		t.Errorf("container output = %q, want Hello, world! and %s", out, marker)
	}
}

func TestBuildImageFailureKeepsOutput(t *testing.T) {
	Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	err := BuildImage(ctx, "testdata/fail", "", "xmppcheck-test/fail:x", nil)
	var be *BuildError
	if !errors.As(err, &be) {
		t.Fatalf("err = %v, want *BuildError", err)
	}
	if !strings.Contains(be.Output, "xmppcheck-marker-build-failure") || !strings.Contains(err.Error(), "xmppcheck-marker-build-failure") {
		t.Errorf("build error lacks the RUN output:\n%v", err)
	}
}

func TestBuildImageGoBinary(t *testing.T) {
	Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	tag := "xmppcheck-test/gobin:x"
	removeImage(t, tag)
	if err := BuildImage(ctx, "testdata/gobin", "Dockerfile", tag, nil, WithGoBinary("tinybin", "./internal/dockerenv/testdata/tinybin")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("testdata/gobin/tinybin"); err == nil {
		t.Error("WithGoBinary wrote into the source context; it must use a copy")
	}
	if out := runOnce(t, ctx, tag); !strings.Contains(out, "tinybin ok") {
		t.Errorf("scratch container output = %q, want %q", out, "tinybin ok")
	}
}

// TestWithLoopbackPorts starts a container with a published port and checks
// the engine bound it to 127.0.0.1 only.
func TestWithLoopbackPorts(t *testing.T) {
	Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := EnsureBaseImage(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := testcontainers.Run(ctx, BaseImage,
		testcontainers.WithCmd("sh", "-c", "trap exit TERM; sleep 60 & wait"),
		WithLoopbackPorts("7777/tcp"))
	testcontainers.CleanupContainer(t, c)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Inspect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for port, bindings := range info.NetworkSettings.Ports {
		for _, b := range bindings {
			n++
			if b.HostIP.String() != "127.0.0.1" {
				t.Errorf("%v published on %v, want 127.0.0.1 only", port, b.HostIP)
			}
		}
	}
	if n == 0 {
		t.Fatalf("no port published: %+v", info.NetworkSettings.Ports)
	}
}

func TestBaseSuite(t *testing.T) {
	for _, tc := range []struct {
		image, suite string
		ok           bool
	}{
		{BaseImage, "bookworm", true},
		{TrixieImage, "trixie", true},
		{"debian:sid-slim", "", false},
		{"scratch", "", false},
	} {
		suite, ok := BaseSuite(tc.image)
		if suite != tc.suite || ok != tc.ok {
			t.Errorf("BaseSuite(%q) = %q, %v; want %q, %v", tc.image, suite, ok, tc.suite, tc.ok)
		}
	}
}

func TestEnsureBaseImageUnknown(t *testing.T) {
	err := EnsureBaseImage(context.Background(), ForImage("debian:sid-slim"))
	if err == nil || !strings.Contains(err.Error(), "not one of") {
		t.Errorf("EnsureBaseImage(debian:sid-slim) = %v, want a refusal", err)
	}
}

// TestTrixieBaseImage makes (or finds) debian:trixie-slim and checks that
// it is trixie: the suite name was swapped into the host's mirror.
func TestTrixieBaseImage(t *testing.T) {
	Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := EnsureBaseImage(ctx, ForImage(TrixieImage)); err != nil {
		t.Fatal(err)
	}
	out := runOnce(t, ctx, TrixieImage, "sh", "-c", "cat /etc/os-release; cat /etc/apt/sources.list")
	if !strings.Contains(out, "VERSION_CODENAME=trixie") {
		t.Errorf("%s is not trixie:\n%s", TrixieImage, out)
	}
	if strings.Contains(out, "bookworm") {
		t.Errorf("%s names bookworm:\n%s", TrixieImage, out)
	}
}
