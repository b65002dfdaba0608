package server

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// checkerDir holds the Node.js checker of the hybrid vectors (SPEC.md
// §16.8): ML-KEM-768 from @noble/post-quantum, not Go's. .ci/run installs
// its node_modules with npm ci.
const checkerDir = "../../testdata/hybrid-check"

// nodeChecker returns the node binary, or skips (fails with
// SECSOCK_REQUIRE_NODE=1) when the checker cannot run here.
func nodeChecker(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	missing := ""
	switch {
	case err != nil:
		missing = "no node on PATH"
	default:
		if _, err := os.Stat(filepath.Join(checkerDir, "node_modules", "@noble", "post-quantum")); err != nil {
			missing = "testdata/hybrid-check/node_modules is missing (run: npm ci --prefix testdata/hybrid-check)"
		}
	}
	if missing != "" {
		if os.Getenv("SECSOCK_REQUIRE_NODE") == "1" {
			t.Fatalf("the second ML-KEM implementation cannot run: %s", missing)
		}
		t.Skipf("skipping the Node.js check of the hybrid vectors: %s", missing)
	}
	return node
}

func runChecker(t *testing.T, node, dir string) (string, error) {
	cmd := exec.Command(node, "check.mjs", dir)
	cmd.Dir = checkerDir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestHybridVectorsNode replays every hybrid vector file with a second
// ML-KEM-768 implementation and an independent key schedule.
func TestHybridVectorsNode(t *testing.T) {
	node := nodeChecker(t)
	abs, err := filepath.Abs(hybridVectorDir)
	if err != nil {
		t.Fatal(err)
	}
	out, err := runChecker(t, node, abs)
	if err != nil || !strings.Contains(out, " 0 failed") {
		t.Fatalf("node checker: %v\n%s", err, out)
	}
	t.Log(strings.TrimSpace(out))
}

// TestHybridVectorsNodeCanFail shows the checker fails on a vector whose
// shared secret, ciphertext randomness or ticket is not what ML-KEM and
// the SPEC give.
func TestHybridVectorsNodeCanFail(t *testing.T) {
	node := nodeChecker(t)
	src, err := os.ReadFile(filepath.Join(hybridVectorDir, "hybrid-session.vec"))
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{"kem_shared: ", "kem_random: ", "ticket: ", "kem_key: ", "request: "} {
		i := bytes.Index(src, []byte("\n"+field))
		if i < 0 {
			t.Fatalf("no %s field", field)
		}
		bad := bytes.Clone(src)
		j := i + 1 + len(field) + 10
		bad[j] = "01"[(bad[j]-'0'+1)%2] // a hex digit changed
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "bad.vec"), bad, 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := runChecker(t, node, dir); err == nil {
			t.Errorf("a changed %sfield passed the checker:\n%s", field, out)
		}
	}
}
