package redisstore

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/secsock/secsock/internal/redistest"
	"github.com/secsock/secsock/replaystore"
)

// newTestStore opens a store on srv, which the test just started: it
// is marked new (no quiescent first generation) unless a generation
// exists already.
func newTestStore(t *testing.T, srv *redistest.Server) *Store {
	t.Helper()
	if _, err := Initialize(ctx(t), &redis.UniversalOptions{Addrs: []string{srv.Addr()}}, Options{}, 0); err != nil {
		t.Fatal(err)
	}
	s, err := Open(srv.URL(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// request returns a fresh request dated now + 1 s (after any generation
// made by the test's first connection, plus the skew of 100 ms).
func request(t *testing.T) *replaystore.Request {
	t.Helper()
	r := &replaystore.Request{Counter: 7, Skew: 100, Lease: 300 * time.Millisecond, TTL: 10 * time.Second}
	rand.Read(r.Eph[:])
	rand.Read(r.Header[:])
	rand.Read(r.Owner[:])
	now := uint64(time.Now().UnixMilli())
	r.Timestamp, r.Now = now+1000, now
	return r
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return c
}

func must(t *testing.T, res replaystore.Result, err error, want replaystore.State) replaystore.Result {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if res.State != want {
		t.Fatalf("state %v, want %v", res.State, want)
	}
	return res
}

// TestClaimLifecycle: first claim wins, a second worker sees it pending,
// the stored reply is given back a bounded number of times, and another
// header for the same (C', N) never gets it.
func TestClaimLifecycle(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newTestStore(t, srv), newTestStore(t, srv)
	r := request(t)
	res, err := a.Lookup(ctx(t), r, 4)
	must(t, res, err, replaystore.InDoubt)
	res, err = a.Claim(ctx(t), r, 4)
	must(t, res, err, replaystore.Claimed)
	other := *r
	rand.Read(other.Owner[:])
	res, err = b.Claim(ctx(t), &other, 4)
	if res = must(t, res, err, replaystore.Pending); res.LeaseLeft <= 0 || res.LeaseLeft > r.Lease {
		t.Fatalf("lease left %v", res.LeaseLeft)
	}
	// The owner finds its own claim again (a retried round trip).
	res, err = a.Claim(ctx(t), r, 4)
	must(t, res, err, replaystore.Claimed)
	if err := a.Reply(ctx(t), r, []byte("sealed")); err != nil {
		t.Fatal(err)
	}
	if err := a.Reply(ctx(t), r, []byte("second")); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		res, err = b.Claim(ctx(t), &other, 4)
		if res = must(t, res, err, replaystore.Answered); string(res.Reply) != "sealed" {
			t.Fatalf("reply %q", res.Reply)
		}
	}
	res, err = b.Lookup(ctx(t), &other, 4)
	must(t, res, err, replaystore.Replayed)
	forged := other
	rand.Read(forged.Header[:])
	res, err = b.Claim(ctx(t), &forged, 4)
	must(t, res, err, replaystore.Conflict)
}

// TestLeaseLapses: a claim without a reply is in doubt once its lease
// lapses, for everyone but its owner's later claim.
func TestLeaseLapses(t *testing.T) {
	srv := redistest.Start(t)
	s := newTestStore(t, srv)
	r := request(t)
	res, err := s.Claim(ctx(t), r, 4)
	must(t, res, err, replaystore.Claimed)
	time.Sleep(r.Lease + 50*time.Millisecond)
	other := *r
	rand.Read(other.Owner[:])
	res, err = s.Claim(ctx(t), &other, 4)
	must(t, res, err, replaystore.InDoubt)
	res, err = s.Lookup(ctx(t), &other, 4)
	must(t, res, err, replaystore.InDoubt)
}

// TestEntriesExpire: an entry lives for its TTL, then is gone.
func TestEntriesExpire(t *testing.T) {
	srv := redistest.Start(t)
	s := newTestStore(t, srv)
	r := request(t)
	r.TTL, r.Lease = 200*time.Millisecond, 100*time.Millisecond
	res, err := s.Claim(ctx(t), r, 4)
	must(t, res, err, replaystore.Claimed)
	n, err := srv.Client().DBSize(ctx(t)).Result()
	if err != nil || n != 2 { // the entry and the generation
		t.Fatalf("dbsize %d, %v", n, err)
	}
	time.Sleep(400 * time.Millisecond)
	if n, err = srv.Client().DBSize(ctx(t)).Result(); err != nil || n != 1 {
		t.Fatalf("dbsize after expiry %d, %v", n, err)
	}
}

// TestGenerationOnRestart: a store restarted empty starts a generation
// whose start (plus the skew) refuses requests dated before it, and the
// client reconnects by itself.
func TestGenerationOnRestart(t *testing.T) {
	srv := redistest.Start(t)
	s := newTestStore(t, srv)
	if err := s.Client().Ping(ctx(t)).Err(); err != nil {
		t.Fatal(err)
	}
	id1, created1, run1, err := s.Generation(ctx(t))
	if err != nil || id1 == "" || run1 == "" {
		t.Fatalf("generation %q %q: %v", id1, run1, err)
	}
	old := request(t)
	old.Timestamp = uint64(time.Now().UnixMilli())
	srv.Restart()
	var res replaystore.Result
	for end := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if res, err = s.Claim(ctx(t), old, 4); err == nil || time.Now().After(end) {
			break
		}
	}
	must(t, res, err, replaystore.Quiescent)
	id2, created2, run2, err := s.Generation(ctx(t))
	if err != nil || id2 == id1 || run2 == run1 || !created2.After(created1) {
		t.Fatalf("generation after restart %q %v %q (was %q %v %q): %v", id2, created2, run2, id1, created1, run1, err)
	}
	fresh := request(t)
	fresh.Timestamp = uint64(created2.UnixMilli()) + 2*fresh.Skew + 1
	res, err = s.Claim(ctx(t), fresh, 4)
	must(t, res, err, replaystore.Claimed)
}

// TestGenerationOnRunIDChange: a store that comes back with its data but
// from another server process (a failover to a replica that missed the
// last claims, here a restart from an older snapshot) starts a new
// generation: the lost claim's request is refused, not claimed again.
func TestGenerationOnRunIDChange(t *testing.T) {
	srv := redistest.StartPersistent(t)
	s := newTestStore(t, srv)
	if err := srv.Do("SAVE"); err != nil {
		t.Fatal(err)
	}
	r := request(t)
	r.Timestamp = uint64(time.Now().UnixMilli())
	res, err := s.Claim(ctx(t), r, 4)
	must(t, res, err, replaystore.Claimed)
	srv.Restart() // from the snapshot: the generation key survives, the claim does not
	other := *r
	rand.Read(other.Owner[:])
	for end := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if res, err = s.Claim(ctx(t), &other, 4); err == nil || time.Now().After(end) {
			break
		}
	}
	must(t, res, err, replaystore.Quiescent)
}

