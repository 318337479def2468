package reference

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/xmppcheck/xmppcheck/internal/ns"
	"github.com/xmppcheck/xmppcheck/spec/policies"
)

// TestMain lets the test binary run a server subprocess (for the kill -9
// test): with XMPPREF_SERVE_DATA set it serves until killed.
func TestMain(m *testing.M) {
	if dir := os.Getenv("XMPPREF_SERVE_DATA"); dir != "" {
		serveForever(dir, os.Getenv("XMPPREF_SERVE_KEY"))
		return
	}
	if os.Getenv("XMPPREF_BENCH_CLIENT") != "" {
		benchClientMain()
		return
	}
	os.Exit(m.Run())
}

func serveForever(dir, key string) {
	pol, err := policies.LoadDefault()
	if err != nil {
		panic(err)
	}
	opts := []Option{WithDataDir(dir), WithKeyFile(key), WithC2SAddr("127.0.0.1:0"), WithC2STLSAddr("")}
	if a := os.Getenv("XMPPREF_SERVE_ADDR"); a != "" {
		opts = append(opts, WithC2SAddr(a))
	}
	if p := os.Getenv("XMPPREF_CPUPROFILE"); p != "" {
		// Profiling the server under `xmppcheck load` (BENCHMARKS.md):
		// the profile is written on SIGTERM.
		f, err := os.Create(p)
		if err != nil {
			panic(err)
		}
		pprof.StartCPUProfile(f)
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM)
		go func() {
			<-sig
			pprof.StopCPUProfile()
			f.Close()
			os.Exit(0)
		}()
	}
	if os.Getenv("XMPPREF_SERVE_NOCAP") != "" {
		opts = append(opts, WithLimits(Limits{MaxConnsPerAddr: -1}))
	}
	srv, err := New(pol, opts...)
	if err != nil {
		panic(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		panic(err)
	}
	if n, _ := strconv.Atoi(os.Getenv("XMPPREF_SERVE_USERS")); n > 0 {
		// Accounts PREFIX0… with password "pw", for benchmarks.
		prefix := cmp.Or(os.Getenv("XMPPREF_SERVE_PREFIX"), "load")
		var wg sync.WaitGroup
		for w := 0; w < 2; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < n; i += 2 {
					if err := srv.CreateUser(context.Background(), fmt.Sprintf("%s%d", prefix, i), "pw"); err != nil && !errors.Is(err, ErrUserExists) {
						panic(err)
					}
				}
			}()
		}
		wg.Wait()
	}
	fmt.Printf("LISTENING %s\n", srv.Addrs().C2S)
	// Commands on standard input (benchmarks): "mem" prints the process's
	// memory after a garbage collection.
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		if sc.Text() == "mem" {
			fmt.Println(memLine(srv))
		}
	}
	select {}
}

func startSubprocess(t *testing.T, dir, key string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "XMPPREF_SERVE_DATA="+dir, "XMPPREF_SERVE_KEY="+key)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "LISTENING "); ok {
				lines <- a
			}
		}
	}()
	select {
	case a := <-lines:
		return cmd, a
	case <-time.After(30 * time.Second):
		t.Fatal("subprocess server did not start")
	}
	return nil, ""
}

// TestKill9LosesNoAcceptedOfflineMessage: the server is killed with SIGKILL
// right after it accepted offline messages (a ping answered after them
// proves they were processed); after a restart every one is delivered.
func TestKill9LosesNoAcceptedOfflineMessage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts subprocesses")
	}
	root := t.TempDir()
	dir, key := filepath.Join(root, "data"), filepath.Join(root, "key")
	cmd, addr := startSubprocess(t, dir, key)
	srv := &Server{cfg: config{domain: "localhost"}}
	srv.addrs.C2S = addr
	// Accounts through in-band registration (the store belongs to the child).
	c := rawDial(t, addr, "localhost")
	c.open()
	if err := c.startTLS(0, 0); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"alice", "bob"} {
		if r := register(c, u, "pw"); r.Get("type") != "result" {
			t.Fatalf("register %s: %s", u, r)
		}
	}
	alice := login(t, srv, "alice", "pw", "a")
	const n = 20
	for i := 0; i < n; i++ {
		alice.send("<message to='bob@localhost' type='chat'><body>durable-%d</body></message>", i)
	}
	alice.sync()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	_, addr = startSubprocess(t, dir, key)
	srv.addrs.C2S = addr
	bob := login(t, srv, "bob", "pw", "b")
	bob.send("<presence/>")
	got := map[string]bool{}
	for len(got) < n {
		m := bob.expect("offline message", isMessage)
		got[m.ChildText(ns.Client, "body")] = true
	}
	for i := 0; i < n; i++ {
		if !got[fmt.Sprintf("durable-%d", i)] {
			t.Errorf("durable-%d lost", i)
		}
	}
}
