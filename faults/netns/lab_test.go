package netns

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// lab is the suite's private network: one namespace per process, each
// with a veth into a bridge that lives in a namespace of its own (hub),
// all on 10.99.0.0/24, which exists only inside these namespaces. The
// host's own namespace gets no interface, address or route.
type lab struct {
	t      *testing.T
	prefix string // namespace name prefix, unique per run
	dir    string
	nss    []string
	mu     sync.Mutex
	procs  []*proc
}

// hosts are the lab's namespaces and their addresses.
var hosts = map[string]string{
	"proxy":  "10.99.0.2",
	"client": "10.99.0.3",
	"device": "10.99.0.4",
	"redis":  "10.99.0.5",
	"w1":     "10.99.0.11",
	"w2":     "10.99.0.12",
	"w3":     "10.99.0.13",
}

// canNetns says why the suite cannot run here, or "" if it can.
func canNetns() string {
	if os.Geteuid() != 0 {
		return "needs root to make network namespaces (CI runs as root)"
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return "needs ip (iproute2)"
	}
	name := fmt.Sprintf("ssfprobe%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return "ip netns add failed: " + strings.TrimSpace(string(out))
	}
	exec.Command("ip", "netns", "del", name).Run()
	return ""
}

func newLab(t *testing.T) *lab {
	sweepStale()
	l := &lab{t: t, prefix: fmt.Sprintf("ssf%d-", selfPid()), dir: t.TempDir()}
	t.Cleanup(l.teardown)
	hub := l.addNS("hub")
	l.ip("-n", hub, "link", "add", "br0", "type", "bridge")
	l.ip("-n", hub, "link", "set", "br0", "up")
	for _, role := range sortedRoles() {
		ns := l.addNS(role)
		peer := "v-" + role
		// Made inside the namespaces: no interface ever appears in the host's.
		l.ip("-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", peer, "netns", hub)
		l.ip("-n", ns, "addr", "add", hosts[role]+"/24", "dev", "eth0")
		l.ip("-n", ns, "link", "set", "eth0", "up")
		l.ip("-n", hub, "link", "set", peer, "master", "br0", "up")
	}
	return l
}

// sweepStale removes what an earlier run left when it could not tear
// down (a go test -timeout panic skips cleanups): namespaces named
// ssfPID-* whose PID is no longer running, and the processes in them.
func sweepStale() {
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		var pid int
		if n, _ := fmt.Sscanf(name, "ssf%d-", &pid); n != 1 || pid <= 0 || syscall.Kill(pid, 0) == nil {
			continue
		}
		l := &lab{nss: []string{name}}
		l.teardown()
	}
}

func sortedRoles() []string {
	return []string{"proxy", "client", "device", "redis", "w1", "w2", "w3"}
}

func (l *lab) ns(role string) string { return l.prefix + role }

func (l *lab) addNS(role string) string {
	name := l.ns(role)
	l.ip("netns", "add", name)
	l.nss = append(l.nss, name)
	l.ip("-n", name, "link", "set", "lo", "up")
	return name
}