// TestEmptiedUnderLiveConnection: FLUSHALL keeps the connection; the next
// claim makes a generation itself.
func TestEmptiedUnderLiveConnection(t *testing.T) {
	srv := redistest.Start(t)
	s := newTestStore(t, srv)
	r := request(t)
	r.Timestamp = uint64(time.Now().UnixMilli())
	res, err := s.Claim(ctx(t), r, 4)
	must(t, res, err, replaystore.Claimed)
	if err := s.Client().FlushAll(ctx(t)).Err(); err != nil {
		t.Fatal(err)
	}
	other := *r
	rand.Read(other.Owner[:])
	other.Now = uint64(time.Now().UnixMilli())
	res, err = s.Claim(ctx(t), &other, 4)
	must(t, res, err, replaystore.Quiescent)
}

// TestUnavailable: a stopped or paused store gives ErrUnavailable within
// the caller's deadline.
func TestUnavailable(t *testing.T) {
	srv := redistest.Start(t)
	s := newTestStore(t, srv)
	r := request(t)
	if err := srv.Do("CLIENT", "PAUSE", "500", "ALL"); err != nil {
		t.Fatal(err)
	}
	c, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	_, err := s.Claim(c, r, 4)
	cancel()
	if !errors.Is(err, replaystore.ErrUnavailable) {
		t.Fatalf("paused store: %v", err)
	}
	srv.Stop()
	c, cancel = context.WithTimeout(context.Background(), time.Second)
	_, err = s.Claim(c, r, 4)
	cancel()
	if !errors.Is(err, replaystore.ErrUnavailable) {
		t.Fatalf("stopped store: %v", err)
	}
}

// TestURLPasswordNotInErrors: a bad URL's error does not repeat it.
func TestURLPasswordNotInErrors(t *testing.T) {
	_, err := Open("redis://user:hunter2@127.0.0.1:notaport/0", Options{})
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error %v", err)
	}
	opt, err := redis.ParseURL("redis://:hunter2@127.0.0.1:1/0")
	if err != nil || opt.Password != "hunter2" {
		t.Fatal("the URL's password is not read")
	}
}

