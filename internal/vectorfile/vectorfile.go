// Package vectorfile reads the test-vector files of SPEC.md §12: a header
// block, then step blocks, each a run of "name: value" lines. Lines that
// are empty or start with "#" are comments. A line "step: ..." opens a new
// step block. Repeated names accumulate in order.
//
// It is test support shared by the packages that replay the vectors; it is
// not API.
package vectorfile

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// TB is the part of testing.TB that the accessors use to fail a test.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
}

// Fields is one block of "name: value" lines; repeated names accumulate.
type Fields map[string][]string

// Has reports whether the block names k at least once.
func (f Fields) Has(k string) bool { return len(f[k]) > 0 }

// Str returns the first value of k, or "" when k is absent.
func (f Fields) Str(k string) string {
	if !f.Has(k) {
		return ""
	}
	return f[k][0]
}

// Hex returns the first value of k decoded from hex, or nil when k is
// absent; bad hex fails the test.
func (f Fields) Hex(t TB, k string) []byte {
	t.Helper()
	if !f.Has(k) {
		return nil
	}
	b, err := hex.DecodeString(f[k][0])
	if err != nil {
		t.Fatalf("field %s: %v", k, err)
	}
	return b
}

// Uint returns the first value of k as a decimal uint64, or def when k is
// absent; a bad number fails the test.
func (f Fields) Uint(t TB, k string, def uint64) uint64 {
	t.Helper()
	if !f.Has(k) {
		return def
	}
	n, err := strconv.ParseUint(f[k][0], 10, 64)
	if err != nil {
		t.Fatalf("field %s: %v", k, err)
	}
	return n
}

// Read returns the header block and the step blocks of the file at path.
func Read(path string) (head Fields, steps []Fields, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	head = Fields{}
	cur := head
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<22)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return nil, nil, fmt.Errorf("%s: bad line %q", path, line)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if k == "step" {
			cur = Fields{}
			steps = append(steps, cur)
		}
		cur[k] = append(cur[k], v)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return head, steps, nil
}
