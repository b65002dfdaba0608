package secsock

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.nanomsg.org/mangos/v3"
	"go.nanomsg.org/mangos/v3/protocol/req"
)

// serveInKind answers each request with "plain:" or "sealed:" and the
// body, as its Peer says, after delay.
func serveInKind(t testing.TB, delay time.Duration, ctxs ...mangos.Context) {
	serveWithPeer(ctxs, func(b []byte, p Peer) []byte {
		time.Sleep(delay)
		return []byte(map[bool]string{true: "plain:", false: "sealed:"}[p.Plain] + string(b))
	})
}

// plainReq is a plain mangos REQ socket (a client not moved yet).
func plainReq(t testing.TB, addr string) mangos.Socket {
	t.Helper()
	s, err := req.NewSocket()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	mustSet(t, s, mangos.OptionRetryTime, 100*time.Millisecond, mangos.OptionRecvDeadline, 5*time.Second,
		mangos.OptionReconnectTime, 10*time.Millisecond)
	if err := s.DialOptions(addr, map[string]any{mangos.OptionDialAsynch: true}); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRolloutPlainToSealed moves a fleet from plain mangos to secsock one
// client at a time, as README's rollout recipe says, and no request
// fails: a plain server is restarted as a permissive secsock server with
// requests in flight (mangos resends them), the clients switch to sealed
// one by one (each answered in kind, plain requests counted), and once
// the plain count stops growing the server goes strict, live.
func TestRolloutPlainToSealed(t *testing.T) {
	sk := mustKey(t)
	addr := "ipc://" + filepath.Join(t.TempDir(), "service.ipc")
	const fleet = 4
	clients := make([]mangos.Socket, fleet)
	for i := range clients {
		clients[i] = plainReq(t, addr)
	}
	var failures []string
	round := func(phase string) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		for i, c := range clients {
			wg.Add(1)
			go func(i int, c mangos.Socket) {
				defer wg.Done()
				body := fmt.Sprintf("%s/%d", phase, i)
				_, sealed := c.(*Socket)
				want := map[bool]string{true: "sealed:", false: "plain:"}[sealed] + body
				if err := c.Send([]byte(body)); err != nil {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("%s: send %v", body, err))
					mu.Unlock()
					return
				}
				got, err := c.Recv()
				if err != nil || string(got) != want {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("%s: got %q %v, want %q", body, got, err, want))
					mu.Unlock()
				}
			}(i, c)
		}
		wg.Wait()
	}

	// Step 0: the service is plain (a secsock socket with mechanism none
	// is exactly mangos).
	old, _ := NewRepSocket()
	serveInKind(t, 0, old)
	if err := old.Listen(addr); err != nil {
		t.Fatal(err)
	}
	round("plain")

	// Step 1: restart it permissive, with requests in flight.
	slow, _ := NewRepSocket()
	old.Close()
	serveInKind(t, 300*time.Millisecond, slow) // holds the in-flight requests
	if err := slow.Listen(addr); err != nil {
		t.Fatal(err)
	}
	inFlight := make(chan struct{})
	go func() { round("restart"); close(inFlight) }()
	time.Sleep(100 * time.Millisecond)
	slow.Close() // they are lost here: mangos REQ resends them to the new server
	w := newRep(t, sk, OptionPermissive, true)
	serveInKind(t, 0, append(repContexts(t, w, 2), w)...)
	if err := w.Listen(addr); err != nil {
		t.Fatal(err)
	}
	<-inFlight

	// Step 2: move the clients one by one; each round answers both kinds.
	for i := range clients {
		clients[i].Close()
		cl := newReq(t, sk.Public(), mangos.OptionRetryTime, 100*time.Millisecond, mangos.OptionReconnectTime, 10*time.Millisecond)
		if err := cl.Dial(addr); err != nil {
			t.Fatal(err)
		}
		clients[i] = cl
		round(fmt.Sprintf("moved-%d", i))
	}

	// Step 3: the plain count has stopped growing: go strict, live.
	before := w.ServerStats().Plain
	round("all-sealed")
	if after := w.ServerStats().Plain; after != before || before == 0 {
		t.Fatalf("plain count %d then %d: want it counted, then still", before, after)
	}
	mustSet(t, w, OptionPermissive, false)
	round("strict")
	if len(failures) > 0 {
		t.Fatalf("%d failed requests during the rollout: %v", len(failures), failures)
	}

	// A straggler still on plain is dropped now, and counted.
	late := plainReq(t, addr)
	mustSet(t, late, mangos.OptionRecvDeadline, 300*time.Millisecond)
	late.Send([]byte("too late"))
	if b, err := late.Recv(); !errors.Is(err, mangos.ErrRecvTimeout) {
		t.Fatalf("strict server answered a plain request: %q %v", b, err)
	}
	if w.Stats().Rejected[ReasonNotSecsock] == 0 {
		t.Fatal("the plain request was not counted")
	}
}

