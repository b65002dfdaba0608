package secsock

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/secsock/secsock/internal/wire"
	"go.nanomsg.org/mangos/v3"
)

// serveWithPeer answers every request on ctxs with answer(body, its
// Peer), reading the Peer with RecvPeer, until the socket closes.
func serveWithPeer(ctxs []mangos.Context, answer func(b []byte, p Peer) []byte) {
	for _, c := range ctxs {
		go func(c interface {
			RecvPeer() ([]byte, Peer, error)
			Send([]byte) error
		}) {
			for {
				b, p, err := c.RecvPeer()
				if errors.Is(err, mangos.ErrClosed) {
					return
				}
				if err == nil {
					c.Send(answer(b, p))
				}
			}
		}(c.(interface {
			RecvPeer() ([]byte, Peer, error)
			Send([]byte) error
		}))
	}
}

// peerEcho answers every request with "<fingerprint>:<body>" and records
// the Peer of each.
type peerEcho struct {
	mu    sync.Mutex
	peers map[string]Peer // by body
}

func servePeers(t testing.TB, ctxs ...mangos.Context) *peerEcho {
	pe := &peerEcho{peers: map[string]Peer{}}
	serveWithPeer(ctxs, func(b []byte, p Peer) []byte {
		pe.mu.Lock()
		pe.peers[string(b)] = p
		pe.mu.Unlock()
		return []byte(p.Fingerprint() + ":" + string(b))
	})
	return pe
}

func (pe *peerEcho) get(body string) Peer {
	pe.mu.Lock()
	defer pe.mu.Unlock()
	return pe.peers[body]
}

// TestPeerIdentity: every delivered request carries who sent it (the
// canonical client key or anonymous), the server key it was sealed to
// (current or previous), and whether it was forward-secret; on the
// socket and on contexts, read while the request is held.
func TestPeerIdentity(t *testing.T) {
	current, previous := mustKey(t), mustKey(t)
	alice, bob := mustKey(t), mustKey(t)
	seed, err := NewEpochSeed(0)
	if err != nil {
		t.Fatal(err)
	}
	w := newRep(t, current, OptionPreviousSecretKeys, []SecretKey{previous}, OptionEpochSeed, seed)
	pe := servePeers(t, append(repContexts(t, w, 2), w)...)
	dial := listenOn(t, w, "inproc")

	for _, c := range []struct {
		name    string
		server  PublicKey
		client  SecretKey // zero: anonymous
		fs      bool      // ping first, so the request uses an epoch key
		wantKey PublicKey
		prev    bool
	}{
		{"anonymous", current.Public(), SecretKey{}, false, PublicKey{}, false},
		{"alice", current.Public(), alice, false, alice.Public(), false},
		{"alice-fs", current.Public(), alice, true, alice.Public(), false},
		{"bob-previous", previous.Public(), bob, false, bob.Public(), true},
	} {
		opts := []any{OptionEpochs, EpochsOff}
		if c.fs {
			opts = []any{OptionAuthenticateFirst, true}
		}
		if !c.client.IsZero() {
			opts = append(opts, OptionSecretKey, c.client)
		}
		cl := newReq(t, c.server, opts...)
		dial(cl)
		got, err := roundTrip(cl, c.name)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		p := pe.get(c.name)
		want := Peer{Key: c.wantKey, ServerKey: c.server, Previous: c.prev, ForwardSecret: c.fs}
		if p != want {
			t.Errorf("%s: Peer %+v, want %+v", c.name, p, want)
		}
		if p.Anonymous() != c.client.IsZero() {
			t.Errorf("%s: Anonymous() = %v", c.name, p.Anonymous())
		}
		if wantFP := map[bool]string{true: "anonymous", false: c.wantKey.Fingerprint()}[c.client.IsZero()]; string(got) != wantFP+":"+c.name {
			t.Errorf("%s: reply %q, want fingerprint %s", c.name, got, wantFP)
		}
	}
}

// TestPeerNeedsAHeldRequest: Peer answers only between Recv and Send.
func TestPeerNeedsAHeldRequest(t *testing.T) {
	sk := mustKey(t)
	w := newRep(t, sk)
	if _, err := w.Peer(); !errors.Is(err, mangos.ErrProtoState) {
		t.Fatalf("Peer before Recv: %v, want ErrProtoState", err)
	}
	cl := newReq(t, sk.Public())
	listenOn(t, w, "inproc")(cl)
	go cl.Send([]byte("x"))
	if _, err := w.Recv(); err != nil {
		t.Fatal(err)
	}
	if p, err := w.Peer(); err != nil || !p.Anonymous() || p.ServerKey != sk.Public() {
		t.Fatalf("Peer while held: %+v %v", p, err)
	}
	if err := w.Send([]byte("y")); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Peer(); !errors.Is(err, mangos.ErrProtoState) {
		t.Fatalf("Peer after Send: %v, want ErrProtoState", err)
	}
	if _, err := cl.Peer(); !errors.Is(err, mangos.ErrProtoState) {
		t.Fatalf("Peer on REQ: %v, want ErrProtoState", err)
	}
}

