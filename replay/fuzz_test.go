package replay

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// fuzzCounters turns fuzzer bytes into a counter sequence: each 4-byte
// group is an operation byte and a 24-bit value, relative to the highest
// counter so far so that the window edges are reached often.
func fuzzCounters(ops []byte) []uint64 {
	var out []uint64
	var high uint64
	for len(ops) >= 4 && len(out) < 4096 {
		op, v := ops[0], uint64(ops[1])<<16|uint64(ops[2])<<8|uint64(ops[3])
		ops = ops[4:]
		var c uint64
		switch op % 6 {
		case 0: // near the top, either side
			d := v % (2 * WindowSize)
			if d < WindowSize && high < WindowSize-d {
				c = 0
			} else {
				c = high + d - WindowSize
			}
		case 1: // forward jump
			c = high + v
		case 2: // absolute small
			c = v
		case 3: // the very top of the counter space
			c = math.MaxUint64 - v%4
		case 4: // exactly at the window edge
			c = high - min(high, WindowSize-1+v%3)
		case 5: // a duplicate of the top
			c = high
		}
		if c > high && c != math.MaxUint64 {
			high = c
		}
		out = append(out, c)
	}
	return out
}

// FuzzFilter compares Filter against a reference model: a counter is
// accepted iff it was never accepted, lies less than WindowSize below the
// highest accepted counter, and is not MaxUint64. Seen must agree with
// Accept and never record.
func FuzzFilter(f *testing.F) {
	for _, s := range fuzzFilterSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ops []byte) {
		var flt Filter
		accepted := map[uint64]bool{}
		var high uint64
		var any bool
		for i, c := range fuzzCounters(ops) {
			want := !accepted[c] && c != math.MaxUint64 && (!any || c > high || high-c < WindowSize)
			if seen := flt.Seen(c); seen == want {
				t.Fatalf("step %d counter %d: Seen = %v, but Accept should be %v", i, c, seen, want)
			}
			if got := flt.Accept(c); got != want {
				t.Fatalf("step %d counter %d (high %d): Accept = %v, want %v", i, c, high, got, want)
			}
			if want {
				accepted[c] = true
				if !any || c > high {
					high, any = c, true
				}
			}
		}
	})
}

// fuzzFilterSeeds covers in-order, duplicates, the window edge, far jumps,
// counter zero and MaxUint64.
func fuzzFilterSeeds() map[string][]byte {
	op := func(o byte, v uint32) []byte {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], v)
		b[0] = o
		return b[:]
	}
	cat := func(parts ...[]byte) []byte {
		var out []byte
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	seq := func(o byte, n int, v uint32) []byte {
		var out []byte
		for i := 0; i < n; i++ {
			out = append(out, op(o, v)...)
		}
		return out
	}
	return map[string][]byte{
		"in-order":     seq(1, 64, 1),
		"duplicates":   cat(op(2, 0), op(2, 0), op(2, 5), op(2, 5), op(5, 0)),
		"window-edge":  cat(op(1, 5000), op(4, 0), op(4, 1), op(4, 2), op(0, 1)),
		"far-jump":     cat(op(1, 3), op(1, 0xffffff), op(2, 3), op(0, 100), op(5, 0)),
		"max-uint64":   cat(op(3, 0), op(3, 1), op(1, 1), op(3, 0)),
		"zero":         cat(op(2, 0), op(2, 0), op(1, WindowSize), op(2, 0)),
		"out-of-order": cat(op(1, 100), op(0, WindowSize-50), op(0, WindowSize+10), op(0, 0), op(0, WindowSize-50)),
	}
}

var updateFuzz = os.Getenv("SECSOCK_UPDATE_FUZZ") != ""

// TestFuzzCorpora fails when a fuzz target of this package has no
// committed seed files (SECSOCK_UPDATE_FUZZ=1 writes them).
func TestFuzzCorpora(t *testing.T) {
	if updateFuzz {
		dir := filepath.Join("testdata", "fuzz", "FuzzFilter")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, b := range fuzzFilterSeeds() {
			if err := os.WriteFile(filepath.Join(dir, "seed-"+name), []byte(fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	files, _ := filepath.Glob("*_test.go")
	re := regexp.MustCompile(`(?m)^func (Fuzz\w+)\(\w+ \*testing\.F\)`)
	n := 0
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllSubmatch(src, -1) {
			n++
			if got, _ := filepath.Glob(filepath.Join("testdata", "fuzz", string(m[1]), "*")); len(got) == 0 {
				t.Errorf("%s: corpus testdata/fuzz/%s is empty", m[1], m[1])
			}
		}
	}
	if n == 0 {
		t.Fatal("no fuzz targets found")
	}
}
