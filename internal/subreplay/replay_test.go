package subreplay

import "testing"

func TestWindow(t *testing.T) {
	const now = 1_000_000
	s := New(now, 120_000, 10_000)
	k := Key{Instance: [8]byte{1}}
	steps := []struct {
		counter uint64
		want    Verdict
	}{
		{10, Fresh}, {10, Duplicate}, {5, Fresh}, {12, Fresh}, // reordering and gaps
		{10 + Window, Fresh}, {10, Stale}, {11, Fresh}, {12, Duplicate}, {13, Fresh}, {13, Duplicate},
		{1 << 40, Fresh}, {10 + Window, Stale}, // a big jump forgets the old window
	}
	for i, st := range steps {
		if got := s.Commit(k, st.counter, now, now); got != st.want {
			t.Fatalf("step %d (counter %d): %v, want %v", i, st.counter, got, st.want)
		}
	}
	// Another instance of the same publisher counts on its own.
	if got := s.Commit(Key{Instance: [8]byte{2}}, 10, now, now); got != Fresh {
		t.Fatalf("second instance: %v", got)
	}
}

// Slots the window slides over are cleared: a counter 1024 above one
// delivered is not taken for its duplicate.
func TestWindowSlotsReused(t *testing.T) {
	s := New(0, 1000, 10)
	k := Key{}
	for _, c := range []uint64{1, 1 + Window, 1 + 2*Window} {
		if got := s.Commit(k, c, 0, 0); got != Fresh {
			t.Fatalf("counter %d: %v", c, got)
		}
	}
}

func TestFreshness(t *testing.T) {
	const join, w, z = 100_000, 120_000, 10_000
	s := New(join, w, z)
	k := Key{}
	for i, c := range []struct {
		ts, now uint64
		want    Verdict
	}{
		{join - z - 1, join, Stale}, {join - z, join, Fresh}, // before the join
		{join, join + w + 1, Stale}, {join + 1, join + w + 1, Fresh}, // the freshness window
		{join + z + 1, join, Stale}, {join + z, join, Fresh}, // ahead of the clock
	} {
		if got := s.Commit(k, uint64(i+1), c.ts, c.now); got != c.want {
			t.Fatalf("case %d: %v, want %v", i, got, c.want)
		}
	}
}

// A publisher's instances are bounded; windows past freshness expire to
// make room, live ones do not.
func TestInstanceBound(t *testing.T) {
	s := New(0, 1000, 10)
	for i := 0; i < MaxInstances; i++ {
		k := Key{Instance: [8]byte{byte(i), byte(i >> 8)}}
		if got := s.Commit(k, 1, 100, 100); got != Fresh {
			t.Fatalf("instance %d: %v", i, got)
		}
	}
	extra := Key{Instance: [8]byte{0xff, 0xff}}
	if got := s.Commit(extra, 1, 100, 100); got != Full {
		t.Fatalf("instance over the bound: %v", got)
	}
	if got := s.Commit(extra, 1, 1200, 1200); got != Fresh || s.Instances() != 1 {
		t.Fatalf("after expiry: %v, %d windows", got, s.Instances())
	}
}