// TestRequestAuthorizer: the per-request hook sees the identity and the
// body; a refusal is authenticated (ErrNotAuthorized, not advisory), the
// application never sees the request, and a retry of it gets the same
// refusal bytes without asking the hook again.
func TestRequestAuthorizer(t *testing.T) {
	sk, alice, bob := mustKey(t), mustKey(t), mustKey(t)
	var mu sync.Mutex
	asked := map[string]int{}
	hook := func(p Peer, body []byte) bool {
		mu.Lock()
		asked[string(body)]++
		mu.Unlock()
		// alice may do anything; bob may only read.
		return p.Key == alice.Public() || strings.HasPrefix(string(body), "read ")
	}
	w := newRep(t, sk, OptionRequestAuthorizer, hook)
	sv := serveEcho(t, 0, append(repContexts(t, w, 2), w)...)
	dial := listenOn(t, w, "inproc")
	ca, cb := newReq(t, sk.Public(), OptionSecretKey, alice), newReq(t, sk.Public(), OptionSecretKey, bob)
	dial(ca)
	dial(cb)
	if _, err := roundTrip(ca, "write x"); err != nil {
		t.Fatalf("alice write: %v", err)
	}
	if _, err := roundTrip(cb, "read x"); err != nil {
		t.Fatalf("bob read: %v", err)
	}
	_, err := roundTrip(cb, "write y")
	if !errors.Is(err, ErrNotAuthorized) || isAdvisory(err) {
		t.Fatalf("bob write: %v, want an authenticated ErrNotAuthorized", err)
	}
	if sv.count("write y") != 0 {
		t.Fatal("the application saw a refused request")
	}
	if w.Stats().Rejected[ReasonNotAuthorized] != 1 {
		t.Fatalf("refusal not counted: %v", w.Stats().Rejected)
	}
}