// TestPermissiveNeverDowngrades: in permissive mode nothing that parses as
// a secsock message reaches the application as plain: tampered sealed
// requests (bit flips anywhere, truncations, another version), and plain
// bodies that begin like secsock, are dropped or refused as sealed
// traffic. Without the IsSecsock rule they would be delivered as plain.
func TestPermissiveNeverDowngrades(t *testing.T) {
	sk := mustKey(t)
	w := newRep(t, sk, OptionPermissive, true)
	var mu sync.Mutex
	var delivered []string
	go func() {
		for {
			b, err := w.Recv()
			if errors.Is(err, mangos.ErrClosed) {
				return
			}
			if err != nil {
				continue
			}
			mu.Lock()
			delivered = append(delivered, string(b))
			mu.Unlock()
			w.Send(b)
		}
	}()
	dial := listenOn(t, w, "inproc")
	captured := captureRequest(t, sk, "transfer 100")
	rc := newRawClient(t, dial)
	mustSet(t, rc.s, mangos.OptionRecvDeadline, 50*time.Millisecond)
	var bodies [][]byte
	for i := 0; i < len(captured)*8; i += 7 {
		b := append([]byte(nil), captured...)
		b[i/8] ^= 1 << (i % 8)
		bodies = append(bodies, b)
	}
	for n := 0; n < len(captured); n += 5 {
		bodies = append(bodies, captured[:n])
	}
	v9 := append([]byte{3}, captured[1:]...)
	bodies = append(bodies, v9, []byte{0x02, 'h', 'i'})
	for _, b := range bodies {
		rc.send(t, b)
		rc.recv()
	}
	mu.Lock()
	defer mu.Unlock()
	for _, d := range delivered {
		if d != "" && (len(d) < 2 || d[0] == 0x02 || (len(d) >= 70 && d[0] >= 1 && d[0] <= 7 && d[1] >= 1 && d[1] <= 6)) {
			t.Errorf("delivered as plain: %x", d)
		}
	}
	// Only the bit flips that leave byte 0 non-2 and byte 1 not a request
	// kind, and short truncations, may be plain: they are not secsock.
	if st := w.ServerStats(); st.Plain != uint64(len(delivered)) {
		t.Errorf("Plain %d, delivered %d", st.Plain, len(delivered))
	}
}

// TestPermissiveUnderClientPolicy: plain requests are unauthenticated, so
// a client policy drops them unless OptionAllowPlain; the request hook
// sees them as plain.
func TestPermissiveUnderClientPolicy(t *testing.T) {
	sk, alice := mustKey(t), mustKey(t)
	for _, allow := range []bool{false, true} {
		var sawPlain bool
		var mu sync.Mutex
		w := newRep(t, sk, OptionPermissive, true, OptionAuthorizedKeys, []PublicKey{alice.Public()}, OptionAllowPlain, allow,
			OptionRequestAuthorizer, func(p Peer, _ []byte) bool { mu.Lock(); sawPlain = sawPlain || p.Plain; mu.Unlock(); return true })
		serveInKind(t, 0, w)
		dial := listenOn(t, w, "inproc")
		pl := newRaw(t, req.NewSocket)
		mustSet(t, pl, mangos.OptionRecvDeadline, 300*time.Millisecond)
		dial(pl)
		pl.Send([]byte("hello"))
		b, err := pl.Recv()
		if allow && (err != nil || string(b) != "plain:hello") {
			t.Fatalf("allowed plain: %q %v", b, err)
		}
		if !allow && !errors.Is(err, mangos.ErrRecvTimeout) {
			t.Fatalf("plain under a policy answered: %q %v", b, err)
		}
		if !allow && w.Stats().Rejected[ReasonNotAuthorized] != 1 {
			t.Fatalf("not counted: %v", w.Stats().Rejected)
		}
		mu.Lock()
		if sawPlain != allow {
			t.Fatalf("allow %v: hook saw plain %v", allow, sawPlain)
		}
		mu.Unlock()
		// Sealed clients are served as before.
		cl := newReq(t, sk.Public(), OptionSecretKey, alice)
		dial(cl)
		if b, err := roundTrip(cl, "x"); err != nil || string(b) != "sealed:x" {
			t.Fatalf("sealed: %q %v", b, err)
		}
	}
}

