package redisstore

// Regression tests from the adversarial review of issue 13
// (/work/coord/reviews/issue-13.md), adapted: each plays the fault or
// attacker the review found and fails without its fix.

import (
	"crypto/rand"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/secsock/secsock/internal/redistest"
	"github.com/secsock/secsock/replaystore"
)

// openTestStore opens a store on srv without marking it new (after a
// restart that lost data, marking it new would hide the loss).
func openTestStore(t *testing.T, addr string) *Store {
	t.Helper()
	s, err := Open("redis://"+addr+"/0", Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func r13req(now, ts, skew uint64) *replaystore.Request {
	r := &replaystore.Request{Counter: 9, Skew: skew, Lease: 10 * time.Second, TTL: 131 * time.Second}
	rand.Read(r.Eph[:])
	rand.Read(r.Header[:])
	rand.Read(r.Owner[:])
	r.Now, r.Timestamp = now, ts
	return r
}

func mustClaim(t *testing.T, s *Store, r *replaystore.Request) {
	t.Helper()
	res, err := s.Claim(ctx(t), r, 4)
	must(t, res, err, replaystore.Claimed)
}

// TestQuiescenceCoversWorkerSkew (review #4): a claim made by a worker
// whose clock is ahead (by less than Z) of the worker that starts the
// next generation is still covered: requests are refused up to G + 2Z.
func TestQuiescenceCoversWorkerSkew(t *testing.T) {
	srv := redistest.Start(t)
	a := newTestStore(t, srv)
	const Z, ahead = 10000, 2000
	real0 := uint64(time.Now().UnixMilli())
	r := r13req(real0+ahead, real0+ahead+Z-1000, Z) // client 9 s ahead of worker A: step 8 accepts
	mustClaim(t, a, r)
	srv.Restart() // no persistence: the claim is lost
	b := openTestStore(t, srv.Addr())
	probe := r13req(uint64(time.Now().UnixMilli()), uint64(time.Now().UnixMilli())+3*Z, Z)
	var err error
	for end := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) { // worker B (correct clock) makes the generation
		if _, err = b.Claim(ctx(t), probe, 4); err == nil || time.Now().After(end) {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	c := openTestStore(t, srv.Addr()) // worker C, clock ahead like A's
	r2 := *r
	rand.Read(r2.Owner[:])
	r2.Now = uint64(time.Now().UnixMilli()) + ahead
	if !(r2.Timestamp <= r2.Now+Z) {
		t.Fatal("setup: step 8 would refuse")
	}
	res, err := c.Claim(ctx(t), &r2, 4)
	must(t, res, err, replaystore.Quiescent)
}

// TestEvictingPolicyFailsClosed (review #7): a maxmemory-policy that can
// evict entries makes the store fail instead of losing claims silently.
func TestEvictingPolicyFailsClosed(t *testing.T) {
	srv := redistest.Start(t)
	if err := srv.Do("CONFIG", "SET", "maxmemory-policy", "volatile-lru"); err != nil {
		t.Fatal(err)
	}
	a := newTestStore(t, srv)
	now := uint64(time.Now().UnixMilli())
	if _, err := a.Claim(ctx(t), r13req(now, now+1000, 100), 4); err == nil || !strings.Contains(err.Error(), "volatile-lru") {
		t.Fatalf("claim under volatile-lru: %v, want a failure naming the policy", err)
	}
}

// stickyProxy forwards one downstream connection to the current upstream and
// re-dials the upstream when it goes away, keeping the downstream (as a
// Redis-aware proxy or a load balancer with connection reuse does).
func stickyProxy(t *testing.T, upstream string) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			down, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer down.Close()
				var mu sync.Mutex
				var up net.Conn
				dial := func() net.Conn {
					for i := 0; i < 200; i++ {
						if c, err := net.Dial("tcp", upstream); err == nil {
							return c
						}
						time.Sleep(20 * time.Millisecond)
					}
					return nil
				}
				up = dial()
				if up == nil {
					return
				}
				go func() { // upstream -> downstream, re-dialling
					for {
						mu.Lock()
						u := up
						mu.Unlock()
						_, _ = io.Copy(down, u)
						u.Close()
						nu := dial()
						if nu == nil {
							down.Close()
							return
						}
						mu.Lock()
						up = nu
						mu.Unlock()
					}
				}()
				buf := make([]byte, 64<<10)
				for {
					n, err := down.Read(buf)
					if err != nil {
						mu.Lock()
						up.Close()
						mu.Unlock()
						return
					}
					for try := 0; try < 100; try++ {
						mu.Lock()
						u := up
						mu.Unlock()
						if _, err := u.Write(buf[:n]); err == nil {
							break
						}
						time.Sleep(20 * time.Millisecond)
					}
				}
			}()
		}
	}()
	return l.Addr().String()
}

