package main

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
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/secsock/secsock"
)

// These tests build the command and run it as operators would: keygen,
// a rep server, req clients (authorized, refused, wrong server key), a
// device in between, SIGHUP reloads. Every process is bounded in time and
// killed at the end.

var binary string // built once by TestMain

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "secsock-cli-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "secsock")
	if runtime.GOOS == "windows" {
		binary += ".exe"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	out, err := exec.CommandContext(ctx, "go", "build", "-o", binary, ".").CombinedOutput()
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// transcript collects everything the commands printed, to check that no
// secret ever appears in it.
type transcript struct {
	mu  sync.Mutex
	all bytes.Buffer
}

func (tr *transcript) add(b []byte) {
	tr.mu.Lock()
	tr.all.Write(b)
	tr.mu.Unlock()
}

func (tr *transcript) String() string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.all.String()
}

type result struct {
	stdout, stderr string
	code           int
}

// runCmd runs the binary in dir with a time limit.
func runCmd(t *testing.T, tr *transcript, dir, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	tr.add(stdout.Bytes())
	tr.add(stderr.Bytes())
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("secsock %v: %v", args, err)
	}
	if ctx.Err() != nil {
		t.Fatalf("secsock %v: timed out", args)
	}
	return result{stdout.String(), stderr.String(), code}
}

// mustRun runs the command and requires exit status 0.
func mustRun(t *testing.T, tr *transcript, dir, stdin string, args ...string) result {
	t.Helper()
	r := runCmd(t, tr, dir, stdin, args...)
	if r.code != 0 {
		t.Fatalf("secsock %v: exit %d\nstdout: %s\nstderr: %s", args, r.code, r.stdout, r.stderr)
	}
	return r
}

// wantFail checks a failing run: the status, one line on stderr that
// starts with "secsock: " and contains every want (case-insensitive).
func wantFail(t *testing.T, r result, code int, want ...string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, code, r.stdout, r.stderr)
	}
	if !strings.HasPrefix(r.stderr, "secsock: ") || strings.Count(r.stderr, "\n") != 1 || !strings.HasSuffix(r.stderr, "\n") {
		t.Fatalf("stderr should be one line starting with 'secsock: ', got %q", r.stderr)
	}
	for _, w := range want {
		if !strings.Contains(strings.ToLower(r.stderr), strings.ToLower(w)) {
			t.Fatalf("stderr %q does not mention %q", r.stderr, w)
		}
	}
}

// proc is a long-running command (rep, device) whose stderr is watched.
type proc struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	stderr []string
	stdout bytes.Buffer
	done   chan struct{}
}

func start(t *testing.T, tr *transcript, dir string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	p := &proc{cmd: cmd, done: make(chan struct{})}
	errPipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	outPipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(errPipe)
		for sc.Scan() {
			tr.add([]byte(sc.Text() + "\n"))
			p.mu.Lock()
			p.stderr = append(p.stderr, sc.Text())
			p.mu.Unlock()
		}
	}()
	go func() {
		defer wg.Done()
		b, _ := io.ReadAll(outPipe)
		tr.add(b)
		p.mu.Lock()
		p.stdout.Write(b)
		p.mu.Unlock()
	}()
	go func() { wg.Wait(); cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			t.Errorf("secsock %v did not exit after kill", args)
		}
	})
	return p
}

// waitLine waits for a stderr line matching re (from line index from on)
// and returns its submatches and the index after it.
func (p *proc) waitLine(t *testing.T, from int, re *regexp.Regexp) ([]string, int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		p.mu.Lock()
		lines := p.stderr
		p.mu.Unlock()
		for i := from; i < len(lines); i++ {
			if m := re.FindStringSubmatch(lines[i]); m != nil {
				return m, i + 1
			}
		}
		select {
		case <-p.done:
			if len(lines) == p.lines() { // nothing more will come
				t.Fatalf("process exited; stderr so far:\n%s", p.stderrText())
			}
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("no stderr line matching %v; got:\n%s", re, p.stderrText())
	return nil, 0
}

func (p *proc) stderrText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.stderr, "\n")
}

func (p *proc) lines() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.stderr)
}

var listenRE = regexp.MustCompile(`listening on (tcp://127\.0\.0\.1:[0-9]+)`)

