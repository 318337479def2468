package target

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"

	"github.com/xmppcheck/xmppcheck/internal/dockerenv"
	"github.com/xmppcheck/xmppcheck/internal/xmppclient"
)

// TestContainerLifecycle starts the reference fixture, creates an account
// by exec (the password on standard input), logs in over the published
// port, deletes the account, and terminates the container; then a target
// that never becomes ready must leave no container behind.
func TestContainerLifecycle(t *testing.T) {
	dockerenv.Require(t)
	f, err := LoadFile("../../fixtures/targets/reference/target.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := Start(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	a := c.Addrs()
	for _, addr := range []string{a.C2S, a.C2STLS, a.S2S, a.HTTP} {
		if !strings.HasPrefix(addr, "127.0.0.1:") {
			t.Errorf("address %q is not published on 127.0.0.1", addr)
		}
	}
	login := func() error {
		cl, err := xmppclient.Connect(ctx, a.C2S, "lifecycle", "pw-lifecycle-1",
			xmppclient.WithDomain(f.Domain), xmppclient.WithInsecureSkipVerify())
		if err == nil {
			cl.Close(ctx)
		}
		return err
	}
	if err := login(); !errors.Is(err, xmppclient.SASLNotAuthorized) {
		t.Fatalf("login before the account exists: %v, want not-authorized", err)
	}
	if err := c.CreateAccount(ctx, "lifecycle", "pw-lifecycle-1"); err != nil {
		t.Fatal(err)
	}
	if err := login(); err != nil {
		t.Fatalf("login after CreateAccount: %v", err)
	}
	if err := c.DeleteAccount(ctx, "lifecycle", "pw-lifecycle-1"); err != nil {
		t.Fatal(err)
	}
	if err := login(); !errors.Is(err, xmppclient.SASLNotAuthorized) {
		t.Fatalf("login after DeleteAccount: %v, want not-authorized", err)
	}
	if _, err := c.Exec(ctx, []string{"/xmppcheck", "no-such-subcommand"}); err == nil || !strings.Contains(err.Error(), "exit status") {
		t.Errorf("a failing exec: %v", err)
	}
	id := c.ID()
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(ctx); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := c.Exec(ctx, []string{"/xmppcheck", "--help"}); !errors.Is(err, ErrNotRunning) {
		t.Errorf("exec after Close: %v", err)
	}
	cli := dockerClient(t, ctx)
	if _, err := cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{}); err == nil {
		t.Errorf("container %s still exists after Close", id)
	}

	// A server that never logs the wait line: Start fails after the
	// timeout and removes the container.
	b := make([]byte, 6)
	rand.Read(b)
	name := "never-ready-" + hex.EncodeToString(b)
	p := filepath.Join(t.TempDir(), "target.yaml")
	os.WriteFile(p, []byte("name: "+name+"\nimage: "+ImageTag(f.Name)+"\ndomain: localhost\nports: {c2s: 5222}\n"+
		"wait: {log: \"this line is never logged\", timeout: 3s}\naccounts: {ibr: true}\n"), 0o644)
	bad, err := LoadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := Start(ctx, bad); err == nil {
		c.Close(ctx)
		t.Fatal("a server that never became ready started")
	} else if !strings.Contains(err.Error(), "container output") {
		t.Errorf("the error carries no container output: %v", err)
	}
	if n := containersLabelled(t, ctx, "org.xmppcheck.target", name); n != 0 {
		t.Errorf("%d containers of the failed start are left", n)
	}
}

func dockerClient(t *testing.T, ctx context.Context) *testcontainers.DockerClient {
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// containersLabelled counts containers (running or not) with label=value
// (any value when value is "").
func containersLabelled(t *testing.T, ctx context.Context, label, value string) int {
	cli := dockerClient(t, ctx)
	f := label
	if value != "" {
		f += "=" + value
	}
	res, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", f)})
	if err != nil {
		t.Fatalf("list containers: %v", err)
	}
	return len(res.Items)
}
