package target

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tcexec "github.com/testcontainers/testcontainers-go/exec"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/xmppcheck/xmppcheck/conformance/evidence"
	"github.com/xmppcheck/xmppcheck/conformance/report"
	"github.com/xmppcheck/xmppcheck/internal/dockerenv"
	"github.com/xmppcheck/xmppcheck/spec"
)

// Container is a server started in a container from a target file, with
// its ports published on 127.0.0.1 only.
type Container struct {
	file     *File
	keep     bool
	buildLog io.Writer

	mu     sync.Mutex
	ctr    *testcontainers.DockerContainer
	addrs  Addrs
	offset time.Duration
}

// ContainerOption configures a Container target.
type ContainerOption func(*Container)

// WithKeep leaves the container running after the run (for debugging).
func WithKeep(keep bool) ContainerOption { return func(c *Container) { c.keep = keep } }

// WithBuildLog streams image build output and notes to w.
func WithBuildLog(w io.Writer) ContainerOption { return func(c *Container) { c.buildLog = w } }

// NewContainer returns a target for the server the file describes. Start
// builds the image (when the file says how) and starts the container.
// When the file names evidence.decrypted commands, the target is also a
// PlainDataer (the server's decrypted export of an encrypted store).
func NewContainer(f *File, opts ...ContainerOption) Target {
	c := &Container{file: f, buildLog: io.Discard}
	for _, o := range opts {
		o(c)
	}
	if len(f.Evidence.Decrypted) > 0 {
		return &decryptedContainer{c}
	}
	return c
}

// decryptedContainer is a Container whose target file names commands that
// export the store decrypted.
type decryptedContainer struct{ *Container }

// PlainData runs the evidence.decrypted commands; each one's standard
// output is one file of the corpus ("decrypted:" and the command).
func (d *decryptedContainer) PlainData(ctx context.Context) (*evidence.Corpus, error) {
	corpus := evidence.NewCorpus(0)
	for _, cmd := range d.file.Evidence.Decrypted {
		out, err := d.execOutput(ctx, cmd, "")
		if err != nil {
			return nil, err
		}
		if err := corpus.Add("decrypted:"+strings.Join(cmd, " "), out); err != nil {
			return nil, err
		}
	}
	return corpus, nil
}

// File returns the target file.
func (c *Container) File() *File { return c.file }

func (c *Container) Info() report.Target {
	have, lacks := Capabilities(c)
	return report.Target{Name: c.file.Name, Kind: "container", Description: c.file.Description,
		Domain: c.file.Domain, Capabilities: have, Lacks: lacks}
}

func (c *Container) Domain() string { return c.file.Domain }

func (c *Container) Addrs() Addrs {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.addrs
}

func (c *Container) Has(cp spec.Capability) (bool, string) {
	switch cp {
	case spec.CapNetwork, spec.CapAccounts:
		return true, ""
	case spec.CapEvidence:
		if len(c.file.Evidence.Logs) == 0 && len(c.file.Evidence.Data) == 0 {
			return false, "the target file names no logs or data directories (evidence)"
		}
		return true, ""
	case spec.CapClock:
		if c.file.Clock == nil {
			return false, "the target file gives no way to move the server's clock (clock.advance)"
		}
		return true, ""
	}
	return false, "unknown capability"
}