func (l *lab) ip(args ...string) {
	l.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		l.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// teardown stops every process the suite started (and anything left in
// its namespaces), then deletes the namespaces, which removes their veths.
func (l *lab) teardown() {
	l.mu.Lock()
	procs := l.procs
	l.mu.Unlock()
	for _, p := range procs {
		p.kill()
	}
	for _, ns := range l.nss {
		out, _ := exec.Command("ip", "netns", "pids", ns).Output()
		for _, f := range strings.Fields(string(out)) {
			var pid int
			if _, err := fmt.Sscan(f, &pid); err == nil && pid > 1 {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	for _, ns := range l.nss {
		for try := 0; try < 20; try++ {
			if exec.Command("ip", "netns", "del", ns).Run() == nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	l.nss = nil
}

// proc is one process started in a namespace, its output in files.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  string
	done chan struct{}
	err  error
}

// start runs bin in role's namespace; stdout goes to DIR/name.out and
// stderr to DIR/name.err.
func (l *lab) start(name, role, bin string, args ...string) *proc {
	l.t.Helper()
	p := &proc{name: name, out: filepath.Join(l.dir, name+".out"), done: make(chan struct{})}
	stdout, err := os.Create(p.out)
	if err != nil {
		l.t.Fatal(err)
	}
	stderr, err := os.Create(filepath.Join(l.dir, name+".err"))
	if err != nil {
		l.t.Fatal(err)
	}
	// ip netns exec execs bin in place: the pid is bin's own.
	p.cmd = exec.Command("ip", append([]string{"netns", "exec", l.ns(role), bin}, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = stdout, stderr
	if err := p.cmd.Start(); err != nil {
		l.t.Fatalf("%s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		stdout.Close()
		stderr.Close()
		close(p.done)
	}()
	l.mu.Lock()
	l.procs = append(l.procs, p)
	l.mu.Unlock()
	return p
}

// run starts a process and waits for it, at most limit.
func (l *lab) run(name, role, limit string, bin string, args ...string) (stdout string, err error) {
	l.t.Helper()
	d, _ := time.ParseDuration(limit)
	p := l.start(name, role, bin, args...)
	select {
	case <-p.done:
	case <-time.After(d):
		p.kill()
		return "", fmt.Errorf("%s: still running after %s", name, limit)
	}
	b, _ := os.ReadFile(p.out)
	if p.err != nil {
		e, _ := os.ReadFile(filepath.Join(l.dir, name+".err"))
		return string(b), fmt.Errorf("%s: %v: %s", name, p.err, e)
	}
	return string(b), nil
}

func (p *proc) signal(sig syscall.Signal) {
	if p.cmd.Process != nil {
		p.cmd.Process.Signal(sig)
	}
}

// kill ends the process at once (SIGKILL) and waits for it.
func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	p.signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
	}
}

// stop asks the process to stop (SIGTERM), then kills it after 5 s.
func (p *proc) stop() {
	p.signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		p.kill()
	}
}

// waitFor waits until the process's stderr has a line containing s.
func (l *lab) waitFor(p *proc, s string, limit time.Duration) {
	l.t.Helper()
	end := time.Now().Add(limit)
	for time.Now().Before(end) {
		b, _ := os.ReadFile(filepath.Join(l.dir, p.name+".err"))
		if strings.Contains(string(b), s) {
			return
		}
		b, _ = os.ReadFile(p.out)
		if strings.Contains(string(b), s) {
			return
		}
		select {
		case <-p.done:
			e, _ := os.ReadFile(filepath.Join(l.dir, p.name+".err"))
			l.t.Fatalf("%s exited (%v) before %q: %s", p.name, p.err, s, e)
		case <-time.After(50 * time.Millisecond):
		}
	}
	l.t.Fatalf("%s: no %q within %s", p.name, s, limit)
}

// proxyCtl drives the faultproxy process through its stdin.
type proxyCtl struct {
	t   *testing.T
	mu  sync.Mutex
	in  io.WriteCloser
	out *bufio.Scanner
	p   *proc
}

func (l *lab) startProxy(bin, captureDir string) *proxyCtl {
	l.t.Helper()
	p := &proc{name: "faultproxy", out: filepath.Join(l.dir, "faultproxy.out"), done: make(chan struct{})}
	p.cmd = exec.Command("ip", "netns", "exec", l.ns("proxy"), bin, "--capture-dir", captureDir)
	stderr, err := os.Create(filepath.Join(l.dir, "faultproxy.err"))
	if err != nil {
		l.t.Fatal(err)
	}
	p.cmd.Stderr = stderr
	in, err := p.cmd.StdinPipe()
	if err != nil {
		l.t.Fatal(err)
	}
	outPipe, err := p.cmd.StdoutPipe()
	if err != nil {
		l.t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		l.t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); stderr.Close(); close(p.done) }()
	l.mu.Lock()
	l.procs = append(l.procs, p)
	l.mu.Unlock()
	return &proxyCtl{t: l.t, in: in, out: bufio.NewScanner(outPipe), p: p}
}

// do sends one command and fails the test unless it is answered ok.
func (c *proxyCtl) do(format string, args ...any) {
	c.t.Helper()
	if err := c.try(format, args...); err != nil {
		c.t.Fatal(err)
	}
}

func (c *proxyCtl) try(format string, args ...any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	cmd := fmt.Sprintf(format, args...)
	if _, err := fmt.Fprintln(c.in, cmd); err != nil {
		return fmt.Errorf("faultproxy %q: %w", cmd, err)
	}
	if !c.out.Scan() {
		return fmt.Errorf("faultproxy %q: no answer", cmd)
	}
	if a := c.out.Text(); a != "ok" {
		return fmt.Errorf("faultproxy %q: %s", cmd, a)
	}
	return nil
}

func selfPid() int { return os.Getpid() }
