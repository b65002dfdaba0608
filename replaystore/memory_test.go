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

// TestMemoryRefusalResentToEveryCopy: an application's refusal stored as
// the answer is given to every copy, never turned into REPLAYED.
func TestMemoryRefusalResentToEveryCopy(t *testing.T) {
	m := NewMemory()
	ctx := context.Background()
	r := &Request{Counter: 1, Lease: time.Second, TTL: 10 * time.Second}
	r.Owner[0] = 1
	if res, err := m.Claim(ctx, r, 4); err != nil || res.State != Claimed {
		t.Fatal(res, err)
	}
	refusal := append([]byte{0x02, 0x12, 0x01}, make([]byte, 16)...)
	m.Reply(ctx, r, refusal)
	other := *r
	other.Owner[0] = 2
	for i := 0; i < 10; i++ {
		if res, err := m.Claim(ctx, &other, 4); err != nil || res.State != Answered || !IsRefusal(res.Reply) {
			t.Fatalf("copy %d: %v %v", i, res.State, err)
		}
	}
}