// LocalAddrs: clients bind 127.x.y.z source addresses when the published
// ports are on loopback.
func (c *Container) LocalAddrs() bool {
	host, _, err := net.SplitHostPort(c.Addrs().C2S)
	if err != nil {
		return false
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}
func (c *Container) IBR() bool { return c.file.Accounts.IBR }

func imageTag(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	return "xmppcheck-target-" + b.String() + ":latest"
}

// Start builds the image if needed and starts the container, waiting as
// the target file says. On failure nothing is left running.
func (c *Container) Start(ctx context.Context) error {
	dockerenv.Setup()
	f := c.file
	image := f.Image
	if f.Build != nil {
		image = imageTag(f.Name)
		var opts []dockerenv.BuildOption
		opts = append(opts, dockerenv.WithBuildLog(c.buildLog))
		for name, pkg := range f.Build.GoBinaries {
			opts = append(opts, dockerenv.WithGoBinary(name, pkg))
		}
		if err := dockerenv.BuildImage(ctx, filepath.Join(f.Dir, f.Build.Context), f.Build.Dockerfile, image, f.Build.Args, opts...); err != nil {
			return fmt.Errorf("target %s: %w", f.Name, err)
		}
	}
	var exposed []string
	for _, p := range []int{f.Ports.C2S, f.Ports.C2STLS, f.Ports.S2S, f.Ports.HTTP} {
		if p != 0 {
			exposed = append(exposed, strconv.Itoa(p)+"/tcp")
		}
	}
	timeout := time.Duration(f.Wait.Timeout)
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	var strategy wait.Strategy
	if f.Wait.Log != "" {
		strategy = wait.ForLog(f.Wait.Log).WithStartupTimeout(timeout)
	} else {
		strategy = wait.ForListeningPort(strconv.Itoa(f.port(f.Wait.Port)) + "/tcp").WithStartupTimeout(timeout)
	}
	publish, err := publishAddr()
	if err != nil {
		return fmt.Errorf("target %s: %w", f.Name, err)
	}
	ctr, err := testcontainers.Run(ctx, image,
		testcontainers.WithExposedPorts(exposed...),
		testcontainers.WithEnv(f.Env),
		testcontainers.WithLabels(map[string]string{"org.xmppcheck.target": f.Name}),
		testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
			// Publish on 127.0.0.1 only, on ports the engine picks.
			hc.PortBindings = network.PortMap{}
			for _, e := range exposed {
				hc.PortBindings[network.MustParsePort(e)] = []network.PortBinding{{HostIP: publish}}
			}
			hc.PublishAllPorts = false
		}),
		testcontainers.WithWaitStrategy(strategy),
	)
	if err != nil {
		if ctr != nil {
			logs := c.tailLogs(ctr)
			ctr.Terminate(context.WithoutCancel(ctx))
			return fmt.Errorf("target %s: start: %w\n--- container output (tail) ---\n%s", f.Name, err, logs)
		}
		return fmt.Errorf("target %s: start: %w", f.Name, err)
	}
	host, err := ctr.Host(ctx) // 127.0.0.1 here (dockerenv.Setup); the dind service in CI templates
	if err != nil {
		ctr.Terminate(context.WithoutCancel(ctx))
		return fmt.Errorf("target %s: host: %w", f.Name, err)
	}
	addrs := Addrs{}
	for _, p := range []struct {
		port int
		dst  *string
	}{{f.Ports.C2S, &addrs.C2S}, {f.Ports.C2STLS, &addrs.C2STLS}, {f.Ports.S2S, &addrs.S2S}, {f.Ports.HTTP, &addrs.HTTP}} {
		if p.port == 0 {
			continue
		}
		mp, err := ctr.MappedPort(ctx, strconv.Itoa(p.port)+"/tcp")
		if err != nil {
			ctr.Terminate(context.WithoutCancel(ctx))
			return fmt.Errorf("target %s: port %d: %w", f.Name, p.port, err)
		}
		*p.dst = net.JoinHostPort(host, strconv.Itoa(int(mp.Num())))
	}
	c.mu.Lock()
	c.ctr, c.addrs = ctr, addrs
	c.mu.Unlock()
	return nil
}

// publishAddr is the host address container ports are published on:
// 127.0.0.1, unless XMPPCHECK_PUBLISH_HOST says otherwise (CI templates
// running the engine as a separate docker-in-docker service, whose ports
// are reached over the job's private network).
func publishAddr() (netip.Addr, error) {
	s := os.Getenv("XMPPCHECK_PUBLISH_HOST")
	if s == "" {
		return netip.MustParseAddr("127.0.0.1"), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("XMPPCHECK_PUBLISH_HOST: %w", err)
	}
	return a, nil
}

func (c *Container) tailLogs(ctr *testcontainers.DockerContainer) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rc, err := ctr.Logs(ctx)
	if err != nil {
		return err.Error()
	}
	defer rc.Close()
	b, _ := io.ReadAll(io.LimitReader(rc, 1<<20))
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	return strings.Join(lines, "\n")
}

// Close terminates the container, unless WithKeep.
func (c *Container) Close(ctx context.Context) error {
	c.mu.Lock()
	ctr := c.ctr
	c.ctr = nil
	c.mu.Unlock()
	if ctr == nil {
		return nil
	}
	if c.keep {
		fmt.Fprintf(c.buildLog, "target %s: kept container %s running (c2s %s); remove it with: docker rm -f %s\n",
			c.file.Name, ctr.GetContainerID()[:12], c.addrs.C2S, ctr.GetContainerID()[:12])
		return nil
	}
	if err := ctr.Terminate(ctx); err != nil {
		return fmt.Errorf("target %s: terminate: %w", c.file.Name, err)
	}
	return nil
}

