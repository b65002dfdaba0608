package replay

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestInOrderAndDuplicates(t *testing.T) {
	var f Filter
	for c := uint64(0); c < 10000; c++ {
		if !f.Accept(c) {
			t.Fatalf("fresh counter %d refused", c)
		}
		if f.Accept(c) {
			t.Fatalf("duplicate counter %d accepted", c)
		}
	}
}

func TestWindowEdges(t *testing.T) {
	var f Filter
	const top = 20000
	if !f.Accept(top) {
		t.Fatal("first counter refused")
	}
	if !f.Accept(top - WindowSize + 1) {
		t.Fatal("counter just inside the window refused")
	}
	if f.Accept(top - WindowSize) {
		t.Fatal("counter just outside the window accepted")
	}
	if f.Accept(0) {
		t.Fatal("ancient counter accepted")
	}
	if !f.Accept(top + 100000) {
		t.Fatal("far jump refused")
	}
	if f.Accept(top) || f.Accept(top+100000) {
		t.Fatal("old or duplicate accepted after jump")
	}
	if f.Accept(math.MaxUint64) {
		t.Fatal("MaxUint64 accepted")
	}
}

// TestOutOfOrder shuffles counters within the window: each is accepted
// exactly once, like a reference set would decide.
func TestOutOfOrder(t *testing.T) {
	var f Filter
	rng := rand.New(rand.NewPCG(1, 2))
	seen := map[uint64]bool{}
	var high uint64
	for i := 0; i < 200000; i++ {
		base := uint64(i / 4)
		c := base + uint64(rng.IntN(WindowSize/2))
		want := !seen[c]
		if high >= c && high-c >= WindowSize {
			want = false
		}
		got := f.Accept(c)
		if got != want {
			t.Fatalf("step %d counter %d: got %v want %v", i, c, got, want)
		}
		if got {
			seen[c] = true
			if c > high {
				high = c
			}
		}
	}
}

func TestReset(t *testing.T) {
	var f Filter
	f.Accept(7)
	f.Reset()
	if !f.Accept(7) {
		t.Fatal("reset filter refused counter")
	}
}