// TestRequestAuthorizerRefusalIsCached: a copy of a refused request (a
// mangos retry, or a replay) gets the identical refusal from the reply
// cache, and the hook is not asked again.
func TestRequestAuthorizerRefusalIsCached(t *testing.T) {
	sk := mustKey(t)
	var asked int
	var mu sync.Mutex
	w := newRep(t, sk, OptionRequestAuthorizer, func(Peer, []byte) bool {
		mu.Lock()
		defer mu.Unlock()
		asked++
		return false
	})
	serveEcho(t, 0, w)
	dial := listenOn(t, w, "inproc")
	captured := captureRequest(t, sk, "delete everything")
	rc := newRawClient(t, dial)
	rc.send(t, captured)
	first := rc.recv()
	if len(first) != 19 || first[2] != wire.RefuseNotAuthorized {
		t.Fatalf("refusal %x: want NOT_AUTHORIZED", first)
	}
	// More copies than the 4 resends of a reply: a refusal is never turned
	// into REPLAYED ("it ran") while it is kept.
	for i := 0; i < 8; i++ {
		rc.send(t, captured)
		if again := rc.recv(); string(again) != string(first) {
			t.Fatalf("copy %d: %x, want the same refusal %x", i+2, again, first)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if asked != 1 {
		t.Fatalf("hook asked %d times, want once", asked)
	}
}

// TestPeerPrintsNoSecret: Peer's String names keys by fingerprint only.
func TestPeerString(t *testing.T) {
	k := mustKey(t).Public()
	p := Peer{Key: k, ServerKey: k, ForwardSecret: true}
	if s := p.String(); !strings.Contains(s, k.Fingerprint()) || !strings.Contains(s, "forward-secret") {
		t.Fatalf("%q", s)
	}
	if (Peer{Plain: true}).Fingerprint() != "plain" || (Peer{}).Fingerprint() != "anonymous" {
		t.Fatal("fingerprints of plain and anonymous peers")
	}
}

// TestPeerHybrid: Peer says whether a request was sealed in the hybrid
// mode, so an application can insist on post-quantum protection per
// request.
func TestPeerHybrid(t *testing.T) {
	sk := mustKey(t)
	seed, err := NewEpochSeed(0)
	if err != nil {
		t.Fatal(err)
	}
	w := newRep(t, sk, OptionEpochSeed, seed, OptionHybrid, HybridOn)
	pe := servePeers(t, w)
	dial := listenOn(t, w, "inproc")
	for _, hybrid := range []bool{true, false} {
		opts := []any{OptionAuthenticateFirst, true}
		if hybrid {
			opts = append(opts, OptionHybrid, HybridOn)
		}
		cl := newReq(t, sk.Public(), opts...)
		dial(cl)
		body := map[bool]string{true: "hybrid", false: "classical"}[hybrid]
		if _, err := roundTrip(cl, body); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		if p := pe.get(body); p.Hybrid != hybrid || !p.ForwardSecret {
			t.Errorf("%s: Peer %+v", body, p)
		}
	}
}

// TestPeerAfterRotation: a cached session keeps naming the key it was
// sealed to when a rotation reorders the server's keys (the current key
// becomes a previous one), and a middle key's retirement does not shift
// the others. Without finding the key again per request, the state
// machine reported the key at the session's old position.
func TestPeerAfterRotation(t *testing.T) {
	s1, s2, s3 := mustKey(t), mustKey(t), mustKey(t)
	w := newRep(t, s1)
	pe := servePeers(t, w)
	dial := listenOn(t, w, "inproc")
	c1 := newReq(t, s1.Public())
	dial(c1)
	if _, err := roundTrip(c1, "before"); err != nil {
		t.Fatal(err)
	}
	mustSet(t, w, OptionSecretKey, s2, OptionPreviousSecretKeys, []SecretKey{s1})
	if _, err := roundTrip(c1, "after"); err != nil { // the same short-term key: a cached session
		t.Fatal(err)
	}
	if p := pe.get("after"); p.ServerKey != s1.Public() || !p.Previous {
		t.Fatalf("after the rotation: Peer %+v, want the previous key %s", p, s1.Public().Fingerprint())
	}
	// Keys [s3, s2, s1] then [s3, s1]: the session on s1 moves from index 2 to 1.
	mustSet(t, w, OptionSecretKey, s3, OptionPreviousSecretKeys, []SecretKey{s2, s1})
	if _, err := roundTrip(c1, "three"); err != nil {
		t.Fatal(err)
	}
	mustSet(t, w, OptionPreviousSecretKeys, []SecretKey{s1})
	if _, err := roundTrip(c1, "retired-middle"); err != nil {
		t.Fatal(err)
	}
	if p := pe.get("retired-middle"); p.ServerKey != s1.Public() || !p.Previous {
		t.Fatalf("after retiring the middle key: Peer %+v", p)
	}
	st := w.ServerStats()
	for _, k := range st.ServerKeys {
		if k.Key == s2.Public() && k.Accepted != 0 {
			t.Errorf("requests sealed to s1 counted under s2: %+v", st.ServerKeys)
		}
	}
}

// TestPullRecvPeerConcurrent: on PULL, RecvPeer returns each message with
// its own sender, also with several goroutines receiving at once (mangos
// PULL allows it), while Peer, which could only name "the last message",
// refuses. Alice's and an anonymous pusher's messages are never mixed up.
func TestPullRecvPeerConcurrent(t *testing.T) {
	sk, alice := mustKey(t), mustKey(t)
	w := newPullWorker(t, sk)
	dial := listenOn(t, w.Socket, "inproc")
	pa, anon := newPusher(t, sk.Public(), OptionSecretKey, alice), newPusher(t, sk.Public())
	dial(pa)
	dial(anon)
	const each = 200
	mustSet(t, w.Socket, mangos.OptionRecvDeadline, 500*time.Millisecond)
	go func() {
		for i := 0; i < each; i++ {
			pa.Send([]byte(fmt.Sprintf("alice %d", i)))
			anon.Send([]byte(fmt.Sprintf("anon %d", i)))
		}
	}()
	var wg sync.WaitGroup
	var mu sync.Mutex
	wrong, got := 0, 0
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				done := got >= 2*each
				mu.Unlock()
				if done {
					return
				}
				b, p, err := w.RecvPeer()
				if err != nil {
					return
				}
				time.Sleep(100 * time.Microsecond) // let the others receive in between
				fromAlice := strings.HasPrefix(string(b), "alice ")
				mu.Lock()
				got++
				if fromAlice != (p.Key == alice.Public()) || fromAlice == p.Anonymous() {
					wrong++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if got != 2*each || wrong != 0 {
		t.Fatalf("%d of %d messages received, %d attributed to the wrong sender", got, 2*each, wrong)
	}
	if _, err := w.Peer(); !errors.Is(err, mangos.ErrProtoState) {
		t.Fatalf("Peer on PULL: %v, want ErrProtoState (use RecvPeer)", err)
	}
}
