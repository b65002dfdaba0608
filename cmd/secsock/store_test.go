package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/secsock/secsock/internal/redistest"
)

// TestRepReplayStore: rep --replay-store shares its replay state through
// Redis (password from a file, never printed: the URL is logged
// redacted), and refuses, authenticated, when Redis is gone.
func TestRepReplayStore(t *testing.T) {
	srv := redistest.Start(t)
	const password = "s3cret-redis-pw"
	if err := srv.Do("CONFIG", "SET", "requirepass", password); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tr := &transcript{}
	mustRun(t, tr, dir, "", "keygen", "server")
	os.WriteFile(filepath.Join(dir, "pw"), []byte(password+"\n"), 0o600)
	wantFail(t, runCmd(t, tr, dir, "", "replay-store", "init", "--replay-store", "redis://"+srv.Addr()+"/0",
		"--replay-store-password-file", "pw"), 1, "less than 2m20s")
	if r := mustRun(t, tr, dir, "", "replay-store", "init", "--replay-store", "redis://"+srv.Addr()+"/0",
		"--replay-store-password-file", "pw", "--quiet", "0"); !strings.Contains(r.stdout, "marked new") {
		t.Fatalf("init: %q", r.stdout)
	}
	rep := start(t, tr, dir, "rep", "--bind", "tcp://127.0.0.1:0", "--key", "server.key", "--echo",
		"--replay-store", "redis://"+srv.Addr()+"/0", "--replay-store-password-file", "pw", "--replay-store-deadline", "200ms")
	m, seen := rep.waitLine(t, 0, listenRE)
	rep.waitLine(t, 0, regexp.MustCompile(`replay state shared through redis://127\.0\.0\.1:`))
	// Also with the password in the URL: logged redacted.
	rep2 := start(t, tr, dir, "rep", "--bind", "tcp://127.0.0.1:0", "--key", "server.key", "--echo",
		"--replay-store", "redis://:"+password+"@"+srv.Addr()+"/0")
	rep2.waitLine(t, 0, regexp.MustCompile(`replay state shared through redis://:xxxxx@127\.0\.0\.1:`))
	req := []string{"req", "--connect", m[1], "--server-key", "server.pub", "--recv-timeout", "10s"}
	if r := runCmd(t, tr, dir, "", append(req, "-D", "hello")...); r.stdout != "hello\n" {
		t.Fatalf("through the store: %q %q", r.stdout, r.stderr)
	}
	srv.Stop()
	wantFail(t, runCmd(t, tr, dir, "", append(req, "-D", "down")...), 1, "replay store")
	rep.waitLine(t, seen, regexp.MustCompile(`store-unavailable`))
	if strings.Contains(tr.String(), password) {
		t.Fatal("the Redis password was printed")
	}
}
