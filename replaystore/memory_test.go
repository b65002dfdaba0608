package replaystore

import (
	"context"
	"testing"
	"time"
)

// TestMemoryLifecycle: the in-memory store's answers, as SPEC.md §17.1's
// table has them, with a clock the test moves.
func TestMemoryLifecycle(t *testing.T) {
	m := NewMemory()
	now := time.Unix(1790000000, 0)
	m.now = func() time.Time { return now }
	ctx := context.Background()
	r := &Request{Counter: 1, Lease: time.Second, TTL: 10 * time.Second}
	r.Header[0], r.Owner[0] = 1, 1
	other := *r
	other.Owner[0] = 2
	want := func(res Result, err error, s State) Result {
		t.Helper()
		if err != nil || res.State != s {
			t.Fatalf("got %v %v, want %v", res.State, err, s)
		}
		return res
	}
	res, err := m.Lookup(ctx, r, 4)
	want(res, err, InDoubt)
	res, err = m.Claim(ctx, r, 4)
	want(res, err, Claimed)
	res, err = m.Claim(ctx, &other, 4)
	if res = want(res, err, Pending); res.LeaseLeft != time.Second {
		t.Fatalf("lease left %v", res.LeaseLeft)
	}
	res, err = m.Claim(ctx, r, 4) // the owner again
	want(res, err, Claimed)
	forged := other
	forged.Header[0] = 9
	res, err = m.Claim(ctx, &forged, 4)
	want(res, err, Conflict)
	now = now.Add(1500 * time.Millisecond)
	res, err = m.Claim(ctx, &other, 4)
	want(res, err, InDoubt)
	if err := m.Reply(ctx, r, []byte("late")); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		res, err = m.Lookup(ctx, &other, 3)
		if res = want(res, err, Answered); string(res.Reply) != "late" {
			t.Fatalf("reply %q", res.Reply)
		}
	}
	res, err = m.Lookup(ctx, &other, 3)
	want(res, err, Replayed)
	now = now.Add(10 * time.Second)
	res, err = m.Lookup(ctx, &other, 3)
	want(res, err, InDoubt)
	if m.Len() != 0 {
		t.Fatalf("%d entries after expiry", m.Len())
	}
	big := *r
	big.Counter = 2
	res, err = m.Claim(ctx, &big, 4)
	want(res, err, Claimed)
	m.Reply(ctx, &big, make([]byte, MaxReply+1))
	res, err = m.Claim(ctx, &big, 4)
	want(res, err, Replayed)
}
