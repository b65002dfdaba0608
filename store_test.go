package secsock

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.nanomsg.org/mangos/v3"
	"go.nanomsg.org/mangos/v3/protocol/xrep"

	"github.com/redis/go-redis/v9"

	"github.com/secsock/secsock/internal/redistest"
	"github.com/secsock/secsock/internal/wire"
	"github.com/secsock/secsock/replaystore"
	"github.com/secsock/secsock/replaystore/redisstore"
)

// The shared replay store (SPEC.md §17), played by an attacker who
// captured a request and can send it to every worker, and by faults of
// workers and of the store. Workers here are REP sockets on ipc behind no
// device (the injector reaches each one directly) unless said otherwise.

const (
	testSkew  = 50 * time.Millisecond
	testLease = 400 * time.Millisecond
)

// storeWorker is a REP worker on a shared store whose application echoes
// "re:" + body after delay, or, when silent, takes requests and never
// answers (a worker that dies after claiming).
type storeWorker struct {
	sock *Socket
	addr string
	seen sync.Map // body -> *atomic.Int64
	all  atomic.Int64
}

func startStoreWorker(t *testing.T, key SecretKey, st replaystore.Store, delay time.Duration, silent bool, opts ...any) *storeWorker {
	return startGatedWorker(t, key, st, delay, silent, nil, 4, opts...)
}

// startGatedWorker is startStoreWorker whose application, when gate is
// not nil, waits for gate to close before answering, on ctxs contexts.
func startGatedWorker(t *testing.T, key SecretKey, st replaystore.Store, delay time.Duration, silent bool, gate chan struct{}, ctxs int, opts ...any) *storeWorker {
	t.Helper()
	w := &storeWorker{}
	s, err := NewRepSocket()
	if err != nil {
		t.Fatal(err)
	}
	w.sock = s
	mustSet(t, s, OptionMechanism, MechanismCurve, OptionSecretKey, key, mangos.OptionSendDeadline, 5*time.Second,
		OptionMaxClockSkew, testSkew, OptionReplayStoreLease, testLease)
	if st != nil {
		mustSet(t, s, OptionReplayStore, st)
	}
	mustSet(t, s, opts...)
	var wg sync.WaitGroup
	for i := 0; i < ctxs; i++ {
		c, err := s.OpenContext()
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				b, err := c.Recv()
				if errors.Is(err, mangos.ErrClosed) {
					return
				}
				if err != nil {
					continue
				}
				n, _ := w.seen.LoadOrStore(string(b), new(atomic.Int64))
				n.(*atomic.Int64).Add(1)
				w.all.Add(1)
				if silent {
					continue
				}
				if gate != nil {
					<-gate
				}
				time.Sleep(delay)
				c.Send(append([]byte("re:"), b...))
			}
		}()
	}
	w.addr = atkListen(t, s, ipcAddr(t, "w.ipc"))
	t.Cleanup(func() { s.Close(); wg.Wait() })
	return w
}

func (w *storeWorker) delivered(body string) int64 {
	if n, ok := w.seen.Load(body); ok {
		return n.(*atomic.Int64).Load()
	}
	return 0
}

func deliveries(body string, ws ...*storeWorker) int64 {
	var n int64
	for _, w := range ws {
		n += w.delivered(body)
	}
	return n
}

func isReply(a []byte) bool { return len(a) > 2 && a[0] == wire.Version && a[1] == wire.KindReply }

func isRefusal(a []byte, reason byte) bool {
	return len(a) == wire.RefusalSize && a[1] == wire.KindRefusal && a[2] == reason
}

// stores runs f against an in-memory store and a Redis store.
func stores(t *testing.T, f func(t *testing.T, st replaystore.Store)) {
	t.Run("memory", func(t *testing.T) { f(t, replaystore.NewMemory()) })
	t.Run("redis", func(t *testing.T) { f(t, newRedisStore(t, redistest.Start(t))) })
}

