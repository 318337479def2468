package target

import (
	"bytes"
	"context"
	"errors"
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

	"github.com/xmppcheck/xmppcheck/internal/dockerenv"
	"github.com/xmppcheck/xmppcheck/internal/xmppclient"
)

// ErrNotRunning is returned by operations on a container that was closed.
var ErrNotRunning = errors.New("target: container not running")

// ErrStartTimeout is wrapped by Start's error when the start (build
// included) took longer than the target file's start.timeout.
var ErrStartTimeout = errors.New("target: start timeout")

// Addrs are the host addresses (host:port) of the container's published
// ports; empty when the server has no such listener.
type Addrs struct {
	C2S    string // STARTTLS client port (RFC 6120)
	C2STLS string // direct TLS client port (XEP-0368)
	S2S    string // server-to-server port
	HTTP   string // HTTP (XEP-0363 upload) host:port
}

// Container is a running server started from a target file. Its methods
// are safe for concurrent use.
type Container struct {
	file  *File
	addrs Addrs
	id    string

	mu  sync.Mutex
	ctr *testcontainers.DockerContainer // nil once closed
}

// Option configures Start.
type Option func(*config)

type config struct {
	buildLog io.Writer
	progress io.Writer
	tick     time.Duration
}

// WithBuildLog streams the image build output to w (and, unless
// WithProgress says otherwise, the progress lines).
func WithBuildLog(w io.Writer) Option { return func(c *config) { c.buildLog = w } }

// WithProgress writes one line per phase of the start to w ("building
// image …", "starting container …", "ready in …"), and while a phase
// lasts a line every half minute with the time spent so far.
func WithProgress(w io.Writer) Option { return func(c *config) { c.progress = w } }

// phase reports the phases of a start on a progress writer.
type phase struct {
	w     io.Writer
	name  string
	start time.Time
	tick  time.Duration
	mu    sync.Mutex
	what  string
	since time.Time
	stop  chan struct{}
	done  chan struct{}
}

func newPhase(w io.Writer, name string, tick time.Duration) *phase {
	p := &phase{w: w, name: name, start: time.Now(), tick: tick, stop: make(chan struct{}), done: make(chan struct{})}
	go p.loop()
	return p
}

// enter starts a phase and writes its line.
func (p *phase) enter(what string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.what, p.since = what, time.Now()
	fmt.Fprintf(p.w, "target %s: %s…\n", p.name, what)
}

func (p *phase) loop() {
	defer close(p.done)
	t := time.NewTicker(p.tick)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.mu.Lock()
			if p.what != "" {
				fmt.Fprintf(p.w, "target %s: %s… (%s)\n", p.name, p.what, time.Since(p.since).Round(time.Second))
			}
			p.mu.Unlock()
		}
	}
}

// end stops the ticker and writes the outcome.
func (p *phase) end(err error) {
	close(p.stop)
	<-p.done
	if err != nil {
		fmt.Fprintf(p.w, "target %s: start failed after %s\n", p.name, time.Since(p.start).Round(time.Second))
		return
	}
	fmt.Fprintf(p.w, "target %s: ready in %s\n", p.name, time.Since(p.start).Round(time.Second))
}

