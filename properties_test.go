package secsock

// Tests of the curve mechanism's security properties as the issue and
// SPEC.md §11 state them, over real sockets. Each would fail without the
// property it names.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/secsock/secsock/internal/wire"

	"go.nanomsg.org/mangos/v3"
	"go.nanomsg.org/mangos/v3/protocol/rep"
	"go.nanomsg.org/mangos/v3/protocol/req"
	"go.nanomsg.org/mangos/v3/protocol/xrep"
	"go.nanomsg.org/mangos/v3/protocol/xreq"
)

// serve runs an echo loop on every given context or socket until they
// close, recording what the application saw.
type server struct {
	mu   sync.Mutex
	seen map[string]int
	n    atomic.Int64
	wg   sync.WaitGroup
}

func serveEcho(t testing.TB, delay time.Duration, socks ...mangos.Context) *server {
	sv := &server{seen: map[string]int{}}
	for _, s := range socks {
		sv.wg.Add(1)
		go func(s mangos.Context) {
			defer sv.wg.Done()
			for {
				b, err := s.Recv()
				if errors.Is(err, mangos.ErrClosed) {
					return
				}
				if err != nil {
					continue
				}
				sv.mu.Lock()
				sv.seen[string(b)]++
				sv.mu.Unlock()
				sv.n.Add(1)
				time.Sleep(delay)
				s.Send(append([]byte("echo:"), b...))
			}
		}(s)
	}
	return sv
}

func (sv *server) count(body string) int {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	return sv.seen[body]
}