// newRedisStore opens a store on srv, a server the test just started,
// marked new (no quiescent first generation).
func newRedisStore(t *testing.T, srv *redistest.Server) *redisstore.Store {
	t.Helper()
	if _, err := redisstore.Initialize(t.Context(), &redis.UniversalOptions{Addrs: []string{srv.Addr()}}, redisstore.Options{}, 0); err != nil {
		t.Fatal(err)
	}
	st, err := redisstore.Open(srv.URL(), redisstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestStoreReplayToEveryWorker: a captured request replayed to every
// worker sharing the store, and to a worker started afterwards, reaches
// the application once in all; the other workers answer with the owner's
// sealed reply, at most MaxResends times in all, then REPLAYED. Without
// the store (the control) each worker delivers it.
func TestStoreReplayToEveryWorker(t *testing.T) {
	stores(t, func(t *testing.T, st replaystore.Store) {
		sk := mustKey(t)
		ws := []*storeWorker{startStoreWorker(t, sk, st, 0, false), startStoreWorker(t, sk, st, 0, false), startStoreWorker(t, sk, st, 0, false)}
		req := captureRequest(t, sk, "pay 1")
		first := newInjector(t, ws[0].addr).ask(t, req, 5*time.Second)
		if !isReply(first) {
			t.Fatalf("owner's answer %x", first)
		}
		ws = append(ws, startStoreWorker(t, sk, st, 0, false)) // a worker (re)started after the request
		resends, replayed := 0, 0
		for round := 0; round < 3; round++ {
			for _, w := range ws[1:] {
				a := newInjector(t, w.addr).ask(t, req, 5*time.Second)
				switch {
				case bytes.Equal(a, first):
					resends++
				case isRefusal(a, wire.RefuseReplayed):
					replayed++
				default:
					t.Fatalf("round %d: answer %x", round, a)
				}
			}
		}
		if n := deliveries("pay 1", ws...); n != 1 {
			t.Fatalf("delivered %d times across the workers, want 1", n)
		}
		if resends != servercoreMaxResends || replayed != 9-servercoreMaxResends {
			t.Fatalf("%d resends and %d REPLAYED from the other workers, want %d and %d (fleet-wide bound)",
				resends, replayed, servercoreMaxResends, 9-servercoreMaxResends)
		}
		if s := ws[1].sock.ServerStats().ReplayStore; s.Hits == 0 || s.Operations == 0 {
			t.Fatalf("store stats %+v", s)
		}
	})
	t.Run("control-without-store", func(t *testing.T) {
		sk := mustKey(t)
		ws := []*storeWorker{startStoreWorker(t, sk, nil, 0, false), startStoreWorker(t, sk, nil, 0, false)}
		req := captureRequest(t, sk, "pay 1")
		for _, w := range ws {
			if a := newInjector(t, w.addr).ask(t, req, 5*time.Second); !isReply(a) {
				t.Fatalf("answer %x", a)
			}
		}
		if n := deliveries("pay 1", ws...); n != 2 {
			t.Fatalf("without a store: delivered %d times, want 2 (once per worker)", n)
		}
	})
}

const servercoreMaxResends = 4

// TestStoreRetryOtherWorker: a copy of a request that reaches a second
// worker while the first one's application handles it waits for the
// claim and gets the same sealed reply; the application saw it once.
func TestStoreRetryOtherWorker(t *testing.T) {
	stores(t, func(t *testing.T, st replaystore.Store) {
		sk := mustKey(t)
		slow := startStoreWorker(t, sk, st, 200*time.Millisecond, false)
		other := startStoreWorker(t, sk, st, 0, false)
		req := captureRequest(t, sk, "ship 1")
		ch := newInjector(t, slow.addr).send(t, req)
		waitFor(t, func() bool { return slow.delivered("ship 1") == 1 })
		retry := newInjector(t, other.addr).ask(t, req, 5*time.Second)
		first := wait(t, ch)
		if !isReply(first) || !bytes.Equal(retry, first) {
			t.Fatalf("retry's answer %x, owner's %x: want the same sealed reply", retry, first)
		}
		if n := deliveries("ship 1", slow, other); n != 1 {
			t.Fatalf("delivered %d times", n)
		}
		if s := other.sock.ServerStats().ReplayStore; s.Waits != 1 || s.Hits != 1 {
			t.Fatalf("waiting worker's store stats %+v", s)
		}
	})
}

// TestStoreWaitsDoNotBlockDispatch: copies waiting for other workers'
// claims (more of them than the worker has readers) do not stop it from
// serving other requests: a fresh request is answered while every copy
// still waits, and each copy then gets its owner's sealed reply.
func TestStoreWaitsDoNotBlockDispatch(t *testing.T) {
	st := replaystore.NewMemory()
	sk := mustKey(t)
	gate := make(chan struct{})
	const n = 40 // more than the readers of a socket with a store
	owner := startGatedWorker(t, sk, st, 0, false, gate, n, OptionBacklog, n)
	var open sync.Once
	release := func() { open.Do(func() { close(gate) }) }
	t.Cleanup(release) // before the worker's own cleanup waits for its application
	other := startStoreWorker(t, sk, st, 0, false)
	toOwner, toOther := newInjector(t, owner.addr), newInjector(t, other.addr)
	var firsts, copies []chan []byte
	for i := 0; i < n; i++ {
		req := captureRequest(t, sk, fmt.Sprintf("held %d", i))
		firsts = append(firsts, toOwner.send(t, req))
		waitFor(t, func() bool { return owner.all.Load() == int64(i+1) })
		copies = append(copies, toOther.send(t, req))
	}
	waitFor(t, func() bool { return other.sock.ServerStats().ReplayStore.Waits == n })
	if got := toOther.ask(t, captureRequest(t, sk, "fresh"), 5*time.Second); !isReply(got) {
		t.Fatalf("fresh request while %d copies wait: %x", n, got)
	}
	for i := range copies {
		select {
		case a := <-copies[i]:
			t.Fatalf("copy %d answered before its owner: %x", i, a)
		default:
		}
	}
	release()
	for i := range copies {
		first, cp := wait(t, firsts[i]), wait(t, copies[i])
		if !isReply(first) || !bytes.Equal(first, cp) {
			t.Fatalf("copy %d: %x, owner's %x", i, cp, first)
		}
	}
	if d := deliveries("fresh", owner, other); d != 1 {
		t.Fatalf("fresh delivered %d times", d)
	}
}

// TestStoreRetryThroughDevice: a real client whose REQ retries reach
// other workers behind a device gets its reply; the application saw the
// request once.
func TestStoreRetryThroughDevice(t *testing.T) {
	stores(t, func(t *testing.T, st replaystore.Store) {
		sk := mustKey(t)
		dev := newAtkDevice(t, ipcAddr(t, "front.ipc"), ipcAddr(t, "back.ipc"))
		var ws []*storeWorker
		for i := 0; i < 3; i++ {
			w := startStoreWorker(t, sk, st, 250*time.Millisecond, false)
			if err := w.sock.Dial(dev.backAddr); err != nil {
				t.Fatal(err)
			}
			ws = append(ws, w)
		}
		cl := newReq(t, sk.Public(), mangos.OptionRetryTime, 60*time.Millisecond)
		if err := cl.Dial(dev.frontAddr); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond) // let the device connect to every worker
		for i := 0; i < 3; i++ {
			body := []byte{'o', 'r', 'd', 'e', 'r', byte('0' + i)}
			if err := cl.Send(body); err != nil {
				t.Fatal(err)
			}
			got, err := cl.Recv()
			if err != nil || string(got) != "re:"+string(body) {
				t.Fatalf("reply %q, %v", got, err)
			}
			if n := deliveries(string(body), ws...); n != 1 {
				t.Fatalf("%s delivered %d times", body, n)
			}
		}
	})
}

// TestStoreOwnerDies: a worker that claimed a request and died without a
// reply leaves it in doubt: once the lease lapses, copies at other
// workers (one waiting since before) are refused IN_DOUBT and the request
// never runs again.
func TestStoreOwnerDies(t *testing.T) {
	stores(t, func(t *testing.T, st replaystore.Store) {
		sk := mustKey(t)
		dying := startStoreWorker(t, sk, st, 0, true)
		a, b := startStoreWorker(t, sk, st, 0, false), startStoreWorker(t, sk, st, 0, false)
		req := captureRequest(t, sk, "debit 1")
		newInjector(t, dying.addr).send(t, req)
		waitFor(t, func() bool { return dying.delivered("debit 1") == 1 })
		early := newInjector(t, a.addr).send(t, req) // waits on the live lease
		dying.sock.Close()
		if got := wait(t, early); !isRefusal(got, wire.RefuseInDoubt) {
			t.Fatalf("copy during the lease: %x, want IN_DOUBT", got)
		}
		for _, w := range []*storeWorker{a, b, a} {
			if got := newInjector(t, w.addr).ask(t, req, 5*time.Second); !isRefusal(got, wire.RefuseInDoubt) {
				t.Fatalf("copy after the lease: %x, want IN_DOUBT", got)
			}
		}
		if n := deliveries("debit 1", a, b); n != 0 {
			t.Fatalf("re-executed %d times", n)
		}
	})
}

// TestStoreClaimAfterChecks: a forged message naming a victim's (C', N)
// claims nothing (claims come after every check), so the victim's
// request is still served.
func TestStoreClaimAfterChecks(t *testing.T) {
	stores(t, func(t *testing.T, st replaystore.Store) {
		sk := mustKey(t)
		a, b := startStoreWorker(t, sk, st, 0, false), startStoreWorker(t, sk, st, 0, false)
		req := captureRequest(t, sk, "victim")
		forged := bytes.Clone(req)
		forged[len(forged)-1] ^= 1
		if got := newInjector(t, b.addr).ask(t, forged, 5*time.Second); len(got) != wire.HintSize {
			t.Fatalf("forgery's answer %x, want a hint", got)
		}
		if got := newInjector(t, a.addr).ask(t, req, 5*time.Second); !isReply(got) {
			t.Fatalf("victim's answer %x", got)
		}
	})
}

// TestStoreFailsClosed: with Redis stopped, restarted empty, or paused
// past the deadline, workers refuse (STORE_UNAVAILABLE, authenticated,
// counted) instead of delivering without the check; they recover by
// themselves; nothing runs twice; a request dated before the restart is
// refused as in doubt (its claim may be lost). With per-instance mode the
// request is delivered instead.
func TestStoreFailsClosed(t *testing.T) {
	srv := redistest.Start(t)
	st := newRedisStore(t, srv)
	sk := mustKey(t)
	a := startStoreWorker(t, sk, st, 0, false)
	b := startStoreWorker(t, sk, st, 0, false)
	lax := startStoreWorker(t, sk, st, 0, false, OptionReplayStorePerInstance, true)
	cl := newReq(t, sk.Public())
	if err := cl.Dial(a.addr); err != nil {
		t.Fatal(err)
	}
	if got, err := roundTrip1(cl, "before"); err != nil || string(got) != "re:before" {
		t.Fatalf("%q, %v", got, err)
	}
	old := captureRequest(t, sk, "old")

	srv.Stop()
	if _, err := roundTrip1(cl, "down"); !errors.Is(err, ErrStoreUnavailable) {
		t.Fatalf("store down: %v, want ErrStoreUnavailable", err)
	}
	if got := newInjector(t, lax.addr).ask(t, captureRequest(t, sk, "lax"), 5*time.Second); !isReply(got) {
		t.Fatalf("per-instance mode: %x", got)
	}
	if s := lax.sock.ServerStats().ReplayStore; s.Fallbacks != 1 {
		t.Fatalf("fallbacks %+v", s)
	}
	if n := a.sock.Stats().Rejected[ReasonStoreUnavailable]; n != 1 {
		t.Fatalf("store-unavailable counted %d times", n)
	}

	srv.Restart() // empty: a new generation
	got := newInjector(t, b.addr).ask(t, old, 5*time.Second)
	for end := time.Now().Add(5 * time.Second); isRefusal(got, wire.RefuseStoreUnavailable) && time.Now().Before(end); {
		time.Sleep(20 * time.Millisecond) // the client reconnects by itself
		got = newInjector(t, b.addr).ask(t, old, 5*time.Second)
	}
	if !isRefusal(got, wire.RefuseInDoubt) {
		t.Fatalf("request dated before the restart: %x, want IN_DOUBT", got)
	}
	time.Sleep(2*testSkew + 20*time.Millisecond) // the new generation's quiescence (T ≤ G + 2Z)
	if got, err := roundTrip1(cl, "after restart"); err != nil || string(got) != "re:after restart" {
		t.Fatalf("after the restart: %q, %v", got, err)
	}

	// Slow past the deadline: refused; once the store answers again, a
	// copy of that request is delivered once (its late claim is this
	// worker's own).
	slow := captureRequest(t, sk, "slow")
	if err := srv.Do("CLIENT", "PAUSE", "400", "ALL"); err != nil {
		t.Fatal(err)
	}
	if got := newInjector(t, a.addr).ask(t, slow, 5*time.Second); !isRefusal(got, wire.RefuseStoreUnavailable) {
		t.Fatalf("paused store: %x, want STORE_UNAVAILABLE", got)
	}
	time.Sleep(500 * time.Millisecond)
	if got := newInjector(t, a.addr).ask(t, slow, 5*time.Second); !isReply(got) {
		t.Fatalf("after the pause: %x", got)
	}
	if got := newInjector(t, b.addr).ask(t, slow, 5*time.Second); !isReply(got) {
		t.Fatalf("after the pause, another worker: %x", got)
	}
	for _, body := range []string{"before", "down", "old", "after restart", "slow"} {
		if n := deliveries(body, a, b); n > 1 || (n == 0 && body != "down" && body != "old") {
			t.Fatalf("%s delivered %d times", body, n)
		}
	}
}

// TestStoreGenerationChange: a store that comes back from another server
// process with an older copy of its data (a failover to a replica that
// missed the last claims; here a restart from an older snapshot) has
// lost a claim: the request it named is refused IN_DOUBT, not delivered
// again, though its entry is gone.
func TestStoreGenerationChange(t *testing.T) {
	srv := redistest.StartPersistent(t)
	st := newRedisStore(t, srv)
	sk := mustKey(t)
	a, b := startStoreWorker(t, sk, st, 0, false), startStoreWorker(t, sk, st, 0, false)
	if err := srv.Do("SAVE"); err != nil {
		t.Fatal(err)
	}
	req := captureRequest(t, sk, "transfer")
	if got := newInjector(t, a.addr).ask(t, req, 5*time.Second); !isReply(got) {
		t.Fatalf("first: %x", got)
	}
	srv.Restart()
	got := newInjector(t, b.addr).ask(t, req, 5*time.Second)
	for end := time.Now().Add(5 * time.Second); isRefusal(got, wire.RefuseStoreUnavailable) && time.Now().Before(end); {
		time.Sleep(20 * time.Millisecond)
		got = newInjector(t, b.addr).ask(t, req, 5*time.Second)
	}
	if !isRefusal(got, wire.RefuseInDoubt) {
		t.Fatalf("after the failover: %x, want IN_DOUBT", got)
	}
	if n := deliveries("transfer", a, b); n != 1 {
		t.Fatalf("delivered %d times", n)
	}
	if s := b.sock.ServerStats().ReplayStore; s.Quiescent == 0 {
		t.Fatalf("stats %+v", s)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); !cond(); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("condition not met within 5 s")
		}
	}
}

