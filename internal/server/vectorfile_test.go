package server

// Reading and writing the vector files of SPEC.md §12: a header block,
// then step blocks, as "name: value" lines.

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// fields is one block of "name: value" lines; repeated names accumulate.
type fields map[string][]string

func (f fields) has(k string) bool { return len(f[k]) > 0 }

func (f fields) str(k string) string {
	if !f.has(k) {
		return ""
	}
	return f[k][0]
}

func (f fields) hex(t *testing.T, k string) []byte {
	t.Helper()
	if !f.has(k) {
		return nil
	}
	b, err := hex.DecodeString(f[k][0])
	if err != nil {
		t.Fatalf("field %s: %v", k, err)
	}
	return b
}

func (f fields) uint(t *testing.T, k string, def uint64) uint64 {
	t.Helper()
	if !f.has(k) {
		return def
	}
	n, err := strconv.ParseUint(f[k][0], 10, 64)
	if err != nil {
		t.Fatalf("field %s: %v", k, err)
	}
	return n
}

// readVectorFile returns the header block and the step blocks of path.
func readVectorFile(t *testing.T, path string) (fields, []fields) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	head := fields{}
	var steps []fields
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
			t.Fatalf("%s: bad line %q", path, line)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if k == "step" {
			cur = fields{}
			steps = append(steps, cur)
		}
		cur[k] = append(cur[k], v)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return head, steps
}

// vectorWriter writes one vector file.
type vectorWriter struct{ b strings.Builder }

func (w *vectorWriter) comment(s string) {
	for _, l := range strings.Split(s, "\n") {
		fmt.Fprintf(&w.b, "# %s\n", l)
	}
}

func (w *vectorWriter) field(k string, v any) {
	if b, ok := v.([]byte); ok {
		v = hex.EncodeToString(b)
	}
	fmt.Fprintf(&w.b, "%s: %v\n", k, v)
}