// TestStrictMismatches: a plain client against a strict curve server gets
// no reply that looks like success (it is dropped and counted); a curve
// client against a plain server gets ErrNotSecsock, whether that server
// echoes the request or answers anything else.
func TestStrictMismatches(t *testing.T) {
	sk := mustKey(t)
	w := newRep(t, sk)
	serveEcho(t, 0, w)
	dial := listenOn(t, w, "inproc")
	pl := newRaw(t, req.NewSocket)
	mustSet(t, pl, mangos.OptionRecvDeadline, 300*time.Millisecond)
	dial(pl)
	pl.Send([]byte("hello"))
	if b, err := pl.Recv(); !errors.Is(err, mangos.ErrRecvTimeout) {
		t.Fatalf("plain client got %q %v from a strict server", b, err)
	}
	if w.Stats().Rejected[ReasonNotSecsock] != 1 {
		t.Fatalf("not counted: %v", w.Stats().Rejected)
	}
	for _, echo := range []bool{true, false} {
		plainRep, _ := NewRepSocket()
		defer plainRep.Close()
		go func() {
			for {
				b, err := plainRep.Recv()
				if err != nil {
					return
				}
				if !echo {
					b = []byte("ok")
				}
				plainRep.Send(b)
			}
		}()
		cl := newReq(t, sk.Public(), OptionAdvisoryGrace, time.Duration(0))
		listenOn(t, plainRep, "inproc")(cl)
		if _, err := roundTrip(cl, "x"); !errors.Is(err, ErrNotSecsock) {
			t.Fatalf("echo %v: curve client against a plain server: %v, want ErrNotSecsock", echo, err)
		}
	}
}

// TestBinaryPlainBodiesAreNotSecsock: real plain protocols of any length
// (protobuf, msgpack, JSON, text) are plain, never hinted (a plain client
// would read the 3-byte hint as its reply): a strict server drops them,
// a permissive one delivers them. Only bytes 0x01 to 0x07 can be versions.
func TestBinaryPlainBodiesAreNotSecsock(t *testing.T) {
	long := func(prefix ...byte) []byte { return append(prefix, make([]byte, 100)...) }
	bodies := map[string][]byte{
		"protobuf varint field 1": long(0x08, 0x01),
		"protobuf bytes field 1":  long(0x0a, 0x04),
		"msgpack map":             long(0x81, 0x01),
		"json":                    append([]byte(`{"op":1,`), make([]byte, 100)...),
		"text":                    long('G', 'E', 'T', ' '),
	}
	sk := mustKey(t)
	for _, permissive := range []bool{false, true} {
		w := newRep(t, sk, OptionPermissive, permissive)
		serveInKind(t, 0, w)
		dial := listenOn(t, w, "inproc")
		for name, b := range bodies {
			pl := newRaw(t, req.NewSocket)
			mustSet(t, pl, mangos.OptionRecvDeadline, 200*time.Millisecond)
			dial(pl)
			if err := pl.Send(b); err != nil {
				t.Fatal(err)
			}
			got, err := pl.Recv()
			switch {
			case permissive && (err != nil || string(got) != "plain:"+string(b)):
				t.Errorf("permissive, %s: %x %v, want it served plain", name, got, err)
			case !permissive && !errors.Is(err, mangos.ErrRecvTimeout):
				t.Errorf("strict, %s: answered %x %v, want it dropped", name, got, err)
			}
		}
	}
}