// captureEpochRequest returns a request for body sealed with an epoch key
// that the client learned from worker with (the request reaches no
// worker: a tap takes it).
func captureEpochRequest(t *testing.T, sk SecretKey, with *storeWorker, body string) []byte {
	t.Helper()
	cl := newReq(t, sk.Public())
	tap := newRaw(t, xrep.NewSocket)
	mustSet(t, tap, mangos.OptionRecvDeadline, 5*time.Second)
	if err := cl.Dial(atkListen(t, tap, ipcAddr(t, "etap.ipc"))); err != nil {
		t.Fatal(err)
	}
	// The client's ping goes to the worker with the seed through the tap.
	authErr := make(chan error, 1)
	go func() { authErr <- cl.Authenticate() }()
	ping, err := tap.RecvMsg()
	if err != nil {
		t.Fatal(err)
	}
	answer := mangos.NewMessage(0)
	answer.Header = append(answer.Header, ping.Header...)
	answer.Body = append(answer.Body, newInjector(t, with.addr).ask(t, ping.Body, 5*time.Second)...)
	ping.Free()
	if err := tap.SendMsg(answer); err != nil {
		t.Fatal(err)
	}
	if err := <-authErr; err != nil {
		t.Fatal(err)
	}
	ctx, err := cl.OpenContext()
	if err != nil {
		t.Fatal(err)
	}
	if err := ctx.Send([]byte(body)); err != nil {
		t.Fatal(err)
	}
	m, err := tap.RecvMsg()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	if len(m.Body) < wire.HeaderSize || m.Body[3]&1 == 0 {
		t.Fatalf("captured request has no epoch element: %x", m.Body[:min(len(m.Body), 8)])
	}
	return bytes.Clone(m.Body)
}

