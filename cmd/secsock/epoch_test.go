package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/secsock/secsock"
)

// TestEpochSeedCommand: epoch-seed new writes a private seed file and
// refuses to overwrite it, advance is idempotent and refuses an open
// file, and rep --epoch-seed serves clients with the file (the library's
// tests show what the epoch keys protect).
func TestEpochSeedCommand(t *testing.T) {
	dir := t.TempDir()
	tr := &transcript{}
	seed := filepath.Join(dir, "keys", "service.seed") // a directory that does not exist yet
	r := mustRun(t, tr, dir, "", "epoch-seed", "new", "--length", "10m", seed)
	if !strings.Contains(r.stdout, "chain ") || !strings.Contains(r.stdout, "epochs of 10m0s") {
		t.Fatalf("new: %q", r.stdout)
	}
	if fi, err := os.Stat(seed); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("seed file: %v %v", fi, err)
	}
	wantFail(t, runCmd(t, tr, dir, "", "epoch-seed", "new", seed), 1, "already exists")
	if r := mustRun(t, tr, dir, "", "epoch-seed", "advance", seed); r.stdout != seed+": ratcheted 0 epochs\n" {
		t.Fatalf("advance: %q", r.stdout)
	}
	wantFail(t, runCmd(t, tr, dir, "", "epoch-seed", "grow", seed), 2, "unknown subcommand")
	os.Chmod(seed, 0o644)
	wantFail(t, runCmd(t, tr, dir, "", "epoch-seed", "advance", seed), 1, "chmod 600")
	os.Chmod(seed, 0o600)

	mustRun(t, tr, dir, "", "keygen", "server")
	rep := start(t, tr, dir, "rep", "--bind", "tcp://127.0.0.1:0", "--key", "server.key", "--epoch-seed", seed, "--echo")
	m, _ := rep.waitLine(t, 0, listenRE)
	rep.waitLine(t, 0, regexp.MustCompile(`forward secrecy on: epoch seed`))
	for range 2 {
		if r := mustRun(t, tr, dir, "", "req", "--connect", m[1], "--server-key", "server.pub", "--recv-timeout", "10s", "-D", "fs"); r.stdout != "fs\n" {
			t.Fatalf("req: %q %q", r.stdout, r.stderr)
		}
	}
	// The hybrid mode: rep --hybrid on serves req --hybrid, and a req
	// --hybrid against the server above (epoch keys, no mode) sends nothing.
	wantFail(t, runCmd(t, tr, dir, "", "req", "--connect", m[1], "--server-key", "server.pub", "--hybrid", "--recv-timeout", "10s", "-D", "pq"), 1, "hybrid")
	wantFail(t, runCmd(t, tr, dir, "", "rep", "--bind", "tcp://127.0.0.1:0", "--key", "server.key", "--hybrid", "on"), 2, "--epoch-seed")
	pq := start(t, tr, dir, "rep", "--bind", "tcp://127.0.0.1:0", "--key", "server.key", "--epoch-seed", seed, "--hybrid", "require", "--echo")
	mp, _ := pq.waitLine(t, 0, listenRE)
	pq.waitLine(t, 0, regexp.MustCompile(`hybrid mode require`))
	if r := mustRun(t, tr, dir, "", "req", "--connect", mp[1], "--server-key", "server.pub", "--hybrid", "--recv-timeout", "10s", "-D", "pq"); r.stdout != "pq\n" {
		t.Fatalf("req --hybrid: %q %q", r.stdout, r.stderr)
	}
	wantFail(t, runCmd(t, tr, dir, "", "req", "--connect", mp[1], "--server-key", "server.pub", "--recv-timeout", "10s", "-D", "classical"), 1, "requires")
	// The library side: the same file makes a socket that announces keys.
	s, err := secsock.NewRepSocket()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.SetOption(secsock.OptionEpochSeed, seed); err != nil {
		t.Fatal(err)
	}
}
