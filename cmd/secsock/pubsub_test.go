package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

// TestPubSubCommands: secsock pub and sub end to end over ipc. The
// authorized subscriber prints the messages; an unauthorized one is
// refused its keys and exits with an error; the signing key file is
// never printed.
func TestPubSubCommands(t *testing.T) {
	dir := t.TempDir()
	tr := &transcript{}
	for _, name := range []string{"svc", "alice", "mallory"} {
		mustRun(t, tr, dir, "", "keygen", name)
	}
	alicePub, _ := os.ReadFile(filepath.Join(dir, "alice.pub"))
	os.WriteFile(filepath.Join(dir, "subscribers"), alicePub, 0o644)
	keysAddr := "ipc://" + filepath.Join(dir, "keys.sock")
	pubAddr := "ipc://" + filepath.Join(dir, "pub.sock")
	pub := start(t, tr, dir, "pub", "--new-signing-key", "--signing-key", "pub.sign", "--keys-bind", keysAddr,
		"--key", "svc.key", "--authorized", "subscribers", "--bind", pubAddr, "--topic", "weather", "-D", "rain", "-i", "50ms")
	m, _ := pub.waitLine(t, 0, regexp.MustCompile(`publisher key (\S+)`))
	sub := func(key string) []string {
		return []string{"sub", "--connect", pubAddr, "--publisher", m[1], "--keys", keysAddr, "--server-key", "svc.pub",
			"--key", key, "--topic", "weather", "-n", "2"}
	}
	if r := mustRun(t, tr, dir, "", sub("alice.key")...); r.stdout != "rain\nrain\n" {
		t.Fatalf("sub printed %q", r.stdout)
	}
	wantFail(t, runCmd(t, tr, dir, "", sub("mallory.key")...), 1, "not authorized")
	// SIGHUP with alice removed: she is revoked and refused her keys.
	os.WriteFile(filepath.Join(dir, "subscribers"), nil, 0o644)
	if err := pub.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	pub.waitLine(t, 0, regexp.MustCompile(`reloaded 0 authorized keys, revoked 1`))
	wantFail(t, runCmd(t, tr, dir, "", sub("alice.key")...), 1, "not authorized")
	b, _ := os.ReadFile(filepath.Join(dir, "pub.sign"))
	if len(b) == 0 || strings.Contains(tr.String(), strings.TrimSpace(string(b))) {
		t.Fatal("the signing key appears in the output (or was not written)")
	}
}