// Start builds the image when the file says how (the engine's layer cache
// makes a rebuild of unchanged sources cheap), starts the container with
// its ports published on 127.0.0.1 (XMPPCHECK_PUBLISH_HOST overrides this
// for docker-in-docker CI) and waits as the file says. The whole start is
// bounded by the file's start.timeout (File.StartTimeout), and by ctx. On
// failure nothing is left running and the error carries the tail of the
// container output.
func Start(ctx context.Context, f *File, opts ...Option) (c *Container, err error) {
	cfg := config{buildLog: io.Discard, tick: 30 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.progress == nil {
		cfg.progress = cfg.buildLog
	}
	limit := f.StartTimeout()
	ctx, cancel := context.WithTimeoutCause(ctx, limit, fmt.Errorf("%w: the start took longer than %s (start.timeout of the target file, or --start-timeout)", ErrStartTimeout, limit))
	defer cancel()
	ph := newPhase(cfg.progress, f.Name, cfg.tick)
	defer func() {
		if err != nil && context.Cause(ctx) != nil && errors.Is(context.Cause(ctx), ErrStartTimeout) {
			err = fmt.Errorf("%w (%w)", err, context.Cause(ctx))
		}
		ph.end(err)
	}()
	dockerenv.Setup()
	image := f.Image
	if f.Build != nil {
		image = ImageTag(f.Name)
		ph.enter("building image " + image)
		bopts := []dockerenv.BuildOption{dockerenv.WithBuildLog(cfg.buildLog)}
		for name, pkg := range f.Build.GoBinaries {
			bopts = append(bopts, dockerenv.WithGoBinary(name, pkg))
		}
		if err := dockerenv.BuildImage(ctx, filepath.Join(f.Dir, f.Build.Context), f.Build.Dockerfile, image, f.Build.Args, bopts...); err != nil {
			return nil, fmt.Errorf("target %s: %w", f.Name, err)
		}
	}
	var exposed []string
	for _, name := range portNames {
		if p := f.Port(name); p != 0 {
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
		strategy = wait.ForListeningPort(strconv.Itoa(f.Port(f.Wait.Port)) + "/tcp").WithStartupTimeout(timeout)
	}
	publish, err := publishAddr()
	if err != nil {
		return nil, fmt.Errorf("target %s: %w", f.Name, err)
	}
	ph.enter("starting container from " + image + " and waiting until it is ready")
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
			logs := tailLogs(ctr)
			ctr.Terminate(context.WithoutCancel(ctx))
			return nil, fmt.Errorf("target %s: start: %w\n--- container output (tail) ---\n%s", f.Name, err, logs)
		}
		return nil, fmt.Errorf("target %s: start: %w", f.Name, err)
	}
	c = &Container{file: f, ctr: ctr, id: ctr.GetContainerID()}
	if err := c.mapPorts(ctx); err != nil {
		ctr.Terminate(context.WithoutCancel(ctx))
		return nil, err
	}
	return c, nil
}