func (c *Container) container() (*testcontainers.DockerContainer, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctr == nil {
		return nil, fmt.Errorf("target %s: not started", c.file.Name)
	}
	return c.ctr, nil
}

// exec runs a command in the container and fails on a non-zero exit.
func (c *Container) exec(ctx context.Context, cmd []string) (string, error) {
	ctr, err := c.container()
	if err != nil {
		return "", err
	}
	code, r, err := ctr.Exec(ctx, cmd, tcexec.Multiplexed())
	if err != nil {
		return "", fmt.Errorf("target %s: exec %q: %w", c.file.Name, cmd, err)
	}
	out, _ := io.ReadAll(io.LimitReader(r, 1<<20))
	if code != 0 {
		return string(out), fmt.Errorf("target %s: exec %q: exit status %d: %s", c.file.Name, cmd, code, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// execOutput runs cmd in the container with input on its standard input
// (testcontainers' Exec attaches none) and returns its standard output;
// a non-zero exit is an error carrying the standard error.
func (c *Container) execOutput(ctx context.Context, cmd []string, input string) ([]byte, error) {
	ctr, err := c.container()
	if err != nil {
		return nil, err
	}
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return nil, fmt.Errorf("target %s: docker client: %w", c.file.Name, err)
	}
	defer cli.Close()
	fail := func(err error) ([]byte, error) {
		return nil, fmt.Errorf("target %s: exec %q: %w", c.file.Name, cmd, err)
	}
	cr, err := cli.ExecCreate(ctx, ctr.GetContainerID(), client.ExecCreateOptions{
		Cmd: cmd, AttachStdin: input != "", AttachStdout: true, AttachStderr: true})
	if err != nil {
		return fail(err)
	}
	att, err := cli.ExecAttach(ctx, cr.ID, client.ExecAttachOptions{})
	if err != nil {
		return fail(err)
	}
	defer att.Close()
	stop := context.AfterFunc(ctx, att.Close) // unblocks the reads below
	defer stop()
	if input != "" {
		if _, err := io.WriteString(att.Conn, input); err != nil {
			return fail(err)
		}
		if err := att.CloseWrite(); err != nil {
			return fail(err)
		}
	}
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&limitWriter{&stdout, evidence.DefaultLimit}, &limitWriter{&stderr, 1 << 20}, att.Reader); err != nil {
		if ctx.Err() != nil {
			return fail(ctx.Err())
		}
		return fail(err)
	}
	// The engine marks the exec stopped shortly after closing the stream.
	for {
		ins, err := cli.ExecInspect(ctx, cr.ID, client.ExecInspectOptions{})
		if err != nil {
			return fail(err)
		}
		if !ins.Running {
			if ins.ExitCode != 0 {
				return stdout.Bytes(), fmt.Errorf("target %s: exec %q: exit status %d: %s", c.file.Name, cmd, ins.ExitCode,
					strings.TrimSpace(stderr.String()+" "+stdout.String()))
			}
			return stdout.Bytes(), nil
		}
		select {
		case <-ctx.Done():
			return fail(ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// limitWriter keeps the first n bytes written to it and drops the rest.
type limitWriter struct {
	b *bytes.Buffer
	n int64
}

func (w *limitWriter) Write(p []byte) (int, error) {
	if room := w.n - int64(w.b.Len()); room > 0 {
		w.b.Write(p[:min(int64(len(p)), room)])
	}
	return len(p), nil
}

// SeenAddrs: behind published ports the server sees the container
// network's gateway (the engine's proxy), or the client's own address
// where the engine forwards without a proxy; both are searched.
func (c *Container) SeenAddrs(ctx context.Context, local netip.Addr) []netip.Addr {
	out := []netip.Addr{}
	if local.IsValid() {
		out = append(out, local)
	}
	ctr, err := c.container()
	if err != nil {
		return out
	}
	ins, err := ctr.Inspect(ctx)
	if err != nil || ins.NetworkSettings == nil {
		return out
	}
	for _, n := range ins.NetworkSettings.Networks {
		if n != nil && n.Gateway.IsValid() {
			out = append(out, n.Gateway)
		}
	}
	return out
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// NewAccount creates an account with the target file's create command (or
// by in-band registration).
func (c *Container) NewAccount(ctx context.Context, hint string) (Account, error) {
	a := Account{User: hint + "-" + randomHex(5), Password: "pw-" + randomHex(12), Created: true}
	return a, c.CreateAccount(ctx, a)
}

// CreateAccount creates a exactly as given.
func (c *Container) CreateAccount(ctx context.Context, a Account) error {
	if c.file.Accounts.IBR {
		if err := registerIBR(ctx, c.Addrs().C2S, c.file.Domain, a); err != nil {
			return fmt.Errorf("target %s: %w", c.file.Name, err)
		}
		return nil
	}
	vals := map[string]string{"user": a.User, "domain": c.file.Domain, "password": a.Password}
	if in := c.file.Accounts.Stdin; in != "" {
		_, err := c.execOutput(ctx, expand(c.file.Accounts.Create, vals), expand([]string{in}, vals)[0])
		return err
	}
	_, err := c.exec(ctx, expand(c.file.Accounts.Create, vals))
	return err
}

// DeleteAccount deletes an account with the delete command (IBR targets:
// the account removes itself, XEP-0077 §3.2).
func (c *Container) DeleteAccount(ctx context.Context, a Account) error {
	if c.file.Accounts.IBR {
		return unregisterIBR(ctx, c.Addrs().C2S, c.file.Domain, a)
	}
	_, err := c.exec(ctx, expand(c.file.Accounts.Delete, map[string]string{"user": a.User, "domain": c.file.Domain, "password": a.Password}))
	return err
}

// Logs returns the container output ("stdout") and the log files.
func (c *Container) Logs(ctx context.Context) (*evidence.Corpus, error) {
	ctr, err := c.container()
	if err != nil {
		return nil, err
	}
	corpus := evidence.NewCorpus(0)
	for _, l := range c.file.Evidence.Logs {
		var rc io.ReadCloser
		if l == "stdout" {
			rc, err = ctr.Logs(ctx)
		} else {
			rc, err = ctr.CopyFileFromContainer(ctx, l)
		}
		if err != nil {
			return nil, fmt.Errorf("target %s: log %s: %w", c.file.Name, l, err)
		}
		b, err := io.ReadAll(io.LimitReader(rc, evidence.DefaultLimit))
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("target %s: log %s: %w", c.file.Name, l, err)
		}
		if err := corpus.Add("log:"+l, b); err != nil {
			return nil, err
		}
	}
	return corpus, nil
}

// Data runs the dump command (if any) and copies the data directories out.
func (c *Container) Data(ctx context.Context) (*evidence.Corpus, error) {
	ctr, err := c.container()
	if err != nil {
		return nil, err
	}
	if len(c.file.Evidence.Dump) > 0 {
		if _, err := c.exec(ctx, c.file.Evidence.Dump); err != nil {
			return nil, err
		}
	}
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return nil, fmt.Errorf("target %s: docker client: %w", c.file.Name, err)
	}
	defer cli.Close()
	corpus := evidence.NewCorpus(0)
	for _, d := range c.file.Evidence.Data {
		res, err := cli.CopyFromContainer(ctx, ctr.GetContainerID(), client.CopyFromContainerOptions{SourcePath: d})
		if err != nil {
			return nil, fmt.Errorf("target %s: copy %s out: %w", c.file.Name, d, err)
		}
		err = corpus.AddTar(res.Content, "data:"+strings.TrimSuffix(filepath.Dir(strings.TrimSuffix(d, "/")), "/")+"/")
		res.Content.Close()
		if err != nil {
			return nil, fmt.Errorf("target %s: copy %s out: %w", c.file.Name, d, err)
		}
	}
	return corpus, nil
}

func (c *Container) StoreFormat() evidence.StoreFormat { return c.file.Evidence.StoreFormat }

// Advance moves the faked clock by d and runs the purge commands.
func (c *Container) Advance(ctx context.Context, d time.Duration) error {
	if c.file.Clock == nil {
		return fmt.Errorf("%w: target %s has no clock.advance", ErrUnsupported, c.file.Name)
	}
	c.mu.Lock()
	c.offset += d
	total := c.offset
	c.mu.Unlock()
	vals := map[string]string{"by": d.String(), "by_seconds": secondsString(d), "total_seconds": secondsString(total)}
	if _, err := c.exec(ctx, expand(c.file.Clock.Advance, vals)); err != nil {
		return err
	}
	for _, p := range c.file.Purge {
		if _, err := c.exec(ctx, expand(p, vals)); err != nil {
			return err
		}
	}
	return nil
}

func (c *Container) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}
