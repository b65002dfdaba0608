package main

import (
	"strings"
	"testing"
	"time"

	"github.com/secsock/secsock"
	"go.nanomsg.org/mangos/v3"
	"go.nanomsg.org/mangos/v3/protocol/req"
)

// TestRepMaxSizeAndPermissive: --max-size limits bodies exactly (one byte
// over is an authenticated refusal the client reports, not a timeout or a
// reset), and --permissive serves a plain mangos client too.
func TestRepMaxSizeAndPermissive(t *testing.T) {
	dir := t.TempDir()
	tr := &transcript{}
	mustRun(t, tr, dir, "", "keygen", "server")
	rep := start(t, tr, dir, "rep", "--bind", "tcp://127.0.0.1:0", "--key", "server.key", "--echo", "--max-size", "8", "--permissive")
	m, _ := rep.waitLine(t, 0, listenRE)
	addr := m[1]
	args := func(data string) []string {
		return []string{"req", "--connect", addr, "--server-key", "server.pub", "--recv-timeout", "10s", "-D", data}
	}
	if r := mustRun(t, tr, dir, "", args("12345678")...); r.stdout != "12345678\n" {
		t.Fatalf("a body at --max-size: %q %q", r.stdout, r.stderr)
	}
	wantFail(t, runCmd(t, tr, dir, "", args("123456789")...), 1, "over its limit")

	plain, err := req.NewSocket()
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	plain.SetOption(mangos.OptionRecvDeadline, 10*time.Second)
	if err := plain.Dial(addr); err != nil {
		t.Fatal(err)
	}
	if err := plain.Send([]byte("plain")); err != nil {
		t.Fatal(err)
	}
	if b, err := plain.Recv(); err != nil || string(b) != "plain" {
		t.Fatalf("a plain client against --permissive: %q %v", b, err)
	}
}

// TestFingerprintKeyTextStartingWithDash: Z85 key text may begin with '-';
// fingerprint reads it as the key, not as an unknown flag (the flake of
// TestKeygenFingerprintImport when a random key did).
func TestFingerprintKeyTextStartingWithDash(t *testing.T) {
	var k secsock.PublicKey
	for i := 0; i < 10000 && !strings.HasPrefix(k.String(), "-"); i++ {
		sk, err := secsock.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		k = sk.Public()
	}
	if !strings.HasPrefix(k.String(), "-") {
		t.Skip("no key text starting with '-' in 10000 tries")
	}
	dir := t.TempDir()
	tr := &transcript{}
	for _, args := range [][]string{{"fingerprint", k.String()}, {"fingerprint", "--json", k.String()}} {
		if r := mustRun(t, tr, dir, "", args...); !strings.Contains(r.stdout, k.Fingerprint()) {
			t.Fatalf("%v: %q %q", args, r.stdout, r.stderr)
		}
	}
}
