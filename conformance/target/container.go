package target

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"

	"github.com/xmppcheck/xmppcheck/conformance/evidence"
	"github.com/xmppcheck/xmppcheck/conformance/report"
	itarget "github.com/xmppcheck/xmppcheck/internal/target"
	"github.com/xmppcheck/xmppcheck/spec"
)

// Container is a server started in a container from a target file, with
// its ports published on 127.0.0.1 only (internal/target starts it; this
// type adds the suite's capabilities: evidence, clock, accounts).
type Container struct {
	file     *File
	keep     bool
	buildLog io.Writer

	mu     sync.Mutex
	srv    *itarget.Container // nil before Start and after Close
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

// Has declares the channels the target file names. A declared channel is
// not trusted: each check proves it live with a positive control.
func (c *Container) Has(cp spec.Capability) (bool, string) {
	ev := c.file.Evidence
	switch cp {
	case spec.CapNetwork, spec.CapAccounts:
		return true, ""
	case spec.CapLogs:
		if len(ev.Logs) == 0 {
			return false, "the target file names no logs (evidence.logs)"
		}
		return true, ""
	case spec.CapData:
		if len(ev.Data) == 0 && len(ev.Decrypted) == 0 && len(ev.Credentials) == 0 {
			return false, "the target file names no data directory (evidence.data, evidence.decrypted or evidence.credentials)"
		}
		return true, ""
	case spec.CapEvidence:
		if ok, _ := c.Has(spec.CapLogs); ok {
			return true, ""
		}
		return c.Has(spec.CapData)
	case spec.CapClock:
		if c.file.Clock == nil {
			return false, "the target file gives no way to move the server's clock (clock.advance)"
		}
		return true, ""
	case spec.CapPurge:
		// The purge commands are the deployment's own job; without them
		// the server must purge on its own timers, on the moved clock.
		if c.file.Clock == nil {
			return false, "without clock.advance no purge can come due (clock.advance, purge)"
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

// Start builds the image if needed and starts the container, waiting as
// the target file says. On failure nothing is left running.
func (c *Container) Start(ctx context.Context) error {
	srv, err := itarget.Start(ctx, c.file, itarget.WithBuildLog(c.buildLog))
	if err != nil {
		return err
	}
	a := srv.Addrs()
	c.mu.Lock()
	c.srv, c.addrs = srv, Addrs{C2S: a.C2S, C2STLS: a.C2STLS, S2S: a.S2S, HTTP: a.HTTP}
	c.mu.Unlock()
	return nil
}

// Close terminates the container, unless WithKeep.
func (c *Container) Close(ctx context.Context) error {
	c.mu.Lock()
	srv := c.srv
	c.srv = nil
	c.mu.Unlock()
	if srv == nil {
		return nil
	}
	if c.keep {
		id := srv.ID()[:12]
		fmt.Fprintf(c.buildLog, "target %s: kept container %s running (c2s %s); remove it with: docker rm -f %s\n",
			c.file.Name, id, c.addrs.C2S, id)
		return nil
	}
	return srv.Close(ctx)
}

func (c *Container) server() (*itarget.Container, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.srv == nil {
		return nil, fmt.Errorf("target %s: not started", c.file.Name)
	}
	return c.srv, nil
}

func (c *Container) container() (*testcontainers.DockerContainer, error) {
	srv, err := c.server()
	if err != nil {
		return nil, err
	}
	return srv.Docker()
}

// exec runs a command in the container and fails on a non-zero exit.
func (c *Container) exec(ctx context.Context, cmd []string) (string, error) {
	srv, err := c.server()
	if err != nil {
		return "", err
	}
	return srv.Exec(ctx, cmd)
}

// execOutput runs cmd in the container with input on its standard input
// and returns its standard output (at most evidence.DefaultLimit bytes);
// a non-zero exit is an error carrying the standard error.
func (c *Container) execOutput(ctx context.Context, cmd []string, input string) ([]byte, error) {
	srv, err := c.server()
	if err != nil {
		return nil, err
	}
	return srv.Run(ctx, cmd, input, evidence.DefaultLimit)
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

// CreateAccount creates a exactly as given (the target file's create
// command, or in-band registration).
func (c *Container) CreateAccount(ctx context.Context, a Account) error {
	srv, err := c.server()
	if err != nil {
		return err
	}
	return srv.CreateAccount(ctx, a.User, a.Password)
}

// DeleteAccount deletes an account with the delete command (IBR targets:
// the account removes itself, XEP-0077 §3.2).
func (c *Container) DeleteAccount(ctx context.Context, a Account) error {
	srv, err := c.server()
	if err != nil {
		return err
	}
	return srv.DeleteAccount(ctx, a.User, a.Password)
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

// Credentials runs the evidence.credentials command; its standard output
// is credential records in the neutral line format (evidence.FormatRecords,
// docs/CLAIMS.md). Without the command it returns ErrUnsupported.
func (c *Container) Credentials(ctx context.Context) (*evidence.Corpus, error) {
	cmd := c.file.Evidence.Credentials
	if len(cmd) == 0 {
		return nil, fmt.Errorf("%w: target %s names no evidence.credentials command", ErrUnsupported, c.file.Name)
	}
	out, err := c.execOutput(ctx, cmd, "")
	if err != nil {
		return nil, fmt.Errorf("target %s: evidence.credentials: %w", c.file.Name, err)
	}
	corpus := evidence.NewCorpus(0)
	return corpus, corpus.Add("credentials:"+strings.Join(cmd, " "), out)
}

func (c *Container) StoreFormat() evidence.StoreFormat {
	return evidence.StoreFormat(c.file.Evidence.StoreFormat)
}

// Advance moves the faked clock by d and runs the purge commands.
func (c *Container) Advance(ctx context.Context, d time.Duration) error {
	if c.file.Clock == nil {
		return fmt.Errorf("%w: target %s has no clock.advance", ErrUnsupported, c.file.Name)
	}
	c.mu.Lock()
	c.offset += d
	total := c.offset
	c.mu.Unlock()
	vals := map[string]string{"by": d.String(), "by_seconds": itarget.Seconds(d), "total_seconds": itarget.Seconds(total)}
	if _, err := c.exec(ctx, itarget.Expand(c.file.Clock.Advance, vals)); err != nil {
		return err
	}
	for _, p := range c.file.Purge {
		if _, err := c.exec(ctx, itarget.Expand(p, vals)); err != nil {
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