// TestStoreUnknownEpochFallback: in a fleet where one worker lacks the
// epoch seed, its UNKNOWN_EPOCH refusal (after which the client resends
// the body as a new request) is recorded in the store before it is sent,
// so a copy of the epoch request replayed to a worker with the seed is
// refused too, never run besides the resend (SPEC.md §17.2). A copy that
// reaches the seedless worker after a worker with the seed ran it gets
// that worker's sealed reply, not UNKNOWN_EPOCH.
func TestStoreUnknownEpochFallback(t *testing.T) {
	stores(t, func(t *testing.T, st replaystore.Store) {
		sk := mustKey(t)
		seed, err := NewEpochSeed(5 * time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		with := startStoreWorker(t, sk, st, 0, false, OptionEpochSeed, seed)
		without := startStoreWorker(t, sk, st, 0, false)

		refusedFirst := captureEpochRequest(t, sk, with, "pay by epoch")
		if got := newInjector(t, without.addr).ask(t, refusedFirst, 5*time.Second); !isRefusal(got, wire.RefuseUnknownEpoch) {
			t.Fatalf("seedless worker: %x, want UNKNOWN_EPOCH", got)
		}
		if got := newInjector(t, with.addr).ask(t, refusedFirst, 5*time.Second); !isRefusal(got, wire.RefuseUnknownEpoch) {
			t.Fatalf("the refused request replayed to a worker with the seed: %x, want UNKNOWN_EPOCH", got)
		}
		if n := deliveries("pay by epoch", with, without); n != 0 {
			t.Fatalf("the refused epoch request ran %d times (its client resends it as a new request)", n)
		}

		ranFirst := captureEpochRequest(t, sk, with, "ship by epoch")
		reply := newInjector(t, with.addr).ask(t, ranFirst, 5*time.Second)
		if !isReply(reply) && !(len(reply) > 1 && reply[1] == wire.KindReplyExt) {
			t.Fatalf("worker with the seed: %x", reply)
		}
		if got := newInjector(t, without.addr).ask(t, ranFirst, 5*time.Second); !bytes.Equal(got, reply) {
			t.Fatalf("seedless worker after the run: %x, want the owner's reply", got)
		}
		if n := deliveries("ship by epoch", with, without); n != 1 {
			t.Fatalf("ran %d times", n)
		}
	})
}

// TestStoreKeyRotation: a request is named in the store by the exact
// server key that opened it, however the worker's keys move: a worker
// that rotated (the old key now previous) and one that has not name a
// cached client's request alike, and retiring a middle previous key
// (which moves the later ones) never delivers a request unclaimed.
func TestStoreKeyRotation(t *testing.T) {
	stores(t, func(t *testing.T, st replaystore.Store) {
		sk1, sk2 := mustKey(t), mustKey(t)
		a := startStoreWorker(t, sk1, st, 0, false)
		b := startStoreWorker(t, sk1, st, 0, false)
		reqs := captureRequests(t, 2, [][]byte{[]byte("r1"), []byte("r2")}, OptionServerKey, sk1.Public())
		if got := newInjector(t, a.addr).ask(t, reqs[0], 5*time.Second); !isReply(got) {
			t.Fatalf("r1 at a: %x", got)
		}
		mustSet(t, a.sock, OptionSecretKey, sk2, OptionPreviousSecretKeys, []SecretKey{sk1}) // a rotates
		ra := newInjector(t, a.addr).ask(t, reqs[1], 5*time.Second)
		rb := newInjector(t, b.addr).ask(t, reqs[1], 5*time.Second)
		if n := deliveries("r2", a, b); n != 1 || !bytes.Equal(ra, rb) {
			t.Fatalf("r2 delivered %d times across the workers; same reply %v", n, bytes.Equal(ra, rb))
		}
	})
	t.Run("retired-middle-key", func(t *testing.T) {
		st := replaystore.NewMemory()
		s1, s2, s3 := mustKey(t), mustKey(t), mustKey(t)
		a := startStoreWorker(t, s3, st, 0, false, OptionPreviousSecretKeys, []SecretKey{s1, s2})
		b := startStoreWorker(t, s2, st, 0, false)
		reqs := captureRequests(t, 2, [][]byte{[]byte("q1"), []byte("q2")}, OptionServerKey, s2.Public())
		if got := newInjector(t, a.addr).ask(t, reqs[0], 5*time.Second); !isReply(got) {
			t.Fatalf("q1 at a: %x", got)
		}
		mustSet(t, a.sock, OptionPreviousSecretKeys, []SecretKey{s2}) // retire s1: s2 moves
		newInjector(t, a.addr).ask(t, reqs[1], 5*time.Second)
		newInjector(t, b.addr).ask(t, reqs[1], 5*time.Second)
		if n := deliveries("q2", a, b); n != 1 {
			t.Fatalf("q2 delivered %d times", n)
		}
	})
}

// TestStoreSettledCopiesAreLocal: once the store said a request is
// replayed (the fleet's resends spent) or in doubt, further copies at a
// worker are refused from its own state, without a store round trip: a
// captured request cannot drive the store at line rate.
func TestStoreSettledCopiesAreLocal(t *testing.T) {
	stores(t, func(t *testing.T, st replaystore.Store) {
		sk := mustKey(t)
		owner, other := startStoreWorker(t, sk, st, 0, false), startStoreWorker(t, sk, st, 0, false)
		req := captureRequest(t, sk, "once")
		if got := newInjector(t, owner.addr).ask(t, req, 5*time.Second); !isReply(got) {
			t.Fatalf("%x", got)
		}
		in := newInjector(t, other.addr)
		for i := 0; i < servercoreMaxResends+1; i++ { // the fleet's resends, then REPLAYED
			in.ask(t, req, 5*time.Second)
		}
		before := other.sock.ServerStats().ReplayStore.Operations
		for i := 0; i < 50; i++ {
			if got := in.ask(t, req, 5*time.Second); !isRefusal(got, wire.RefuseReplayed) {
				t.Fatalf("copy %d: %x, want REPLAYED", i, got)
			}
		}
		if ops := other.sock.ServerStats().ReplayStore.Operations - before; ops != 0 {
			t.Fatalf("50 REPLAYED copies cost %d store round trips", ops)
		}
	})
}

// TestStoreLeaseRenewed: an application slower than the lease is not
// taken for a dead worker: its worker renews the lease while it works, so
// a copy at another worker after the first lease would have lapsed waits
// and gets the same sealed reply, not IN_DOUBT.
func TestStoreLeaseRenewed(t *testing.T) {
	stores(t, func(t *testing.T, st replaystore.Store) {
		sk := mustKey(t)
		slow := startStoreWorker(t, sk, st, 3*testLease, false)
		other := startStoreWorker(t, sk, st, 0, false)
		req := captureRequest(t, sk, "slow job")
		first := newInjector(t, slow.addr).send(t, req)
		waitFor(t, func() bool { return slow.delivered("slow job") == 1 })
		time.Sleep(testLease + testLease/2) // past the first lease
		got := newInjector(t, other.addr).ask(t, req, 5*time.Second)
		if owner := wait(t, first); !isReply(owner) || !bytes.Equal(got, owner) {
			t.Fatalf("copy after the first lease: %x, owner's reply %x", got, owner)
		}
		if n := deliveries("slow job", slow, other); n != 1 {
			t.Fatalf("delivered %d times", n)
		}
	})
}

// TestStoreRequestAuthorizerRefusal: a request the application refused
// after delivery (OptionRequestAuthorizer) is answered with that same
// authenticated refusal by every worker, for every copy: never REPLAYED
// (which would say it ran), and never delivered elsewhere.
func TestStoreRequestAuthorizerRefusal(t *testing.T) {
	stores(t, func(t *testing.T, st replaystore.Store) {
		sk := mustKey(t)
		deny := RequestAuthorizer(func(_ Peer, body []byte) bool { return string(body) != "forbidden" })
		a := startStoreWorker(t, sk, st, 0, false, OptionRequestAuthorizer, deny)
		b := startStoreWorker(t, sk, st, 0, false)
		req := captureRequest(t, sk, "forbidden")
		first := newInjector(t, a.addr).ask(t, req, 5*time.Second)
		if !isRefusal(first, wire.RefuseNotAuthorized) {
			t.Fatalf("owner: %x, want NOT_AUTHORIZED", first)
		}
		for i := 0; i < 2*servercoreMaxResends; i++ {
			if got := newInjector(t, b.addr).ask(t, req, 5*time.Second); !bytes.Equal(got, first) {
				t.Fatalf("copy %d at another worker: %x, want the same refusal", i, got)
			}
		}
		if n := b.delivered("forbidden"); n != 0 {
			t.Fatalf("delivered %d times elsewhere", n)
		}
	})
}