// TestProxyCannotHideRestart (review #3): behind a proxy that keeps the
// client's connection while the server behind it restarts from older
// data (a failover to a replica that missed a claim), the claim script
// sees the new run id itself, so the lost request is refused.
func TestProxyCannotHideRestart(t *testing.T) {
	srv := redistest.StartPersistent(t)
	newTestStore(t, srv) // marks it new
	addr := stickyProxy(t, srv.Addr())
	s := openTestStore(t, addr)
	if err := srv.Do("SAVE"); err != nil { // the replica / snapshot that will miss the claim
		t.Fatal(err)
	}
	now := uint64(time.Now().UnixMilli())
	r := r13req(now, now, 100)
	mustClaim(t, s, r)
	srv.Restart()
	r2 := *r
	rand.Read(r2.Owner[:])
	r2.Now = uint64(time.Now().UnixMilli())
	var res replaystore.Result
	var err error
	for i := 0; i < 40; i++ {
		if res, err = s.Claim(ctx(t), &r2, 4); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	must(t, res, err, replaystore.Quiescent)
}

// TestOwnerCannotReclaimLapsedLease (review #5): after the lease lapsed
// (and another worker answered IN_DOUBT), the owner's late copy does not
// claim it again.
func TestOwnerCannotReclaimLapsedLease(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newTestStore(t, srv), newTestStore(t, srv)
	r := request(t)
	res, err := a.Claim(ctx(t), r, 4) // its answer "lost": a refused STORE_UNAVAILABLE
	must(t, res, err, replaystore.Claimed)
	other := *r
	rand.Read(other.Owner[:])
	time.Sleep(r.Lease + 50*time.Millisecond)
	res, err = b.Claim(ctx(t), &other, 4)
	must(t, res, err, replaystore.InDoubt)
	res, err = a.Claim(ctx(t), r, 4)
	must(t, res, err, replaystore.InDoubt)
}

// TestInitializeAfterLoss (review #10): init run right after a restart
// that lost claims is refused, and the replay stays quiescent.
func TestInitializeAfterLoss(t *testing.T) {
	srv := redistest.Start(t)
	a := newTestStore(t, srv)
	r := request(t)
	r.Timestamp = uint64(time.Now().UnixMilli())
	mustClaim(t, a, r)
	srv.Restart()
	if ok, err := Initialize(ctx(t), &redis.UniversalOptions{Addrs: []string{srv.Addr()}}, Options{}, 140*time.Second); ok || err == nil {
		t.Fatalf("Initialize right after a restart: %v %v, want refused", ok, err)
	}
	b := openTestStore(t, srv.Addr())
	r2 := *r
	rand.Read(r2.Owner[:])
	r2.Now = uint64(time.Now().UnixMilli())
	res, err := b.Claim(ctx(t), &r2, 4)
	must(t, res, err, replaystore.Quiescent)
}

// TestPrefixWithBraces (review #13): a prefix that would break the hash
// tag is refused.
func TestPrefixWithBraces(t *testing.T) {
	if _, err := New(&redis.UniversalOptions{Addrs: []string{"127.0.0.1:1"}}, Options{Prefix: "}x"}); err == nil {
		t.Fatal("prefix }x accepted")
	}
}

// TestSentinel (review #2): the store works through Sentinel, with the
// client's own options (MasterName).
func TestSentinel(t *testing.T) {
	master := redistest.Start(t)
	newTestStore(t, master)
	sentinel := redistest.StartSentinel(t, master, "mymaster")
	s, err := New(&redis.UniversalOptions{Addrs: []string{sentinel}, MasterName: "mymaster"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := request(t)
	mustClaim(t, s, r)
	other := *r
	rand.Read(other.Owner[:])
	res, err := s.Claim(ctx(t), &other, 4)
	must(t, res, err, replaystore.Pending)
}

// TestCluster (review #2): the store works on a Redis Cluster through the
// client's own options: every key shares one hash tag, so each script runs
// on the slot's owner, and no other node is asked anything.
func TestCluster(t *testing.T) {
	addrs := redistest.StartCluster(t, 3)
	opts := &redis.UniversalOptions{Addrs: addrs}
	if ok, err := Initialize(ctx(t), opts, Options{}, 0); !ok || err != nil {
		t.Fatalf("initialize: %v %v", ok, err)
	}
	s, err := New(opts, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := 0; i < 3; i++ {
		r := request(t)
		mustClaim(t, s, r)
		if err := s.Reply(ctx(t), r, []byte("sealed")); err != nil {
			t.Fatal(err)
		}
		other := *r
		rand.Read(other.Owner[:])
		res, err := s.Claim(ctx(t), &other, 4)
		if res = must(t, res, err, replaystore.Answered); string(res.Reply) != "sealed" {
			t.Fatalf("reply %q", res.Reply)
		}
	}
	if _, _, run, err := s.Generation(ctx(t)); err != nil || run == "" {
		t.Fatalf("generation: %q %v", run, err)
	}
}