func (c *Container) mapPorts(ctx context.Context) error {
	f := c.file
	host, err := c.ctr.Host(ctx) // 127.0.0.1 here (dockerenv.Setup); the dind service in CI templates
	if err != nil {
		return fmt.Errorf("target %s: host: %w", f.Name, err)
	}
	for _, p := range []struct {
		port int
		dst  *string
	}{{f.Ports.C2S, &c.addrs.C2S}, {f.Ports.C2STLS, &c.addrs.C2STLS}, {f.Ports.S2S, &c.addrs.S2S}, {f.Ports.HTTP, &c.addrs.HTTP}} {
		if p.port == 0 {
			continue
		}
		mp, err := c.ctr.MappedPort(ctx, strconv.Itoa(p.port)+"/tcp")
		if err != nil {
			return fmt.Errorf("target %s: port %d: %w", f.Name, p.port, err)
		}
		*p.dst = net.JoinHostPort(host, strconv.Itoa(int(mp.Num())))
	}
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

// tailLogs returns the last 40 lines of the container output.
func tailLogs(ctr *testcontainers.DockerContainer) string {
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

// File returns the target file the container was started from.
func (c *Container) File() *File { return c.file }

// Addrs returns the published addresses.
func (c *Container) Addrs() Addrs { return c.addrs }

// Docker returns the testcontainers handle (logs, file copies, inspect),
// or ErrNotRunning once the container is closed.
func (c *Container) Docker() (*testcontainers.DockerContainer, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctr == nil {
		return nil, fmt.Errorf("target %s: %w", c.file.Name, ErrNotRunning)
	}
	return c.ctr, nil
}

// ID returns the container id.
func (c *Container) ID() string { return c.id }

// Close terminates the container and removes it. It is safe to call more
// than once; pass a context that is not already cancelled (on interrupt:
// context.WithoutCancel) so that cleanup always happens.
func (c *Container) Close(ctx context.Context) error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	ctr := c.ctr
	c.ctr = nil
	c.mu.Unlock()
	if ctr == nil {
		return nil
	}
	if err := ctr.Terminate(ctx); err != nil {
		return fmt.Errorf("target %s: terminate: %w", c.file.Name, err)
	}
	return nil
}

// Exec runs cmd in the container and returns its output (standard output
// and error, at most 1 MiB); a non-zero exit is an error carrying it.
func (c *Container) Exec(ctx context.Context, cmd []string) (string, error) {
	ctr, err := c.Docker()
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

// Run runs cmd in the container with input on its standard input
// (testcontainers' Exec attaches none; "" attaches none either) and
// returns its standard output, of which it keeps the first max bytes; a
// non-zero exit is an error carrying the standard error.
func (c *Container) Run(ctx context.Context, cmd []string, input string, max int64) ([]byte, error) {
	fail := func(err error) ([]byte, error) {
		return nil, fmt.Errorf("target %s: exec %q: %w", c.file.Name, cmd, err)
	}
	ctr, err := c.Docker()
	if err != nil {
		return nil, err
	}
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return nil, fmt.Errorf("target %s: docker client: %w", c.file.Name, err)
	}
	defer cli.Close()
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
	if _, err := stdcopy.StdCopy(&limitWriter{&stdout, max}, &limitWriter{&stderr, 1 << 20}, att.Reader); err != nil {
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

// CreateAccount creates user with password: the file's accounts.create
// command in the container (accounts.stdin on its standard input), or
// in-band registration (XEP-0077 §3.1) when the file says ibr.
func (c *Container) CreateAccount(ctx context.Context, user, password string) error {
	f := c.file
	if f.Accounts.IBR {
		if err := RegisterIBR(ctx, c.addrs.C2S, f.Domain, user, password); err != nil {
			return fmt.Errorf("target %s: %w", f.Name, err)
		}
		return nil
	}
	vals := map[string]string{"user": user, "domain": f.Domain, "password": password}
	if in := f.Accounts.Stdin; in != "" {
		_, err := c.Run(ctx, Expand(f.Accounts.Create, vals), Expand([]string{in}, vals)[0], 1<<20)
		return err
	}
	_, err := c.Exec(ctx, Expand(f.Accounts.Create, vals))
	return err
}

// DeleteAccount deletes user: the accounts.delete command, or XEP-0077
// §3.2 removal when the file says ibr (an account that cannot log in any
// more is not an error there).
func (c *Container) DeleteAccount(ctx context.Context, user, password string) error {
	f := c.file
	if f.Accounts.IBR {
		return UnregisterIBR(ctx, c.addrs.C2S, f.Domain, user, password)
	}
	_, err := c.Exec(ctx, Expand(f.Accounts.Delete, map[string]string{"user": user, "domain": f.Domain, "password": password}))
	return err
}

// RegisterIBR creates user by in-band registration (XEP-0077 §3.1) on the
// c2s address addr. The server's certificate is not verified (containers
// and test servers use self-signed ones).
func RegisterIBR(ctx context.Context, addr, domain, user, password string) error {
	cl, err := xmppclient.Dial(ctx, addr, xmppclient.WithDomain(domain), xmppclient.WithInsecureSkipVerify())
	if err != nil {
		return fmt.Errorf("register %s: %w", user, err)
	}
	defer cl.Close(ctx)
	if err := cl.Register(ctx, user, password, nil); err != nil {
		return fmt.Errorf("register %s: %w", user, err)
	}
	return nil
}

// UnregisterIBR removes user by XEP-0077 §3.2; an account that cannot log
// in any more (already removed) is not an error.
func UnregisterIBR(ctx context.Context, addr, domain, user, password string) error {
	cl, err := xmppclient.Connect(ctx, addr, user, password, xmppclient.WithDomain(domain), xmppclient.WithInsecureSkipVerify())
	if errors.Is(err, xmppclient.SASLNotAuthorized) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("unregister %s: %w", user, err)
	}
	defer cl.Close(ctx)
	return cl.Unregister(ctx)
}