func repContexts(t testing.TB, s *Socket, n int) []mangos.Context {
	t.Helper()
	var cs []mangos.Context
	for i := 0; i < n; i++ {
		c, err := s.OpenContext()
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	return cs
}

func roundTrip(c mangos.Context, body string) ([]byte, error) {
	if err := c.Send([]byte(body)); err != nil {
		return nil, err
	}
	return c.Recv()
}

// TestSelfContainedRequests: three REP workers holding the same server
// key behind a mangos device (tcp in front, ipc behind) answer requests
// from many client contexts; no worker needs another's state, each serves
// some, and every request is answered. A captured request delivered to a
// fresh worker is also answered: requests are self-contained.
func TestSelfContainedRequests(t *testing.T) {
	sk := mustKey(t)
	front, back := newRaw(t, xrep.NewSocket), newRaw(t, xreq.NewSocket)
	dialFront := listenOn(t, front, "tcp")
	go mangos.Device(front, back)
	var workers []*server
	for i := 0; i < 3; i++ {
		w := newRep(t, sk)
		listenOn(t, w, "ipc")(back)
		workers = append(workers, serveEcho(t, time.Millisecond, repContexts(t, w, 4)...))
	}
	cl := newReq(t, sk.Public(), OptionSecretKey, mustKey(t))
	dialFront(cl)
	time.Sleep(100 * time.Millisecond) // let the device connect to every worker
	var wg sync.WaitGroup
	errs := make(chan error, 24*5)
	for c := 0; c < 24; c++ {
		ctx, err := cl.OpenContext()
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for i := 0; i < 5; i++ {
				body := fmt.Sprintf("ctx %d req %d", c, i)
				got, err := roundTrip(ctx, body)
				if err == nil && string(got) != "echo:"+body {
					err = fmt.Errorf("wrong reply %q to %q", got, body)
				}
				if err != nil {
					errs <- err
				}
			}
		}(c)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	total := int64(0)
	for i, w := range workers {
		if w.n.Load() == 0 {
			t.Errorf("worker %d served nothing: the device did not spread the load", i)
		}
		total += w.n.Load()
	}
	if total != 24*5 {
		t.Fatalf("workers saw %d requests, want %d", total, 24*5)
	}
}

// captureRequest seals one request from a fresh client and returns the
// wire bytes, without any server seeing it.
func captureRequest(t testing.TB, sk SecretKey, body string, opts ...any) []byte {
	t.Helper()
	sink := newRaw(t, xrep.NewSocket)
	dial := listenOn(t, sink, "inproc")
	cl := newReq(t, sk.Public(), opts...)
	dial(cl)
	if err := cl.Send([]byte(body)); err != nil {
		t.Fatal(err)
	}
	m, err := sink.RecvMsg()
	if err != nil {
		t.Fatal(err)
	}
	return m.Body
}

// rawClient is an attacker (or a replaying network) that sends arbitrary
// bodies to a REP socket with fresh request IDs.
type rawClient struct {
	s  mangos.Socket
	id uint32
}

func newRawClient(t testing.TB, dial func(mangos.Socket)) *rawClient {
	s := newRaw(t, xreq.NewSocket)
	s.SetOption(mangos.OptionRecvDeadline, 2*time.Second)
	dial(s)
	return &rawClient{s: s, id: 0x80000000 | uint32(time.Now().UnixNano()&0xffff)<<8}
}

func (r *rawClient) send(t testing.TB, body []byte) {
	t.Helper()
	r.id++
	m := mangos.NewMessage(len(body))
	m.Header = binary.BigEndian.AppendUint32(m.Header, r.id)
	m.Body = append(m.Body, body...)
	if err := r.s.SendMsg(m); err != nil {
		t.Fatal(err)
	}
}

// recv returns the next answer's body, or nil after the deadline.
func (r *rawClient) recv() []byte {
	m, err := r.s.RecvMsg()
	if err != nil {
		return nil
	}
	return m.Body
}

func TestAnyInstanceAnswersACapturedRequest(t *testing.T) {
	sk := mustKey(t)
	wire := captureRequest(t, sk, "self-contained", OptionSecretKey, mustKey(t))
	for i := 0; i < 2; i++ { // two independent instances
		w := newRep(t, sk)
		sv := serveEcho(t, 0, w)
		rc := newRawClient(t, listenOn(t, w, "inproc"))
		rc.send(t, wire)
		if rc.recv() == nil {
			t.Fatalf("instance %d did not answer", i)
		}
		if sv.count("self-contained") != 1 {
			t.Fatalf("instance %d did not deliver the request", i)
		}
	}
}

// TestServerAuthentication: a server without the right key can neither
// read a request nor make a reply the client accepts.
func TestServerAuthentication(t *testing.T) {
	real, fake := mustKey(t), mustKey(t)
	t.Run("impostor-with-own-key", func(t *testing.T) {
		imp := newRep(t, fake)
		sv := serveEcho(t, 0, imp)
		cl := newReq(t, real.Public())
		listenOn(t, imp, "inproc")(cl)
		if _, err := roundTrip(cl, "secret"); !errors.Is(err, ErrServerKeyMismatch) {
			t.Fatalf("got %v, want ErrServerKeyMismatch", err)
		}
		if sv.n.Load() != 0 {
			t.Fatal("impostor delivered the request")
		}
	})
	t.Run("impostor-forges-reply", func(t *testing.T) {
		imp := newRaw(t, xrep.NewSocket)
		dial := listenOn(t, imp, "inproc")
		cl := newReq(t, real.Public())
		dial(cl)
		go func() {
			m, err := imp.RecvMsg()
			if err != nil {
				return
			}
			// A reply-shaped body the impostor made up (it has no K).
			m.Body = append(append([]byte{wire.Version, wire.KindReply, wire.SuiteBox}, make([]byte, 8)...), bytes.Repeat([]byte{7}, 30)...)
			imp.SendMsg(m)
		}()
		if _, err := roundTrip(cl, "secret"); !errors.Is(err, ErrAuthFailed) {
			t.Fatalf("got %v, want ErrAuthFailed", err)
		}
	})
}

// ephOf returns C' of a captured request.
func ephOf(wire []byte) PublicKey { return PublicKey(wire[4:36]) }

func TestShortTermKeys(t *testing.T) {
	sk := mustKey(t)
	tp, dialFront, listenBack := newTap(t, "inproc", "inproc")
	w := newRep(t, sk)
	listenBack(w)
	serveEcho(t, 0, w)
	a := newReq(t, sk.Public(), OptionSecretKey, mustKey(t), OptionShortTermMessages, 3)
	b := newReq(t, sk.Public(), OptionShortTermLifetime, 50*time.Millisecond)
	dialFront(a)
	dialFront(b)
	for i := 0; i < 7; i++ {
		if _, err := roundTrip(a, "a"); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 2; i++ {
		if _, err := roundTrip(b, "b"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(60 * time.Millisecond)
	}
	tp.mu.Lock()
	defer tp.mu.Unlock()
	eph := func(i int) PublicKey { return ephOf(tp.requests[i]) }
	// a: requests 0-2 on one key, 3-5 on a second, 6 on a third.
	if eph(0) != eph(2) || eph(2) == eph(3) || eph(3) != eph(5) || eph(5) == eph(6) {
		t.Fatal("client short-term key not replaced after 3 messages")
	}
	if eph(7) == eph(8) {
		t.Fatal("client short-term key not replaced after its lifetime")
	}
	for i := 0; i < 7; i++ {
		if eph(7) == eph(i) {
			t.Fatal("two client sockets share a short-term key")
		}
	}
	if n := binary.BigEndian.Uint64(tp.requests[3][36:44]); n != 1 {
		t.Fatalf("counter of a new short-term key starts at %d, want 1", n)
	}
}

// TestClientPolicy covers the REP side's client policy, including a
// refusal that arrives within one round trip and a reload while serving.
func TestClientPolicy(t *testing.T) {
	sk, alice, bob := mustKey(t), mustKey(t), mustKey(t)
	cases := []struct {
		name   string
		server []any
		client []any
		want   error
	}{
		{"no-policy-anonymous", nil, nil, nil},
		{"no-policy-vouched", nil, []any{OptionSecretKey, bob}, nil},
		{"listed", []any{OptionAuthorizedKeys, []PublicKey{alice.Public()}}, []any{OptionSecretKey, alice}, nil},
		{"not-listed", []any{OptionAuthorizedKeys, []PublicKey{alice.Public()}}, []any{OptionSecretKey, bob}, ErrNotAuthorized},
		{"anonymous-refused", []any{OptionAuthorizedKeys, []PublicKey{alice.Public()}}, nil, ErrNotAuthorized},
		{"anonymous-allowed", []any{OptionAuthorizedKeys, []PublicKey{alice.Public()}, OptionAllowAnonymous, true}, nil, nil},
		{"empty-list", []any{OptionAuthorizedKeys, []PublicKey{}}, []any{OptionSecretKey, alice}, ErrNotAuthorized},
		{"authorizer-yes", []any{OptionAuthorizer, func(k PublicKey) bool { return k == bob.Public() }}, []any{OptionSecretKey, bob}, nil},
		{"authorizer-no", []any{OptionAuthorizer, Authorizer(func(k PublicKey) bool { return false })}, []any{OptionSecretKey, bob}, ErrNotAuthorized},
		{"list-or-authorizer", []any{OptionAuthorizedKeys, []PublicKey{alice.Public()}, OptionAuthorizer, func(k PublicKey) bool { return k == bob.Public() }}, []any{OptionSecretKey, bob}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newRep(t, sk, c.server...)
			sv := serveEcho(t, 0, w)
			cl := newReq(t, sk.Public(), append([]any{mangos.OptionRecvDeadline, 3 * time.Second}, c.client...)...)
			listenOn(t, w, "inproc")(cl)
			start := time.Now()
			err := cl.Authenticate()
			if !errors.Is(err, c.want) {
				t.Fatalf("Authenticate: got %v, want %v", err, c.want)
			}
			_, err = roundTrip(cl, "hi")
			if !errors.Is(err, c.want) {
				t.Fatalf("Recv: got %v, want %v", err, c.want)
			}
			if time.Since(start) > 2*time.Second {
				t.Fatal("answer took too long: looks like a timeout, not a refusal")
			}
			if want := int64(0); c.want != nil && sv.n.Load() != want {
				t.Fatal("refused request reached the application")
			}
		})
	}
	t.Run("reload-while-serving", func(t *testing.T) {
		w := newRep(t, sk, OptionAuthorizedKeys, []PublicKey{alice.Public()})
		serveEcho(t, 0, repContexts(t, w, 4)...)
		dial := listenOn(t, w, "inproc")
		a := newReq(t, sk.Public(), OptionSecretKey, alice)
		b := newReq(t, sk.Public(), OptionSecretKey, bob)
		dial(a)
		dial(b)
		if _, err := roundTrip(b, "x"); !errors.Is(err, ErrNotAuthorized) {
			t.Fatalf("bob before reload: %v", err)
		}
		mustSet(t, w, OptionAuthorizedKeys, []PublicKey{bob.Public()})
		if _, err := roundTrip(b, "x"); err != nil {
			t.Fatalf("bob after reload: %v", err)
		}
		if _, err := roundTrip(a, "x"); !errors.Is(err, ErrNotAuthorized) {
			t.Fatalf("alice after reload: %v", err)
		}
	})
}

// TestNonceUniqueness captures every sealed message of many concurrent
// contexts and checks that no nonce repeats under a key; and that two
// server instances answering the same request choose different nonces.
func TestNonceUniqueness(t *testing.T) {
	sk := mustKey(t)
	tp, dialFront, listenBack := newTap(t, "inproc", "inproc")
	w := newRep(t, sk)
	listenBack(w)
	serveEcho(t, 0, repContexts(t, w, 16)...)
	cl := newReq(t, sk.Public(), OptionShortTermMessages, 150)
	dialFront(cl)
	var wg sync.WaitGroup
	for c := 0; c < 100; c++ {
		ctx, _ := cl.OpenContext()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5; i++ {
				if _, err := roundTrip(ctx, "n"); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	tp.mu.Lock()
	reqNonces := map[string]string{}
	for _, r := range tp.requests {
		k := string(r[4:44]) // C' and N: the key and the varying part of the nonce
		if old, ok := reqNonces[k]; ok && old != string(r) {
			t.Fatal("request nonce reused under one key for other bytes")
		}
		reqNonces[k] = string(r) // a resent copy is the same bytes, not a new encryption
	}
	repNonces := map[string]bool{}
	for _, r := range tp.replies {
		k := string(r[3:19]) // R (N_req is bound too, R alone must already differ)
		if repNonces[k] {
			t.Fatal("reply random value repeated")
		}
		repNonces[k] = true
	}
	tp.mu.Unlock()
	if len(reqNonces) != 500 || len(repNonces) != 500 {
		t.Fatalf("captured %d requests, %d replies; want 500 each", len(reqNonces), len(repNonces))
	}

	// The same request answered by two instances (a retry that moved).
	wire := captureRequest(t, sk, "twice")
	var rs [][]byte
	for i := 0; i < 2; i++ {
		w := newRep(t, sk)
		serveEcho(t, 0, w)
		rc := newRawClient(t, listenOn(t, w, "inproc"))
		rc.send(t, wire)
		r := rc.recv()
		if r == nil {
			t.Fatal("no reply")
		}
		rs = append(rs, r)
	}
	if bytes.Equal(rs[0][3:19], rs[1][3:19]) {
		t.Fatal("two instances used the same reply nonce for one request")
	}
}

// fakeNetwork is a raw xrep socket that a REQ client dials and a raw xreq
// socket dialed to the real REP: the test moves messages between them and
// can swap or replay bodies.
type fakeNetwork struct {
	front, back mangos.Socket
}

func newFakeNetwork(t testing.TB, w *Socket, cl *Socket) *fakeNetwork {
	fn := &fakeNetwork{front: newRaw(t, xrep.NewSocket), back: newRaw(t, xreq.NewSocket)}
	fn.front.SetOption(mangos.OptionRecvDeadline, 5*time.Second)
	fn.back.SetOption(mangos.OptionRecvDeadline, 5*time.Second)
	listenOn(t, fn.front, "inproc")(cl)
	listenOn(t, w, "inproc")(fn.back)
	return fn
}

// forward takes one request from the client side, passes it to the
// server and returns the request and the server's answer, not yet
// delivered.
func (fn *fakeNetwork) forward(t testing.TB) (request, reply *mangos.Message) {
	t.Helper()
	m, err := fn.front.RecvMsg()
	if err != nil {
		t.Fatal(err)
	}
	request = &mangos.Message{Header: bytes.Clone(m.Header), Body: bytes.Clone(m.Body)}
	if err := fn.back.SendMsg(m); err != nil {
		t.Fatal(err)
	}
	r, err := fn.back.RecvMsg()
	if err != nil {
		t.Fatal(err)
	}
	moveRequestID(r)
	return request, r
}

func (fn *fakeNetwork) deliver(t testing.TB, header, body []byte) {
	t.Helper()
	m := mangos.NewMessage(len(body))
	m.Header = append(m.Header, header...)
	m.Body = append(m.Body, body...)
	if err := fn.front.SendMsg(m); err != nil {
		t.Fatal(err)
	}
}

// TestRepliesBoundToRequests: the SP request ID is not authenticated, so
// an attacker can swap replies between two contexts or replay an old
// reply under a new ID; the client must reject both.
func TestRepliesBoundToRequests(t *testing.T) {
	sk := mustKey(t)
	w := newRep(t, sk)
	serveEcho(t, 0, repContexts(t, w, 2)...)
	// No advisory grace: the swapped replies fail at once, without a
	// resend that this step-by-step network would have to carry.
	cl := newReq(t, sk.Public(), OptionAdvisoryGrace, time.Duration(0))
	fn := newFakeNetwork(t, w, cl)
	c1, _ := cl.OpenContext()
	c2, _ := cl.OpenContext()

	// Swap: each context gets the other's reply body under its own ID.
	c1.Send([]byte("one"))
	c2.Send([]byte("two"))
	q1, r1 := fn.forward(t)
	q2, r2 := fn.forward(t)
	_, _ = q1, q2
	fn.deliver(t, r1.Header, r2.Body)
	fn.deliver(t, r2.Header, r1.Body)
	for i, c := range []mangos.Context{c1, c2} {
		if _, err := c.Recv(); !errors.Is(err, ErrAuthFailed) {
			t.Fatalf("context %d accepted a swapped reply: %v", i+1, err)
		}
	}

	// Replay: an honest exchange, then its reply replayed as the answer
	// to the next request.
	c1.Send([]byte("three"))
	_, r3 := fn.forward(t)
	fn.deliver(t, r3.Header, r3.Body)
	if got, err := c1.Recv(); err != nil || string(got) != "echo:three" {
		t.Fatalf("honest exchange: %q %v", got, err)
	}
	c1.Send([]byte("four"))
	_, r4 := fn.forward(t)
	fn.deliver(t, r4.Header, r3.Body)
	if _, err := c1.Recv(); !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("old reply accepted for a new request: %v", err)
	}
}

// TestReplayAndRetry: a replayed request never reaches the application
// twice; a mangos retry of a slow request gets its answer; stale and
// evicted requests are refused with typed errors.
func TestReplayAndRetry(t *testing.T) {
	sk := mustKey(t)
	t.Run("replay-gets-cached-reply", func(t *testing.T) {
		w := newRep(t, sk)
		sv := serveEcho(t, 0, w)
		dial := listenOn(t, w, "inproc")
		wire := captureRequest(t, sk, "pay 100", OptionSecretKey, mustKey(t))
		rc := newRawClient(t, dial)
		rc.send(t, wire)
		first := rc.recv()
		for i := 0; i < 3; i++ {
			rc.send(t, wire)
			if again := rc.recv(); !bytes.Equal(again, first) {
				t.Fatal("replay did not get the identical cached reply")
			}
		}
		if n := sv.count("pay 100"); n != 1 {
			t.Fatalf("application saw the request %d times, want once", n)
		}
		if got := w.Stats().Rejected[ReasonRetry]; got != 3 {
			t.Fatalf("retry count %d, want 3", got)
		}
	})
	t.Run("mangos-retry", func(t *testing.T) {
		w := newRep(t, sk)
		sv := serveEcho(t, 300*time.Millisecond, w)
		cl := newReq(t, sk.Public(), mangos.OptionRetryTime, 100*time.Millisecond)
		listenOn(t, w, "inproc")(cl)
		got, err := roundTrip(cl, "slow")
		if err != nil || string(got) != "echo:slow" {
			t.Fatalf("%q %v", got, err)
		}
		time.Sleep(50 * time.Millisecond)
		if n := sv.count("slow"); n != 1 {
			t.Fatalf("application saw the request %d times, want once", n)
		}
		if w.Stats().Rejected[ReasonRetry] == 0 {
			t.Fatal("no retry reached the server: the test did not test retries")
		}
	})
	t.Run("reply-evicted", func(t *testing.T) {
		w := newRep(t, sk, OptionReplyCacheSize, 1)
		sv := serveEcho(t, 0, w)
		dial := listenOn(t, w, "inproc")
		a := captureRequest(t, sk, "a")
		b := captureRequest(t, sk, "b")
		rc := newRawClient(t, dial)
		rc.send(t, a)
		rc.recv()
		rc.send(t, b)
		rc.recv()
		rc.send(t, a) // a's reply slot now holds b
		if r := rc.recv(); r == nil || r[1] != wire.KindRefusal {
			t.Fatalf("replay after eviction: got %x, want a refusal", r)
		}
		if sv.count("a") != 1 || w.Stats().Rejected[ReasonReplayed] != 1 {
			t.Fatal("evicted replay reached the application or was not counted")
		}
	})
	t.Run("stale", func(t *testing.T) {
		w := newRep(t, sk)
		w.cfg.now = func() time.Time { return time.Now().Add(3 * time.Minute) } // server clock ahead
		w.eng.Store(nil)
		sv := serveEcho(t, 0, w)
		cl := newReq(t, sk.Public())
		listenOn(t, w, "inproc")(cl)
		if _, err := roundTrip(cl, "late"); !errors.Is(err, ErrStale) {
			t.Fatalf("got %v, want ErrStale", err)
		}
		if sv.n.Load() != 0 {
			t.Fatal("stale request delivered")
		}
	})
	t.Run("tombstone", func(t *testing.T) {
		// One peer and one kept reply: b evicts a's short-term key and a's
		// reply, so a's replay meets only a's tombstone.
		w := newRep(t, sk, OptionPeerCacheSize, 1, OptionReplyCacheSize, 1)
		sv := serveEcho(t, 0, w)
		dial := listenOn(t, w, "inproc")
		a := captureRequest(t, sk, "first")
		time.Sleep(5 * time.Millisecond)
		b := captureRequest(t, sk, "second")
		rc := newRawClient(t, dial)
		rc.send(t, a)
		rc.recv()
		rc.send(t, b) // evicts a's short-term key; its replay window is gone
		rc.recv()
		rc.send(t, a)
		if r := rc.recv(); r == nil || r[1] != wire.KindRefusal {
			t.Fatalf("replay of an evicted peer: got %x, want a refusal", r)
		}
		if sv.count("first") != 1 || w.Stats().Rejected[ReasonInDoubt] != 1 {
			t.Fatalf("replay after eviction: app saw %d, in-doubt count %d", sv.count("first"), w.Stats().Rejected[ReasonInDoubt])
		}
	})
}

// TestHostileInputDoesNotStopServer sends a run of bad bodies, then a
// good request, which must still be served; each bad body is counted.
func TestHostileInputDoesNotStopServer(t *testing.T) {
	sk := mustKey(t)
	w := newRep(t, sk)
	sv := serveEcho(t, 0, w)
	dial := listenOn(t, w, "inproc")
	good := captureRequest(t, sk, "legit")
	weak := bytes.Clone(good)
	copy(weak[4:36], make([]byte, 32))
	reflected := bytes.Clone(good)
	reflected[1] = wire.KindReply
	flipped := bytes.Clone(good)
	flipped[len(flipped)-1] ^= 1
	bad := map[string]struct {
		body   []byte
		reason Reason
	}{
		"empty":     {[]byte{}, ReasonMalformed},
		"short":     {good[:40], ReasonMalformed},
		"version":   {append([]byte{3}, good[1:]...), ReasonUnknownVersion},
		"reflected": {reflected, ReasonUnknownKind},
		"suite":     {append([]byte{wire.Version, wire.KindRequest, 9}, good[3:]...), ReasonUnsupported},
		"weak":      {weak, ReasonWeakKey},
		"flipped":   {flipped, ReasonForged},
	}
	rc := newRawClient(t, dial)
	rc.s.SetOption(mangos.OptionRecvDeadline, 50*time.Millisecond)
	for _, b := range bad {
		rc.send(t, b.body)
		rc.recv()
	}
	cl := newReq(t, sk.Public())
	dial(cl)
	if got, err := roundTrip(cl, "after"); err != nil || string(got) != "echo:after" {
		t.Fatalf("server stopped serving: %q %v", got, err)
	}
	st := w.Stats()
	for name, b := range bad {
		if st.Rejected[b.reason] == 0 {
			t.Errorf("%s: not counted as %s", name, b.reason)
		}
	}
	if st.TotalRejected() != uint64(len(bad)) {
		t.Errorf("rejected %d, want %d: %v", st.TotalRejected(), len(bad), st.Rejected)
	}
	if sv.n.Load() != 1 {
		t.Fatalf("application saw %d requests, want 1", sv.n.Load())
	}
}

// TestOverhead checks the documented per-message overheads against the
// bytes on the wire.
func TestOverhead(t *testing.T) {
	sk := mustKey(t)
	body := "twelve bytes"
	cases := []struct {
		opts []any
		req  int
		rep  int
	}{
		{[]any{OptionEpochs, EpochsOff}, RequestOverhead, ReplyOverhead},
		{[]any{OptionEpochs, EpochsOff, OptionSecretKey, mustKey(t)}, VouchedRequestOverhead, ReplyOverhead},
		{[]any{OptionEpochs, EpochsOff, OptionCipher, CipherAESGCM}, RequestOverhead, ReplyOverhead},
		{[]any{OptionEpochs, EpochsOff, OptionCipher, CipherAESGCM, OptionSecretKey, mustKey(t)}, VouchedRequestOverhead, ReplyOverhead},
		// By default a client asks a server for epoch keys (3 bytes) until
		// one answers without them (SPEC.md §14.2).
		{nil, RequestOverhead + 3, ReplyOverhead},
	}
	documented := []int{RequestOverhead, VouchedRequestOverhead, ReplyOverhead}
	if !slices.Equal(documented, []int{70, 158, 35}) || !slices.Equal(documented, []int{anonRequestOver, vouchRequestOver, replyOver}) {
		t.Fatal("overhead constants differ from README, SPEC.md and the crypto core")
		t.Fatal("overhead constants differ from README and SPEC.md")
	}
	for _, c := range cases {
		tp, dialFront, listenBack := newTap(t, "inproc", "inproc")
		w := newRep(t, sk)
		listenBack(w)
		serveEcho(t, 0, w)
		cl := newReq(t, sk.Public(), c.opts...)
		dialFront(cl)
		if _, err := roundTrip(cl, body); err != nil {
			t.Fatal(err)
		}
		tp.mu.Lock()
		if got := len(tp.requests[0]) - len(body); got != c.req {
			t.Errorf("%v: request overhead %d, want %d", c.opts, got, c.req)
		}
		if got := len(tp.replies[0]) - len("echo:"+body); got != c.rep {
			t.Errorf("%v: reply overhead %d, want %d", c.opts, got, c.rep)
		}
		tp.mu.Unlock()
	}
}

// TestManyContexts runs hundreds of client contexts against many server
// contexts concurrently (run with -race).
func TestManyContexts(t *testing.T) {
	sk := mustKey(t)
	w := newRep(t, sk)
	sv := serveEcho(t, 0, repContexts(t, w, 64)...)
	dial := listenOn(t, w, "tcp")
	cl := newReq(t, sk.Public(), OptionSecretKey, mustKey(t))
	dial(cl)
	const contexts, each = 300, 4
	var wg sync.WaitGroup
	var failures atomic.Int64
	for c := 0; c < contexts; c++ {
		ctx, err := cl.OpenContext()
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			defer ctx.Close()
			for i := 0; i < each; i++ {
				body := fmt.Sprintf("%d/%d", c, i)
				if got, err := roundTrip(ctx, body); err != nil || string(got) != "echo:"+body {
					failures.Add(1)
					t.Errorf("ctx %d: %q %v", c, got, err)
					return
				}
			}
		}(c)
	}
	wg.Wait()
	if failures.Load() != 0 || sv.n.Load() != contexts*each {
		t.Fatalf("%d failures, app saw %d of %d", failures.Load(), sv.n.Load(), contexts*each)
	}
}

// TestWeakKeysRefused: small-order public keys are refused wherever a key
// is configured (the wire is covered by the test vectors).
func TestWeakKeysRefused(t *testing.T) {
	m := readFields(t, "testdata/nacl_box_kat.txt")
	small := PublicKey(m.Hex(t, "small_order_public"))
	s, _ := NewReqSocket()
	defer s.Close()
	rep, _ := NewRepSocket()
	defer rep.Close()
	for _, k := range []PublicKey{{}, small} {
		if err := s.SetOption(OptionServerKey, k); !errors.Is(err, ErrWeakKey) {
			t.Errorf("server key %x: got %v, want ErrWeakKey", k[:4], err)
		}
		if err := rep.SetOption(OptionAuthorizedKeys, []PublicKey{k}); !errors.Is(err, ErrWeakKey) {
			t.Errorf("authorized key %x: got %v, want ErrWeakKey", k[:4], err)
		}
		if _, err := ParsePublicKey(k.String()); !errors.Is(err, ErrWeakKey) {
			t.Errorf("parse %x: got %v, want ErrWeakKey", k[:4], err)
		}
	}
}

// TestNoneIsPlainMangos: without opting in, a secsock socket talks to
// plain mangos sockets both ways, bytes unchanged.
func TestNoneIsPlainMangos(t *testing.T) {
	plainRep := newRaw(t, rep.NewSocket)
	dial := listenOn(t, plainRep, "inproc")
	s, _ := NewReqSocket()
	defer s.Close()
	dial(s)
	go func() {
		b, err := plainRep.Recv()
		if err == nil {
			plainRep.Send(append([]byte("plain:"), b...))
		}
	}()
	got, err := roundTrip(s, "hi")
	if err != nil || string(got) != "plain:hi" {
		t.Fatalf("%q %v", got, err)
	}
	// And a secsock REP without opt-in answers a plain REQ.
	r, _ := NewRepSocket()
	defer r.Close()
	plainReq := newRaw(t, req.NewSocket)
	listenOn(t, r, "inproc")(plainReq)
	go func() {
		b, err := r.Recv()
		if err == nil {
			r.Send(append([]byte("wrapped:"), b...))
		}
	}()
	plainReq.SetOption(mangos.OptionRecvDeadline, 5*time.Second)
	if err := plainReq.Send([]byte("yo")); err != nil {
		t.Fatal(err)
	}
	if b, err := plainReq.Recv(); err != nil || string(b) != "wrapped:yo" {
		t.Fatalf("%q %v", b, err)
	}
}

// TestSealedAgainstPlainServer: a curve client talking to a plain mangos
// REP server shows the server only sealed bytes.
func TestSealedAgainstPlainServer(t *testing.T) {
	plainRep := newRaw(t, rep.NewSocket)
	plainRep.SetOption(mangos.OptionRecvDeadline, 5*time.Second)
	dial := listenOn(t, plainRep, "inproc")
	cl := newReq(t, mustKey(t).Public())
	dial(cl)
	cl.Send([]byte("confidential"))
	b, err := plainRep.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte("confidential")) || b[0] != wire.Version {
		t.Fatal("plain server saw plaintext or an unsealed body")
	}
}

func TestOptions(t *testing.T) {
	s, _ := NewRepSocket()
	defer s.Close()
	cl, _ := NewReqSocket()
	defer cl.Close()
	k := mustKey(t)
	bad := map[string]any{
		OptionMechanism: "tls", OptionSecretKey: 42, OptionAuthorizedKeys: []string{"x"},
		OptionAuthorizer: "yes", OptionAllowAnonymous: 1, OptionFreshness: 5,
		OptionPeerCacheSize: -1, OptionEventHook: 3, OptionLogger: "stderr",
		OptionPreviousSecretKeys: []SecretKey{{}}, OptionRequestAuthorizer: func(PublicKey) bool { return true },
		OptionPermissive: "yes", OptionClock: time.Now(),
	}
	badReq := map[string]any{OptionServerKey: []byte{1}, OptionCipher: "rot13", OptionShortTermMessages: 0}
	for sock, opts := range map[*Socket]map[string]any{s: bad, cl: badReq} {
		for name, v := range opts {
			err := sock.SetOption(name, v)
			if !errors.Is(err, mangos.ErrBadValue) {
				t.Errorf("%s=%v: got %v, want ErrBadValue", name, v, err)
			}
			// The error names what the option takes.
			if want := optionRules[name].want; err != nil && !strings.Contains(err.Error(), want) {
				t.Errorf("%s=%v: %q does not say it takes %s", name, v, err, want)
			}
		}
	}
	if _, err := s.GetOption(OptionPublicKey); !errors.Is(err, ErrNoKey) {
		t.Errorf("public key without secret: %v", err)
	}
	mustSet(t, s, OptionSecretKey, k.Reveal())
	if v, err := s.GetOption(OptionPublicKey); err != nil || v.(PublicKey) != k.Public() {
		t.Errorf("public key: %v %v", v, err)
	}
	if _, err := s.GetOption(OptionSecretKey); !errors.Is(err, ErrWriteOnly) {
		t.Errorf("secret key readable: %v", err)
	}
	if err := s.SetOption("NO-SUCH-OPTION", 1); !errors.Is(err, mangos.ErrBadOption) {
		t.Errorf("unknown option: %v", err)
	}
	if v, err := s.GetOption(mangos.OptionRecvDeadline); err != nil || v == nil {
		t.Errorf("mangos option not delegated: %v", err)
	}
	// A REP socket with curve and no key fails with ErrNoKey, not a panic.
	s2, _ := NewRepSocket()
	defer s2.Close()
	mustSet(t, s2, OptionMechanism, MechanismCurve, mangos.OptionRecvDeadline, 10*time.Millisecond)
	if _, err := s2.Recv(); !errors.Is(err, ErrNoKey) {
		t.Errorf("REP without key: %v", err)
	}
	c, _ := NewReqSocket()
	defer c.Close()
	mustSet(t, c, OptionMechanism, MechanismCurve)
	if err := c.Send([]byte("x")); !errors.Is(err, ErrNoKey) {
		t.Errorf("REQ without server key: %v", err)
	}
}

func TestWrapRefusesRawSockets(t *testing.T) {
	for _, open := range []func() (mangos.Socket, error){xreq.NewSocket, xrep.NewSocket} {
		s, _ := open()
		if _, err := Wrap(s); !errors.Is(err, ErrRawSocket) {
			t.Errorf("got %v, want ErrRawSocket", err)
		}
		s.Close()
	}
}

// TestRawBypass: SendRaw sends unsealed bytes on purpose, which a curve
// server drops; RecvRaw shows the sealed bytes; a reply sealed for an
// earlier request no longer opens after SendRaw.
func TestRawBypass(t *testing.T) {
	sk := mustKey(t)
	w := newRep(t, sk)
	dial := listenOn(t, w, "inproc")
	cl := newReq(t, sk.Public())
	dial(cl)
	if err := cl.SendRaw([]byte("not sealed")); err != nil {
		t.Fatal(err)
	}
	cl.SetOption(mangos.OptionRecvDeadline, 200*time.Millisecond)
	w.SetOption(mangos.OptionRecvDeadline, 200*time.Millisecond)
	if _, err := w.Recv(); !errors.Is(err, mangos.ErrRecvTimeout) {
		t.Fatalf("unsealed request delivered: %v", err)
	}
	if w.Stats().Rejected[ReasonNotSecsock] != 1 {
		t.Fatal("unsealed request not counted")
	}
	// RecvRaw stops the socket's own reading (raw.go); a first RecvRaw
	// that times out does that before the sealed request is sent, so the
	// dispatcher cannot take it first.
	if _, err := w.RecvRaw(); !errors.Is(err, mangos.ErrRecvTimeout) {
		t.Fatalf("RecvRaw with nothing sent: %v", err)
	}
	w.SetOption(mangos.OptionRecvDeadline, 5*time.Second)
	cl.Send([]byte("sealed"))
	raw, err := w.RecvRaw()
	if err != nil || bytes.Contains(raw, []byte("sealed")) || raw[0] != wire.Version {
		t.Fatalf("RecvRaw: %v", err)
	}
	if err := w.Send([]byte("reply")); !errors.Is(err, mangos.ErrProtoState) {
		t.Fatalf("Send after RecvRaw must not reply unsealed or sealed to nothing: %v", err)
	}
}

// TestServerKeyRotation: a REP socket with a new key and the old one as a
// previous key serves clients configured with either.
func TestServerKeyRotation(t *testing.T) {
	old, next := mustKey(t), mustKey(t)
	w := newRep(t, next, OptionPreviousSecretKeys, []SecretKey{old})
	serveEcho(t, 0, repContexts(t, w, 2)...)
	dial := listenOn(t, w, "inproc")
	for _, k := range []SecretKey{old, next} {
		cl := newReq(t, k.Public(), OptionSecretKey, mustKey(t))
		dial(cl)
		for i := 0; i < 3; i++ {
			if got, err := roundTrip(cl, "r"); err != nil || string(got) != "echo:r" {
				t.Fatalf("client of %s: %q %v", k.Public(), got, err)
			}
		}
	}
	// After the migration the old key is dropped: its clients are told.
	mustSet(t, w, OptionPreviousSecretKeys, []SecretKey{})
	cl := newReq(t, old.Public())
	dial(cl)
	if _, err := roundTrip(cl, "r"); !errors.Is(err, ErrServerKeyMismatch) {
		t.Fatalf("after rotation: %v", err)
	}
}

// TestMaxRecvSizeCountsBodies: mangos counts header plus sealed body
// against OptionMaxRecvSize and drops bigger messages silently; with
// curve the limit applies to the application's bodies instead, so a body
// of exactly the limit still arrives.
func TestMaxRecvSizeCountsBodies(t *testing.T) {
	sk := mustKey(t)
	const limit = 4096
	w := newRep(t, sk, mangos.OptionMaxRecvSize, limit)
	serveEcho(t, 0, w)
	cl := newReq(t, sk.Public(), OptionSecretKey, mustKey(t), mangos.OptionMaxRecvSize, limit+len("echo:"))
	listenOn(t, w, "tcp")(cl)
	if v, _ := w.GetOption(mangos.OptionMaxRecvSize); v != limit {
		t.Fatalf("GetOption gives %v, want the application's %d", v, limit)
	}
	if _, err := roundTrip(cl, string(bytes.Repeat([]byte{'x'}, limit))); err != nil {
		t.Fatalf("body at the limit: %v", err)
	}
	// Mechanism none: exactly mangos.
	plain, _ := NewRepSocket()
	defer plain.Close()
	plain.SetOption(mangos.OptionMaxRecvSize, 1000)
	mustSet(t, plain, OptionMechanism, MechanismNone)
	if v, _ := plain.sock.GetOption(mangos.OptionMaxRecvSize); v != 1000 {
		t.Fatalf("none: wrapped socket limit %v, want 1000", v)
	}
}

// TestReplyAfterInterveningDrop: the application received a request,
// then called Recv again, which dropped an attacker's junk (mangos now
// holds the junk's return path) and timed out. Its late Send must not
// deliver the reply to the attacker; the client gets it on its retry.
func TestReplyAfterInterveningDrop(t *testing.T) {
	sk := mustKey(t)
	w := newRep(t, sk)
	dial := listenOn(t, w, "inproc")
	cl := newReq(t, sk.Public(), mangos.OptionRetryTime, 300*time.Millisecond)
	dial(cl)
	attacker := newRawClient(t, dial)
	attacker.s.SetOption(mangos.OptionRecvDeadline, 500*time.Millisecond)
	if err := cl.Send([]byte("req1")); err != nil {
		t.Fatal(err)
	}
	if b, err := w.Recv(); err != nil || string(b) != "req1" {
		t.Fatalf("%q %v", b, err)
	}
	attacker.send(t, append([]byte{3, wire.KindRequest}, make([]byte, 68)...)) // a request of another version: hinted
	w.SetOption(mangos.OptionRecvDeadline, 100*time.Millisecond)
	if _, err := w.Recv(); !errors.Is(err, mangos.ErrRecvTimeout) {
		t.Fatalf("second Recv: %v", err)
	}
	if w.Stats().Rejected[ReasonUnknownVersion] != 1 {
		t.Fatal("junk not received and dropped: the test did not test the race")
	}
	if hint := attacker.recv(); len(hint) != wire.HintSize || hint[1] != wire.KindHint {
		t.Fatalf("the junk's answer: %x, want a hint", hint)
	}
	if err := w.Send([]byte("reply1")); err != nil {
		t.Fatal(err)
	}
	if got := attacker.recv(); got != nil {
		t.Fatalf("the attacker received the reply (%d bytes)", len(got))
	}
	w.SetOption(mangos.OptionRecvDeadline, 5*time.Second)
	go w.Recv() // answers the client's retry from the reply cache
	if b, err := cl.Recv(); err != nil || string(b) != "reply1" {
		t.Fatalf("client: %q %v", b, err)
	}
}

// TestMechanismSwitchedWhileOutstanding: a sealed reply is never handed
// over unopened because the mechanism was switched to none meanwhile.
func TestMechanismSwitchedWhileOutstanding(t *testing.T) {
	sk := mustKey(t)
	w := newRep(t, sk)
	serveEcho(t, 0, w)
	cl := newReq(t, sk.Public())
	listenOn(t, w, "inproc")(cl)
	if err := cl.Send([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := cl.SetOption(OptionMechanism, MechanismNone); !errors.Is(err, mangos.ErrBadOption) {
		t.Fatalf("switch a connected REQ to none: %v, want ErrBadOption", err)
	}
	// The mechanism stays: the reply opens.
	if b, err := cl.Recv(); err != nil || string(b) != "echo:x" {
		t.Fatalf("got %q %v", b, err)
	}
	// Before it connects, a socket may go back to none; a sealed request
	// still outstanding then is never handed over unopened.
	cl2, _ := NewReqSocket()
	defer cl2.Close()
	mustSet(t, cl2, OptionMechanism, MechanismCurve, OptionServerKey, sk.Public())
	if err := cl2.SetOption(OptionMechanism, MechanismNone); err != nil {
		t.Fatalf("switch an unconnected REQ to none: %v", err)
	}
}
