// Package redistest runs real redis-server processes on 127.0.0.1 for
// tests: each on a free port, with its directory under t.TempDir(), no
// persistence unless asked, stopped at the end of the test. Without a
// redis-server binary on PATH the test is skipped, unless the environment
// sets SECSOCK_REQUIRE_REDIS=1 (CI does), which makes it fail.
package redistest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is one redis-server process (restartable on the same port).
type Server struct {
	t       testing.TB
	bin     string
	Port    int
	dir     string
	persist bool
	cmd     *exec.Cmd
	done    chan struct{}
}

// Start starts a redis-server with no persistence (--save "",
// --appendonly no): a restart comes back empty.
func Start(t testing.TB) *Server { return start(t, false) }

// StartPersistent starts one that loads and writes dump.rdb in its
// directory on SAVE (no automatic saves): a restart comes back with the
// last SAVE.
func StartPersistent(t testing.TB) *Server { return start(t, true) }

// binary finds redis-server on PATH, or skips the test (fails it with
// SECSOCK_REQUIRE_REDIS=1).
func binary(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("SECSOCK_REQUIRE_REDIS") == "1" {
			t.Fatalf("redis-server not found on PATH and SECSOCK_REQUIRE_REDIS=1: %v", err)
		}
		t.Skip("redis-server not found on PATH (apt-get install redis-server, or set SECSOCK_REQUIRE_REDIS=1 to fail instead)")
	}
	return bin
}

func start(t testing.TB, persist bool) *Server {
	t.Helper()
	s := &Server{t: t, bin: binary(t), dir: t.TempDir(), persist: persist}
	var lastErr error
	for try := 0; try < 5; try++ {
		s.Port = freePort(t)
		if lastErr = s.launch(); lastErr == nil {
			t.Cleanup(s.Stop)
			return s
		}
	}
	t.Fatalf("redis-server did not start: %v", lastErr)
	return nil
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Addr is host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// URL is the redis:// URL of database 0.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

func (s *Server) launch() error {
	args := []string{"--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1", "--dir", s.dir,
		"--save", "", "--appendonly", "no", "--protected-mode", "yes", "--daemonize", "no",
		"--logfile", filepath.Join(s.dir, "redis.log")}
	if s.persist {
		args = append(args, "--dbfilename", "dump.rdb")
	}
	cmd := exec.Command(s.bin, args...)
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		select {
		case <-done:
			return fmt.Errorf("redis-server exited: %s", s.logTail())
		default:
		}
		if c, err := net.DialTimeout("tcp", s.Addr(), 100*time.Millisecond); err == nil {
			ok := ping(c)
			c.Close()
			if ok {
				s.cmd, s.done = cmd, done
				return nil
			}
		}
	}
	_ = cmd.Process.Kill()
	<-done
	return fmt.Errorf("redis-server not answering on %s: %s", s.Addr(), s.logTail())
}

func ping(c net.Conn) bool {
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "+PONG")
}

func (s *Server) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// Stop kills the process (SIGKILL: nothing is saved) and waits for it.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// Restart stops the process and starts a new one on the same port.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	var err error
	for try := 0; try < 20; try++ { // the port may take a moment to free
		if err = s.launch(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("redis-server did not restart: %v", err)
}

// Client returns a plain client for administration (closed at cleanup).
func (s *Server) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
	s.t.Cleanup(func() { c.Close() })
	return c
}

// Do runs one command on a fresh connection and returns its error.
func (s *Server) Do(args ...any) error {
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.Do(ctx, args...).Err()
}

// StartSentinel starts a redis-server in Sentinel mode on a free port of
// 127.0.0.1 that monitors master under name, and returns its address
// once it answers (stopped at the end of the test).
func StartSentinel(t testing.TB, master *Server, name string) string {
	t.Helper()
	dir := t.TempDir()
	port := freePort(t)
	conf := filepath.Join(dir, "sentinel.conf")
	body := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor %s 127.0.0.1 %d 1\n", port, dir, name, master.Port)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(master.bin, conf, "--sentinel", "--logfile", filepath.Join(dir, "sentinel.log"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
	addr := "127.0.0.1:" + strconv.Itoa(port)
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			ok := ping(c)
			c.Close()
			if ok {
				return addr
			}
		}
	}
	t.Fatalf("redis sentinel not answering on %s", addr)
	return ""
}

// StartCluster starts n (at least 3) redis-server processes in cluster
// mode on free ports of 127.0.0.1, joins them into one cluster without
// replicas (redis-cli --cluster create) and returns their addresses once
// the cluster is up (stopped at the end of the test).
func StartCluster(t testing.TB, n int) []string {
	t.Helper()
	var addrs []string
	for i := 0; i < n; i++ {
		s := &Server{t: t, bin: binary(t), dir: t.TempDir(), Port: freePort(t)}
		args := []string{"--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1", "--dir", s.dir, "--save", "",
			"--appendonly", "no", "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--logfile", filepath.Join(s.dir, "redis.log")}
		cmd := exec.Command(s.bin, args...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
		addrs = append(addrs, s.Addr())
		waitPing(t, s.Addr())
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Skip("redis-cli not found on PATH (it comes with redis-server's package)")
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	defer c.Close()
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		info, err := c.ClusterInfo(context.Background()).Result()
		if err == nil && strings.Contains(info, "cluster_state:ok") {
			return addrs
		}
		if time.Now().After(end) {
			t.Fatalf("cluster not ok: %v %s", err, info)
		}
	}
}

func waitPing(t testing.TB, addr string) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			ok := ping(c)
			c.Close()
			if ok {
				return
			}
		}
	}
	t.Fatalf("redis-server not answering on %s", addr)
}