// TestInitialize: a store marked new has no quiescent period; marking it
// again, or a store that has a generation, changes nothing.
func TestInitialize(t *testing.T) {
	srv := redistest.Start(t)
	opts := &redis.UniversalOptions{Addrs: []string{srv.Addr()}}
	if ok, err := Initialize(ctx(t), opts, Options{}, time.Hour); ok || err == nil {
		t.Fatalf("initialize a server younger than the quiet period: %v %v", ok, err)
	}
	if ok, err := Initialize(ctx(t), opts, Options{}, 0); !ok || err != nil {
		t.Fatalf("initialize: %v %v", ok, err)
	}
	s := newTestStore(t, srv)
	r := request(t)
	r.Timestamp = uint64(time.Now().UnixMilli())
	res, err := s.Claim(ctx(t), r, 4)
	must(t, res, err, replaystore.Claimed)
	if ok, err := Initialize(ctx(t), opts, Options{}, 0); ok || err != nil {
		t.Fatalf("second initialize: %v %v", ok, err)
	}
	_, created, run, err := s.Generation(ctx(t))
	if err != nil || created.UnixMilli() != 0 || run == "" {
		t.Fatalf("generation %v %q %v", created, run, err)
	}
}

// TestRefuseUnknownEpoch: a refusal recorded for a header blocks its
// claim everywhere; a claim with another header takes over an entry of
// refusals only; refusals are bounded per (C', N); a refusal of a claimed
// request answers as a lookup.
func TestRefuseUnknownEpoch(t *testing.T) {
	srv := redistest.Start(t)
	s := newTestStore(t, srv)
	r := request(t)
	res, err := s.Refuse(ctx(t), r, 4)
	must(t, res, err, replaystore.Refused)
	res, err = s.Claim(ctx(t), r, 4)
	must(t, res, err, replaystore.Refused)
	res, err = s.Lookup(ctx(t), r, 4)
	must(t, res, err, replaystore.Refused)
	forged := *r
	for i := 1; i < replaystore.MaxRefused; i++ {
		forged.Header[0]++
		res, err = s.Refuse(ctx(t), &forged, 4)
		must(t, res, err, replaystore.Refused)
	}
	res, err = s.Refuse(ctx(t), r, 4) // still recorded
	must(t, res, err, replaystore.Refused)
	forged.Header[0]++
	res, err = s.Refuse(ctx(t), &forged, 4)
	must(t, res, err, replaystore.Conflict)
	genuine := *r
	genuine.Counter++ // another request: claimed, then refused elsewhere
	res, err = s.Claim(ctx(t), &genuine, 4)
	must(t, res, err, replaystore.Claimed)
	other := genuine
	rand.Read(other.Owner[:])
	res, err = s.Refuse(ctx(t), &other, 4)
	must(t, res, err, replaystore.Pending)
	victim := *r
	victim.Counter += 2 // a forged refusal first, then the real request
	pre := victim
	rand.Read(pre.Header[:])
	res, err = s.Refuse(ctx(t), &pre, 4)
	must(t, res, err, replaystore.Refused)
	res, err = s.Claim(ctx(t), &victim, 4)
	must(t, res, err, replaystore.Claimed)
	res, err = s.Refuse(ctx(t), &pre, 4)
	must(t, res, err, replaystore.Conflict)
}

// TestRefusalResentToEveryCopy: an application's refusal stored as the
// answer is given to every copy, never turned into REPLAYED.
func TestRefusalResentToEveryCopy(t *testing.T) {
	srv := redistest.Start(t)
	s := newTestStore(t, srv)
	r := request(t)
	res, err := s.Claim(ctx(t), r, 4)
	must(t, res, err, replaystore.Claimed)
	refusal := append([]byte{0x02, 0x12, 0x01}, make([]byte, 16)...)
	if err := s.Reply(ctx(t), r, refusal); err != nil {
		t.Fatal(err)
	}
	other := *r
	rand.Read(other.Owner[:])
	for i := 0; i < 10; i++ {
		res, err = s.Claim(ctx(t), &other, 4)
		if res = must(t, res, err, replaystore.Answered); !replaystore.IsRefusal(res.Reply) {
			t.Fatalf("copy %d: %x", i, res.Reply)
		}
	}
}
