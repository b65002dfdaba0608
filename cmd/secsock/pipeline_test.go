package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestPushPullCommands: secsock push and pull end to end. An authorized
// pusher's messages are printed; a stranger's and one sealed to another
// key are dropped and logged with the reason on the pull side, while the
// pushers themselves cannot tell; push --rep checks the credentials at a
// REP endpoint first and refuses to send when they are wrong.
func TestPushPullCommands(t *testing.T) {
	dir := t.TempDir()
	tr := &transcript{}
	for _, name := range []string{"server", "other", "alice", "mallory"} {
		mustRun(t, tr, dir, "", "keygen", name)
	}
	auth := filepath.Join(dir, "authorized_keys")
	alicePub, _ := os.ReadFile(filepath.Join(dir, "alice.pub"))
	os.WriteFile(auth, alicePub, 0o644)
	pull := start(t, tr, dir, "pull", "--bind", "tcp://127.0.0.1:0", "--key", "server.key", "--authorized", auth, "-n", "2")
	m, seen := pull.waitLine(t, 0, listenRE)
	push := func(key, serverKey string, extra ...string) []string {
		return append([]string{"push", "--connect", m[1], "--server-key", serverKey, "--key", key}, extra...)
	}
	mustRun(t, tr, dir, "", push("alice.key", "server.pub", "-D", "job1")...)
	if r := mustRun(t, tr, dir, "", push("mallory.key", "server.pub", "-D", "let me in")...); r.stderr != "" {
		t.Fatalf("a pusher cannot know it was refused, yet said %q", r.stderr)
	}
	mallory := strings.TrimSpace(mustRun(t, tr, dir, "", "pubkey", "mallory.key").stdout)
	_, seen = pull.waitLine(t, seen, regexp.MustCompile(`dropped a message from pusher `+regexp.QuoteMeta(mallory)+`: not-authorized`))
	mustRun(t, tr, dir, "", push("alice.key", "other.pub", "-D", "wrong key")...)
	pull.waitLine(t, seen, regexp.MustCompile(`dropped a message from an anonymous or unidentified pusher: forged`))

	rep := start(t, tr, dir, "rep", "--bind", "tcp://127.0.0.1:0", "--key", "server.key", "--authorized", auth)
	rm, _ := rep.waitLine(t, 0, listenRE)
	wantFail(t, runCmd(t, tr, dir, "", push("mallory.key", "server.pub", "--rep", rm[1], "-D", "x")...), 1, "not authorized")
	if r := mustRun(t, tr, dir, "", push("alice.key", "server.pub", "--rep", rm[1], "-D", "job2")...); !strings.Contains(r.stderr, "accepts this pusher") {
		t.Fatalf("push --rep: stderr %q", r.stderr)
	}
	select {
	case <-pull.done:
	case <-time.After(15 * time.Second):
		t.Fatal("pull -n 2 did not exit")
	}
	pull.mu.Lock()
	out := pull.stdout.String()
	pull.mu.Unlock()
	if out != "job1\njob2\n" {
		t.Fatalf("pull printed %q", out)
	}
	for _, secret := range []string{"server.key", "alice.key"} {
		b, _ := os.ReadFile(filepath.Join(dir, secret))
		if len(b) > 0 && strings.Contains(tr.String(), strings.TrimSpace(string(b))) {
			t.Fatalf("%s appears in the output", secret)
		}
	}
}