func TestCommandEndToEnd(t *testing.T) {
	dir := t.TempDir()
	tr := &transcript{}

	// Keys.
	pubs := map[string]string{}
	for _, name := range []string{"server", "alice", "mallory"} {
		r := mustRun(t, tr, dir, "", "keygen", name)
		pub := strings.TrimSpace(r.stdout)
		if _, err := secsock.ParsePublicKey(pub); err != nil || strings.Count(r.stdout, "\n") != 1 {
			t.Fatalf("keygen stdout %q: %v", r.stdout, err)
		}
		if fi, err := os.Stat(filepath.Join(dir, name+".key")); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s.key: %v %v", name, fi.Mode(), err)
		}
		if got := mustRun(t, tr, dir, "", "pubkey", name+".key").stdout; got != r.stdout {
			t.Fatalf("pubkey %s: %q, keygen printed %q", name, got, r.stdout)
		}
		pubs[name] = pub
	}
	secrets := map[string]secsock.SecretKey{}
	for name := range pubs {
		k, err := secsock.LoadSecretKeyFile(filepath.Join(dir, name+".key"))
		if err != nil {
			t.Fatal(err)
		}
		secrets[name] = k
	}
	before, _ := os.ReadFile(filepath.Join(dir, "alice.key"))
	wantFail(t, runCmd(t, tr, dir, "", "keygen", "alice"), 1, "already exists")
	if after, _ := os.ReadFile(filepath.Join(dir, "alice.key")); !bytes.Equal(before, after) {
		t.Fatal("keygen overwrote alice.key")
	}
	os.Chmod(filepath.Join(dir, "mallory.key"), 0o644)
	wantFail(t, runCmd(t, tr, dir, "", "pubkey", "mallory.key"), 1, "chmod 600 mallory.key")
	os.Chmod(filepath.Join(dir, "mallory.key"), 0o600)
	wantFail(t, runCmd(t, tr, dir, "", "pubkey", "alice.pub"), 1, "public key file")

	// A rep server that serves alice only.
	auth := filepath.Join(dir, "authorized_keys")
	alicePub, _ := os.ReadFile(filepath.Join(dir, "alice.pub"))
	os.WriteFile(auth, alicePub, 0o644)
	rep := start(t, tr, dir, "rep", "--bind", "tcp://127.0.0.1:0", "--key", "server.key", "--authorized", auth, "--echo")
	m, seen := rep.waitLine(t, 0, listenRE)
	addr := m[1]
	req := func(key, serverKey string, extra ...string) []string {
		args := []string{"req", "--connect", addr, "--server-key", serverKey, "--recv-timeout", "10s"}
		if key != "" {
			args = append(args, "--key", key)
		}
		return append(args, extra...)
	}

	t.Run("authorized", func(t *testing.T) {
		if r := mustRun(t, tr, dir, "", req("alice.key", "server.pub", "-D", "hello")...); r.stdout != "hello\n" || r.stderr != "" {
			t.Fatalf("got %q, stderr %q", r.stdout, r.stderr)
		}
		// The server key as text instead of a file; data from stdin.
		if r := mustRun(t, tr, dir, "bin\x00\"ary\n", req("alice.key", pubs["server"], "-Q")...); r.stdout != `"bin\x00\"ary\n"`+"\n" {
			t.Fatalf("quoted: %q", r.stdout)
		}
		os.WriteFile(filepath.Join(dir, "data.bin"), []byte{0xff, 'a', 0}, 0o644)
		if r := mustRun(t, tr, dir, "", req("alice.key", "server.pub", "-F", "data.bin", "--hex")...); r.stdout != "ff6100\n" {
			t.Fatalf("hex: %q", r.stdout)
		}
		if r := mustRun(t, tr, dir, "", req("alice.key", "server.pub", "-F", "data.bin", "-A")...); r.stdout != ".a.\n" {
			t.Fatalf("ascii: %q", r.stdout)
		}
		if r := mustRun(t, tr, dir, "", req("alice.key", "server.pub", "-D", "raw", "--raw", "--count", "3", "--interval", "10ms")...); r.stdout != "rawrawraw" {
			t.Fatalf("raw x3: %q", r.stdout)
		}
		if r := mustRun(t, tr, dir, "", req("alice.key", "server.pub", "--check")...); !strings.HasPrefix(r.stdout, "ok: server "+pubs["server"]) {
			t.Fatalf("check: %q", r.stdout)
		}
	})

	t.Run("refused client", func(t *testing.T) {
		r := runCmd(t, tr, dir, "", req("mallory.key", "server.pub", "-D", "let me in")...)
		wantFail(t, r, 1, "not authorized", "authenticated refusal", pubs["mallory"])
		wantFail(t, runCmd(t, tr, dir, "", req("mallory.key", "server.pub", "--check")...), 1, "not authorized")
		wantFail(t, runCmd(t, tr, dir, "", req("", "server.pub", "-D", "anon")...), 1, "not authorized", "anonymous")
		rep.waitLine(t, seen, regexp.MustCompile(`rejected a request from client `+regexp.QuoteMeta(pubs["mallory"])+`: not-authorized`))
	})

	t.Run("wrong server key", func(t *testing.T) {
		start := time.Now()
		r := runCmd(t, tr, dir, "", req("alice.key", "mallory.pub", "-D", "hello?")...)
		wantFail(t, r, 1, "wrong server key", "unauthenticated", pubs["mallory"])
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("took %v: should be one round trip, not a timeout", d)
		}
		rep.waitLine(t, seen, regexp.MustCompile(`rejected a request from an anonymous or unidentified client: forged \(could not open: the client has the wrong server key`))
	})

	t.Run("reload on SIGHUP", func(t *testing.T) {
		if runtime.GOOS == "windows" {
			t.Skip("no SIGHUP")
		}
		malloryPub, _ := os.ReadFile(filepath.Join(dir, "mallory.pub"))
		os.WriteFile(auth, append(append([]byte{}, alicePub...), malloryPub...), 0o644)
		from := rep.lines()
		rep.cmd.Process.Signal(syscall.SIGHUP)
		rep.waitLine(t, from, regexp.MustCompile(`reloaded 2 authorized keys`))
		if r := mustRun(t, tr, dir, "", req("mallory.key", "server.pub", "-D", "now ok")...); r.stdout != "now ok\n" {
			t.Fatalf("mallory after reload: %q", r.stdout)
		}
		// A broken file is refused; the previous list stays.
		os.WriteFile(auth, append(append([]byte{}, malloryPub...), "not-a-key\n"...), 0o644)
		from = rep.lines()
		rep.cmd.Process.Signal(syscall.SIGHUP)
		rep.waitLine(t, from, regexp.MustCompile(`reload failed, keeping the previous keys: .*authorized_keys:3: not a key`))
		if r := mustRun(t, tr, dir, "", req("alice.key", "server.pub", "-D", "still ok")...); r.stdout != "still ok\n" {
			t.Fatalf("alice after failed reload: %q", r.stdout)
		}
	})

	t.Run("device", func(t *testing.T) {
		dev := start(t, tr, dir, "device", "--front-bind", "tcp://127.0.0.1:0", "--back-bind", "tcp://127.0.0.1:0")
		m, next := dev.waitLine(t, 0, listenRE)
		front := m[1]
		m, _ = dev.waitLine(t, next, listenRE)
		back := m[1]
		// A device without workers: the request waits, then times out
		// with advice.
		lonely := start(t, tr, dir, "device", "--front-bind", "tcp://127.0.0.1:0", "--back-bind", "tcp://127.0.0.1:0")
		lm, _ := lonely.waitLine(t, 0, listenRE)
		r := runCmd(t, tr, dir, "", "req", "--connect", lm[1], "--server-key", "server.pub", "--key", "alice.key", "-D", "x", "--recv-timeout", "300ms")
		wantFail(t, r, 1, "no reply within 300ms", "is a secsock rep server running")
		worker := start(t, tr, dir, "rep", "--connect", back, "--key", "server.key", "-D", "pong", "-A", "--count", "1")
		worker.waitLine(t, 0, regexp.MustCompile(`dialed `))
		if r := mustRun(t, tr, dir, "", "req", "--connect", front, "--server-key", "server.pub", "-D", "ping through the device"); r.stdout != "pong\n" {
			t.Fatalf("through device: %q", r.stdout)
		}
		select {
		case <-worker.done:
		case <-time.After(10 * time.Second):
			t.Fatal("rep --count 1 did not exit after one request")
		}
		if code := worker.cmd.ProcessState.ExitCode(); code != 0 {
			t.Fatalf("worker exit %d", code)
		}
		worker.mu.Lock()
		got := worker.stdout.String()
		worker.mu.Unlock()
		if got != "ping through the device\n" {
			t.Fatalf("worker printed %q", got)
		}
		wantFail(t, runCmd(t, tr, dir, "", "device", "--front-bind", "tcp://127.0.0.1:0", "--back-bind", "tcp://127.0.0.1:0", "--key", "server.key"), 2, "needs no keys")
	})

	t.Run("server key rotation", func(t *testing.T) {
		newPub := strings.TrimSpace(mustRun(t, tr, dir, "", "keygen", "-q", "server2").stdout)
		rot := start(t, tr, dir, "rep", "--bind", "tcp://127.0.0.1:0", "--key", "server2.key", "--previous-key", "server.key", "-D", "rotated")
		m, _ := rot.waitLine(t, 0, listenRE)
		for _, sk := range []string{"server.pub", "server2.pub", newPub} {
			r := mustRun(t, tr, dir, "", "req", "--connect", m[1], "--server-key", sk, "--key", "alice.key", "-D", "x")
			if r.stdout != "rotated\n" {
				t.Fatalf("server key %s: %q", sk, r.stdout)
			}
		}
		r := runCmd(t, tr, dir, "", "req", "--connect", m[1], "--server-key", "mallory.pub", "-D", "x")
		wantFail(t, r, 1, "wrong server key")
		k, _ := secsock.LoadSecretKeyFile(filepath.Join(dir, "server2.key"))
		secrets["server2"] = k
	})

	t.Run("usage and errors", func(t *testing.T) {
		wantFail(t, runCmd(t, tr, dir, "", "req", "--connect", addr, "-D", "x"), 2, "--server-key is required")
		wantFail(t, runCmd(t, tr, dir, "", "frobnicate"), 2, "unknown command")
		wantFail(t, runCmd(t, tr, dir, "", "req", "--bogus"), 2, "flag provided but not defined")
		wantFail(t, runCmd(t, tr, dir, "", "req", "--connect", addr, "--server-key", "server.pub", "-A", "--hex", "-D", "x"), 2, "choose one")
		wantFail(t, runCmd(t, tr, dir, "", "rep", "--bind", "tcp://127.0.0.1:0"), 2, "--key is required")
		// A secret pasted as the server key text is not echoed back.
		wantFail(t, runCmd(t, tr, dir, "", "req", "--connect", addr, "--server-key", "nonsense"+secrets["alice"].Reveal(), "-D", "x"), 1, "not a public key")
		wantFail(t, runCmd(t, tr, dir, "", "req", "--connect", addr, "--server-key", "server.key", "-D", "x"), 1, "secret key file")
		// Another encoding of the server key (bit 255 set), as text and in
		// a public key file, is refused, and so is an authorized keys file
		// that lists alice twice under two encodings.
		other, _ := secsock.ParsePublicKey(pubs["server"])
		other[31] |= 0x80
		wantFail(t, runCmd(t, tr, dir, "", "req", "--connect", addr, "--server-key", other.String(), "-D", "x"), 1, "not a public key", "not the canonical encoding")
		os.WriteFile(filepath.Join(dir, "other.pub"), []byte("# secsock public key v1\n"+other.String()+" server\n"), 0o644)
		wantFail(t, runCmd(t, tr, dir, "", "req", "--connect", addr, "--server-key", "other.pub", "-D", "x"), 1, "other.pub:2", "not the canonical encoding")
		alice2, _ := secsock.ParsePublicKey(pubs["alice"])
		alice2[31] |= 0x80
		os.WriteFile(filepath.Join(dir, "twice"), []byte(pubs["alice"]+" alice\n"+alice2.String()+" alice again\n"), 0o644)
		wantFail(t, runCmd(t, tr, dir, "", "rep", "--bind", "tcp://127.0.0.1:0", "--key", "server.key", "--authorized", "twice"), 1, "twice:2", "not the canonical encoding")
		wantFail(t, runCmd(t, tr, dir, "", "req", "--connect", "tcp://127.0.0.1:1", "--server-key", "server.pub", "-D", "x"), 1, "dial tcp://127.0.0.1:1")
		wantFail(t, runCmd(t, tr, dir, "", "rep", "--bind", "tcp://127.0.0.1:0", "--key", "server.key", "--authorized", "missing"), 1, "missing")
		for _, cmd := range []string{"keygen", "pubkey", "req", "rep", "device"} {
			r := mustRun(t, tr, dir, "", "help", cmd)
			if !strings.Contains(r.stdout, "Usage: secsock "+cmd) || !strings.Contains(r.stdout, "Example") {
				t.Fatalf("help %s: %q", cmd, r.stdout)
			}
			if r2 := mustRun(t, tr, dir, "", cmd, "-h"); r2.stdout != r.stdout {
				t.Fatalf("%s -h differs from help %s", cmd, cmd)
			}
		}
		if r := mustRun(t, tr, dir, "", "help"); !strings.Contains(r.stdout, "device") {
			t.Fatalf("help: %q", r.stdout)
		}
	})

	// Stop the server with SIGTERM: a clean exit.
	if runtime.GOOS != "windows" {
		rep.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-rep.done:
			if code := rep.cmd.ProcessState.ExitCode(); code != 0 {
				t.Errorf("rep exit %d after SIGTERM", code)
			}
		case <-time.After(10 * time.Second):
			t.Error("rep did not exit on SIGTERM")
		}
	}

	all := tr.String()
	for name, k := range secrets {
		if strings.Contains(all, k.Reveal()) {
			t.Errorf("the secret key of %s appeared in the output", name)
		}
	}
	if !strings.Contains(all, pubs["alice"]) {
		t.Error("transcript looks empty")
	}
}
