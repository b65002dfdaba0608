package vectorfile

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v.txt")
	src := "# comment\nname: one\nkey: 00ff\n\nstep: 1\nnow: 42\nx: a\nx: b\nstep: 2\n"
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	head, steps, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if head.Str("name") != "one" || !bytes.Equal(head.Hex(t, "key"), []byte{0, 0xff}) || head.Has("now") {
		t.Fatalf("head = %v", head)
	}
	if len(steps) != 2 || steps[0].Uint(t, "now", 7) != 42 || steps[1].Uint(t, "now", 7) != 7 {
		t.Fatalf("steps = %v", steps)
	}
	if got := steps[0]["x"]; len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Fatalf("repeated field = %q", got)
	}
	if steps[1].Hex(t, "absent") != nil || steps[1].Str("absent") != "" {
		t.Fatal("absent fields must read as empty")
	}
}

func TestReadRefusesBadLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v.txt")
	if err := os.WriteFile(path, []byte("name: ok\nno colon here\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Read(path); err == nil {
		t.Fatal("a line without a colon was accepted")
	}
}
