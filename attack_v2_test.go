package secsock

// Attacker tests for the security claims of protocol v2 (project issue 9:
// "every security claim has a test that plays the attacker and would fail
// without the defence"). Real sockets on loopback only (inproc, ipc under
// t.TempDir(), tcp on 127.0.0.1 port 0); attack messages are built with
// internal/wire. Each test's comment says which defence it needs and what
// goes wrong without it.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.nanomsg.org/mangos/v3"
	"go.nanomsg.org/mangos/v3/protocol/xrep"
	"go.nanomsg.org/mangos/v3/protocol/xreq"
	_ "go.nanomsg.org/mangos/v3/transport/ipc"
	"golang.org/x/crypto/curve25519"

	"github.com/secsock/secsock/internal/wire"
)

// v2Server is a curve REP socket whose contexts echo "re:" + request and
// record what the application saw, with every hook event kept.
type v2Server struct {
	sock   *Socket
	addr   string
	mu     sync.Mutex
	events []Event
	seen   map[string]int
}

func startV2Server(t testing.TB, key SecretKey, addr string, ctxs int, opts ...any) *v2Server {
	t.Helper()
	v := &v2Server{seen: map[string]int{}}
	s, err := NewRepSocket()
	if err != nil {
		t.Fatal(err)
	}
	v.sock = s
	mustSet(t, s, OptionMechanism, MechanismCurve, OptionSecretKey, key, mangos.OptionSendDeadline, 5*time.Second,
		OptionEventHook, func(ev Event) {
			v.mu.Lock()
			v.events = append(v.events, ev)
			v.mu.Unlock()
		})
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
				v.mu.Lock()
				v.seen[string(b)]++
				v.mu.Unlock()
				c.Send(append([]byte("re:"), b...))
			}
		}()
	}
	v.addr = atkListen(t, s, addr)
	t.Cleanup(func() { s.Close(); wg.Wait() })
	return v
}

func (v *v2Server) delivered(body string) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.seen[body]
}

// eventsSince returns the events after the first n.
func (v *v2Server) eventsSince(n int) []Event {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]Event(nil), v.events[n:]...)
}

func (v *v2Server) eventCount() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.events)
}

// waitEvents waits (bounded) until the server has reported n events.
func (v *v2Server) waitEvents(t testing.TB, n int) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); v.eventCount() < n; time.Sleep(2 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("server reported %d events, want %d", v.eventCount(), n)
		}
	}
}

// injector is an attacker's raw xreq socket: it sends any body with a
// fresh SP request ID and collects the answers by ID.
type injector struct {
	sock    mangos.Socket
	next    atomic.Uint32
	mu      sync.Mutex
	answers map[uint32]chan []byte
}

func newInjector(t testing.TB, addr string) *injector {
	t.Helper()
	s := newRaw(t, xreq.NewSocket)
	mustSet(t, s, mangos.OptionSendDeadline, 5*time.Second)
	if err := s.Dial(addr); err != nil {
		t.Fatal(err)
	}
	in := &injector{sock: s, answers: map[uint32]chan []byte{}}
	go func() {
		for {
			m, err := s.RecvMsg()
			if err != nil {
				return
			}
			b := append(bytes.Clone(m.Header), m.Body...) // the request ID leads, in the header or the body
			m.Free()
			if len(b) < 4 {
				continue
			}
			id := binary.BigEndian.Uint32(b)
			in.mu.Lock()
			ch := in.answers[id]
			in.mu.Unlock()
			if ch != nil {
				select {
				case ch <- b[4:]:
				default:
				}
			}
		}
	}()
	return in
}

// send sends b and returns a channel for its answer.
func (in *injector) send(t testing.TB, b []byte) chan []byte {
	t.Helper()
	id := 0x80000000 | in.next.Add(1)
	ch := make(chan []byte, 1)
	in.mu.Lock()
	in.answers[id] = ch
	in.mu.Unlock()
	m := mangos.NewMessage(len(b))
	m.Header = binary.BigEndian.AppendUint32(m.Header, id)
	m.Body = append(m.Body, b...)
	if err := in.sock.SendMsg(m); err != nil {
		t.Fatal(err)
	}
	return ch
}

// wait returns the answer on ch, or nil after 5 s.
func wait(t testing.TB, ch chan []byte) []byte {
	t.Helper()
	select {
	case a := <-ch:
		return a
	case <-time.After(5 * time.Second):
		t.Error("no answer within 5 s")
		return nil
	}
}

// ask sends b and waits up to d for its answer (nil: none).
func (in *injector) ask(t testing.TB, b []byte, d time.Duration) []byte {
	t.Helper()
	select {
	case a := <-in.send(t, b):
		return a
	case <-time.After(d):
		return nil
	}
}

func ipcAddr(t testing.TB, name string) string {
	return "ipc://" + filepath.Join(t.TempDir(), name)
}

// lastCaptured returns the last request the ledger captured.
func (l *nonceLedger) lastCaptured(t testing.TB) []byte {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.captured) == 0 {
		t.Fatal("the tap captured nothing")
	}
	if l.nReq > ledgerKeep {
		return bytes.Clone(l.captured[l.nReq%ledgerKeep])
	}
	return bytes.Clone(l.captured[len(l.captured)-1])
}

// roundTrip sends body on c and returns the reply or the error.
func roundTrip1(c interface {
	Send([]byte) error
	Recv() ([]byte, error)
}, body string) ([]byte, error) {
	if err := c.Send([]byte(body)); err != nil {
		return nil, err
	}
	return c.Recv()
}

// authenticatedRefusal reports whether err is a verified refusal (not
// advisory: only a holder of s or c' could have made it).
func authenticatedRefusal(err error) bool {
	return errors.Is(err, ErrNotAuthorized) || errors.Is(err, ErrStale) || errors.Is(err, ErrReplayed) ||
		errors.Is(err, ErrUnsupportedFeature) || errors.Is(err, ErrInDoubt) || errors.Is(err, ErrRefused)
}

// TestAttackRevocationStopsCachedSession (2g): removing a client's key
// from OptionAuthorizedKeys, or turning an Authorizer to "no", stops its
// already-cached session at the next request with an authenticated
// ErrNotAuthorized (SPEC.md §6 step 6e, §11). Without the defence (the
// policy checked only when a C' is new, as in v1) the cached session goes
// on being served and this test fails at the first request after the
// revocation.
func TestAttackRevocationStopsCachedSession(t *testing.T) {
	server, alice, bob := atkSeeded("revoke server"), atkSeeded("revoke alice"), atkSeeded("revoke bob")
	var deny atomic.Bool
	srv := startV2Server(t, server, ipcAddr(t, "rep.sock"), 2, OptionAuthorizedKeys, []PublicKey{alice.Public(), bob.Public()})
	a := atkClient(t, srv.addr, OptionServerKey, server.Public(), OptionSecretKey, alice, mangos.OptionRecvDeadline, 5*time.Second)
	b := atkClient(t, srv.addr, OptionServerKey, server.Public(), OptionSecretKey, bob, mangos.OptionRecvDeadline, 5*time.Second)
	for i := 0; i < 5; i++ {
		for _, c := range []*Socket{a, b} {
			if got, err := roundTrip1(c, fmt.Sprint("before ", i)); err != nil || !bytes.HasPrefix(got, []byte("re:")) {
				t.Fatalf("before revocation: %q %v", got, err)
			}
		}
	}
	if peers, _, _ := serverStateOf(srv.sock).Size(); peers != 2 {
		t.Fatalf("%d cached peers, want alice's and bob's", peers)
	}
	mustSet(t, srv.sock, OptionAuthorizedKeys, []PublicKey{bob.Public()})
	for i := 0; i < 3; i++ {
		if got, err := roundTrip1(a, "after revocation"); !errors.Is(err, ErrNotAuthorized) {
			t.Fatalf("revoked alice, request %d: %q %v, want ErrNotAuthorized", i, got, err)
		}
	}
	if srv.delivered("after revocation") != 0 {
		t.Fatal("a revoked client's request reached the application")
	}
	if _, err := roundTrip1(b, "bob still served"); err != nil {
		t.Fatalf("bob: %v", err)
	}
	// An Authorizer changing its answer applies at once too.
	mustSet(t, srv.sock, OptionAuthorizedKeys, []PublicKey(nil), OptionAuthorizer, func(k PublicKey) bool {
		return !(deny.Load() && k == bob.Public())
	})
	if _, err := roundTrip1(b, "bob by callback"); err != nil {
		t.Fatalf("bob, callback yes: %v", err)
	}
	deny.Store(true)
	if _, err := roundTrip1(b, "bob denied"); !errors.Is(err, ErrNotAuthorized) {
		t.Fatalf("bob, callback no: %v, want ErrNotAuthorized", err)
	}
	if got, err := roundTrip1(a, "alice back"); err != nil || string(got) != "re:alice back" {
		t.Fatalf("alice re-admitted by the callback: %q %v", got, err)
	}
	ev := srv.eventsSince(0)
	nNA := 0
	for _, e := range ev {
		if e.Reason == ReasonNotAuthorized {
			nNA++
			if e.Peer != alice.Public() && e.Peer != bob.Public() {
				t.Errorf("refusal event names %v", e.Peer)
			}
		}
	}
	if nNA != 4 {
		t.Errorf("%d not-authorized events, want 4", nNA)
	}
}

// TestAttackResendBound (2f): an attacker replays one captured request
// (taken off a tap in front of the server) 10 times. The server resends
// its kept reply at most 4 times (the same bytes the client got), then
// answers the same 19-byte REPLAYED refusal every time, and the
// application sees the request once (SPEC.md §6.3, §11 amplification).
// Without the bound (v1 resent cached replies without limit) the attacker
// gets 10 replies and the test fails.
func TestAttackResendBound(t *testing.T) {
	server := atkSeeded("resend server")
	srv := startV2Server(t, server, inprocAddr(t), 2)
	ledger := newNonceLedger()
	tap := startNonceTap(t, ledger, "tcp://127.0.0.1:0", srv.addr)
	for _, vouched := range []bool{false, true} {
		t.Run(fmt.Sprint("vouched=", vouched), func(t *testing.T) {
			opts := []any{OptionServerKey, server.Public()}
			if vouched {
				opts = append(opts, OptionSecretKey, atkSeeded("resend client"))
			}
			c := atkClient(t, tap, opts...)
			body := fmt.Sprint("pay 100 once, vouched ", vouched)
			got, err := roundTrip1(c, body)
			if err != nil || string(got) != "re:"+body {
				t.Fatalf("%q %v", got, err)
			}
			captured := ledger.lastCaptured(t)
			ledger.mu.Lock()
			var reply []byte
			for _, r := range ledger.capReplies {
				if r[1] == wire.KindReply {
					reply = r // the last reply seen: the one to this request
				}
			}
			ledger.mu.Unlock()
			in := newInjector(t, srv.addr)
			var answers [][]byte
			for i := 0; i < 10; i++ {
				a := in.ask(t, captured, 5*time.Second)
				if a == nil {
					t.Fatalf("replay %d: no answer", i)
				}
				answers = append(answers, a)
			}
			resends, refusals := 0, 0
			for i, a := range answers {
				switch {
				case a[1] == wire.KindReply:
					if refusals > 0 {
						t.Errorf("replay %d: a reply after a refusal", i)
					}
					if !bytes.Equal(a, reply) {
						t.Errorf("replay %d: resent reply differs from the one the client got", i)
					}
					resends++
				case len(a) == wire.RefusalSize && a[1] == wire.KindRefusal && a[2] == wire.RefuseReplayed:
					if !bytes.Equal(a, answers[len(answers)-1]) {
						t.Errorf("replay %d: refusal bytes differ", i)
					}
					refusals++
				default:
					t.Errorf("replay %d: answer %x", i, a)
				}
			}
			if resends > 4 || resends+refusals != 10 {
				t.Errorf("%d resends and %d REPLAYED refusals, want at most 4 resends then refusals", resends, refusals)
			}
			if n := srv.delivered(body); n != 1 {
				t.Errorf("application saw the request %d times", n)
			}
			t.Logf("10 replays: %d resends of the %d-byte reply, %d identical 19-byte REPLAYED refusals", resends, len(reply), refusals)
		})
	}
}

// TestAttackReplayEquivalentEncodings (2a): X25519 treats 16 byte strings
// as one key (SPEC.md §4.1). An attacker captures a genuine anonymous and
// a genuine vouched BOX request off a tap and re-sends each with all 16
// encodings of its C'. The application sees each request exactly once:
// the 8 encodings with bit 255 set are malformed, the 7 other canonical
// ones are a new C' whose prk0 binds its exact bytes, so nothing opens.
// In v1 (keys from the X25519 output only, replay state keyed by the raw
// bytes) each encoding opened as a new peer: 16 deliveries. The test
// also checks that precondition: all 16 give the server the same dh1.
//
// Then the owner of a long-term key c that a deny-list Authorizer refuses
// vouches, correctly, for each of the 15 other encodings of C. None is
// delivered, the Authorizer never sees them, and no event names the
// client: they are dropped as weak keys (§4.1 valid-key rule) before the
// policy. In v1 another encoding of C was another identity and bypassed
// a deny list.
func TestAttackReplayEquivalentEncodings(t *testing.T) {
	server, bob, alice := atkSeeded("equiv server"), atkSeeded("equiv bob"), atkSeeded("equiv alice")
	var authMu sync.Mutex
	var asked []PublicKey
	srv := startV2Server(t, server, inprocAddr(t), 2, OptionAllowAnonymous, true, OptionAuthorizer, func(k PublicKey) bool {
		authMu.Lock()
		asked = append(asked, k)
		authMu.Unlock()
		return k != alice.Public() // a deny list
	})
	ledger := newNonceLedger()
	tap := startNonceTap(t, ledger, ipcAddr(t, "tap.sock"), srv.addr)
	in := newInjector(t, srv.addr)
	srvSecret := server.bytes()

	for _, tc := range []struct {
		name string
		opts []any
		peer PublicKey
	}{{"anonymous", nil, PublicKey{}}, {"vouched", []any{OptionSecretKey, bob}, bob.Public()}} {
		t.Run(tc.name, func(t *testing.T) {
			c := atkClient(t, tap, append([]any{OptionServerKey, server.Public()}, tc.opts...)...)
			body := "transfer 100 to mallory, " + tc.name
			if got, err := roundTrip1(c, body); err != nil || string(got) != "re:"+body {
				t.Fatalf("%q %v", got, err)
			}
			captured := ledger.lastCaptured(t)
			if captured[2] != wire.SuiteBox {
				t.Fatal("not a BOX request")
			}
			eph := [32]byte(captured[4:36])
			eqs := atkEquivalents(t, eph)
			want, _ := curve25519.X25519(srvSecret[:], eph[:])
			n0 := srv.eventCount()
			var canonical, hints int
			for i, e := range eqs {
				if dh, err := curve25519.X25519(srvSecret[:], e[:]); err != nil || !bytes.Equal(dh, want) {
					t.Fatalf("encoding %d does not agree with C' in X25519: the attack's premise", i)
				}
				b := bytes.Clone(captured)
				copy(b[4:36], e[:])
				ch := in.send(t, b)
				if i == 0 {
					wait(t, ch) // the original: a retry, answered from the reply cache
					continue
				}
				if atkCanonical(e[:]) {
					canonical++
					if a := wait(t, ch); len(a) != 3 || a[1] != wire.KindHint || a[2] != wire.HintCannotOpen {
						t.Errorf("encoding %d: answer %x, want hint CANNOT_OPEN", i, a)
					}
					hints++
				}
			}
			if canonical != 7 {
				t.Fatalf("%d other canonical encodings, want 7", canonical)
			}
			srv.waitEvents(t, n0+16)
			count := map[Reason]int{}
			for _, ev := range srv.eventsSince(n0) {
				count[ev.Reason]++
				if ev.Reason != ReasonRetry && !ev.Peer.IsZero() {
					t.Errorf("event %v names %v", ev.Reason, ev.Peer)
				}
			}
			if count[ReasonRetry] != 1 || count[ReasonMalformed] != 8 || count[ReasonForged] != 7 || len(count) != 3 {
				t.Errorf("events %v, want 1 retry, 8 malformed, 7 forged", count)
			}
			if n := srv.delivered(body); n != 1 {
				t.Errorf("the application saw the request %d times, want 1", n)
			}
		})
	}

	t.Run("owner re-encodes C", func(t *testing.T) {
		r := atkRand("equiv alice eph")
		now := uint64(time.Now().UnixMilli())
		n0 := srv.eventCount()
		authMu.Lock()
		asked = nil
		authMu.Unlock()
		var answers []chan []byte
		for i, ce := range atkEquivalents(t, [32]byte(alice.Public())) {
			s := newAtkSession(t, r, server.Public())
			id := atkIdentity(t, alice, &ce, s.eph, s.server, now+3600000)
			body := fmt.Sprint("alice as encoding ", i)
			answers = append(answers, in.send(t, s.seal(wire.KindRequestVouched, wire.SuiteBox, 1, now, id, []byte(body))))
			if i == 0 {
				// Her own key: the deny list refuses her, authentically.
				a := wait(t, answers[0])
				if reason, err := wire.CheckRefusal(&s.prk0, s.seal(wire.KindRequestVouched, wire.SuiteBox, 1, now, id, nil)[:wire.HeaderSize], a); err != nil || reason != wire.RefuseNotAuthorized {
					t.Fatalf("alice's own key: %x (%v), want a NOT_AUTHORIZED refusal", a, err)
				}
			}
		}
		srv.waitEvents(t, n0+16)
		time.Sleep(20 * time.Millisecond)
		for i, ch := range answers[1:] {
			select {
			case a := <-ch:
				t.Errorf("encoding %d of C: answered %x", i+1, a)
			default:
			}
		}
		for i, ev := range srv.eventsSince(n0) {
			if i == 0 {
				if ev.Reason != ReasonNotAuthorized || ev.Peer != alice.Public() {
					t.Errorf("alice's own request: event %+v", ev)
				}
				continue
			}
			if ev.Reason != ReasonWeakKey || !ev.Peer.IsZero() {
				t.Errorf("encoding %d of C: event %v naming %v, want weak-key naming nobody", i, ev.Reason, ev.Peer)
			}
		}
		for i := 0; i < 16; i++ {
			if n := srv.delivered(fmt.Sprint("alice as encoding ", i)); n != 0 {
				t.Errorf("encoding %d of alice's key was delivered %d times", i, n)
			}
		}
		authMu.Lock()
		defer authMu.Unlock()
		if len(asked) != 1 || asked[0] != alice.Public() {
			t.Errorf("the Authorizer was asked about %v, want alice's key once", asked)
		}
	})
}

// mitm is an on-path attacker: a raw device that rewrites the first copy
// of each request with mutate (retries pass unchanged) and records the
// server's answer to each rewritten copy.
type mitm struct {
	mu       sync.Mutex
	mutate   func([]byte) []byte
	seen     map[uint32]bool
	modified map[uint32]bool
	answers  map[uint32][]byte
}

func startMitm(t testing.TB, listen, target string) (*mitm, string) {
	t.Helper()
	x := &mitm{seen: map[uint32]bool{}, modified: map[uint32]bool{}, answers: map[uint32][]byte{}}
	front, back := newRaw(t, xrep.NewSocket), newRaw(t, xreq.NewSocket)
	addr := atkListen(t, front, listen)
	if err := back.Dial(target); err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			m, err := front.RecvMsg()
			if err != nil {
				return
			}
			id := binary.BigEndian.Uint32(m.Header[len(m.Header)-4:])
			x.mu.Lock()
			if !x.seen[id] && x.mutate != nil {
				m.Body = x.mutate(bytes.Clone(m.Body))
				x.modified[id] = true
			}
			x.seen[id] = true
			x.mu.Unlock()
			if back.SendMsg(m) != nil {
				m.Free()
			}
		}
	}()
	go func() {
		for {
			m, err := back.RecvMsg()
			if err != nil {
				return
			}
			all := append(bytes.Clone(m.Header), m.Body...) // pipe ID, request ID, answer
			if len(all) >= 8 {
				id := binary.BigEndian.Uint32(all[4:8])
				x.mu.Lock()
				if x.modified[id] && x.answers[id] == nil {
					x.answers[id] = bytes.Clone(all[8:])
				}
				x.mu.Unlock()
			}
			if front.SendMsg(m) != nil {
				m.Free()
			}
		}
	}()
	return x, addr
}

func (x *mitm) set(f func([]byte) []byte) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.mutate = f
	x.answers = map[uint32][]byte{}
}

// answer returns the server's answer to the rewritten copy, if any.
func (x *mitm) answer() []byte {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, a := range x.answers {
		return a
	}
	return nil
}

// TestAttackForgedRefusal (2b): an on-path attacker rewrites a vouched
// request of an authorized client on its way to the server: each other
// encoding of C', another suite (known and unknown), reserved flags, an
// extension field, the kind, T, N, an extension length without a flag.
// The client never gets an authenticated refusal (ErrNotAuthorized,
// ErrUnsupportedFeature, …) for its real request: it gets its reply (its
// retry passes unchanged) or an advisory error. For unknown suites and
// flags the server does answer with an authentic REFUSAL, but it is bound
// to the rewritten header H (SPEC.md §5.3), so it does not verify for the
// client. Without the binding (a refusal tag over the reason only, or
// v1's refusals keyed by dh alone with a vouch that did not bind C') the
// client would accept ErrUnsupportedFeature or ErrNotAuthorized and this
// test fails.
func TestAttackForgedRefusal(t *testing.T) {
	server, alice := atkSeeded("mitm server"), atkSeeded("mitm alice")
	srv := startV2Server(t, server, inprocAddr(t), 2, OptionAuthorizedKeys, []PublicKey{alice.Public()})
	x, addr := startMitm(t, "tcp://127.0.0.1:0", srv.addr)
	c := atkClient(t, addr, OptionServerKey, server.Public(), OptionSecretKey, alice,
		mangos.OptionRetryTime, 300*time.Millisecond, mangos.OptionRecvDeadline, 5*time.Second)
	if _, err := roundTrip1(c, "hello"); err != nil { // alice's C' is now a cached peer
		t.Fatal(err)
	}
	type mutation struct {
		name    string
		f       func([]byte) []byte
		refusal bool // the server answers the rewritten copy with a REFUSAL
	}
	var ms []mutation
	for k := 1; k < 16; k++ {
		ms = append(ms, mutation{fmt.Sprint("C' encoding ", k), func(b []byte) []byte {
			e := atkEquivalents(t, [32]byte(b[4:36]))[k]
			copy(b[4:36], e[:])
			return b
		}, false})
	}
	set := func(i int, v byte) func([]byte) []byte { return func(b []byte) []byte { b[i] = v; return b } }
	ms = append(ms,
		mutation{"suite AESGCM", set(2, wire.SuiteAESGCM), false},
		mutation{"suite 0x00", set(2, 0), true},
		mutation{"suite 0x09", set(2, 9), true},
		// Flags without their elements are malformed framing (dropped, SPEC
		// §6 step 2); an element of a type no one has is refused.
		mutation{"flags 0x01", set(3, 1), false},
		mutation{"flags 0x80", set(3, 0x80), false},
		mutation{"flags and extension", func(b []byte) []byte {
			b[3] = 1 << 6
			binary.BigEndian.PutUint16(b[52:], 4)
			return append(b[:54:54], append([]byte{6, 0, 1, 7}, b[54:]...)...)
		}, true},
		mutation{"kind anonymous", set(1, wire.KindRequest), false},
		mutation{"T+1", func(b []byte) []byte { b[51]++; return b }, false},
		mutation{"N+1", func(b []byte) []byte { b[43]++; return b }, false},
		mutation{"extension length without flag", func(b []byte) []byte { b[53] = 5; return b }, false},
	)
	outcomes := map[string]int{}
	for i, m := range ms {
		x.set(m.f)
		body := fmt.Sprint("request ", i)
		got, err := roundTrip1(c, body)
		switch {
		case err == nil:
			if string(got) != "re:"+body {
				t.Errorf("%s: wrong reply %q", m.name, got)
			}
			outcomes["reply"]++
		case authenticatedRefusal(err):
			t.Errorf("%s: the client accepted an authenticated refusal for its real request: %v", m.name, err)
		case errors.Is(err, ErrAuthFailed):
			outcomes["ErrAuthFailed"]++
		case errors.Is(err, ErrServerKeyMismatch):
			outcomes["ErrServerKeyMismatch"]++
		case isAdvisory(err):
			outcomes[err.Error()]++
		default:
			t.Errorf("%s: %v", m.name, err)
		}
		a := x.answer()
		if m.refusal && (len(a) != wire.RefusalSize || a[1] != wire.KindRefusal || a[2] != wire.RefuseUnsupportedFeature) {
			t.Errorf("%s: server answered %x, want its UNSUPPORTED_FEATURE refusal of the rewritten header", m.name, a)
		}
		if m.refusal && err == nil {
			t.Errorf("%s: got a reply although the server refused the rewritten copy", m.name)
		}
	}
	x.set(nil)
	for _, ev := range srv.eventsSince(0) {
		if ev.Reason == ReasonNotAuthorized {
			t.Errorf("the server refused alice as not authorized: %+v", ev)
		}
	}
	t.Logf("%d rewritten requests: client outcomes %v", len(ms), outcomes)
}

// junkRequest is a well-formed anonymous BOX request under a fresh random
// canonical C', whose body box opens for nobody: it passes every check
// before the key agreement, so it is charged to the budget.
func junkRequest(r interface{ Read([]byte) (int, error) }) []byte {
	b := make([]byte, wire.HeaderSize+wire.TagSize+32)
	r.Read(b)
	b[0], b[1], b[2], b[3] = wire.Version, wire.KindRequest, wire.SuiteBox, 0
	b[35] &= 0x3f
	binary.BigEndian.PutUint64(b[36:], 1)
	binary.BigEndian.PutUint64(b[44:], uint64(time.Now().UnixMilli()))
	b[52], b[53] = 0, 0
	return b
}

// TestAttackBudget (2e): a flood of junk with fresh random C' at several
// times the key-agreement budget. The server answers what is past the
// budget with BUSY hints (counted, and equal to its ReasonBusy count),
// does at most burst + rate·elapsed X25519 (wire.ScalarMults), and keeps
// serving established sessions without a single error or X25519. Without
// the budget (v1, or OptionKeyAgreementBudget 0) no BUSY is sent and the
// server does one X25519 per junk message: this test fails on both
// counts.
func TestAttackBudget(t *testing.T) {
	const budget, junk = 400, 3000
	server := atkSeeded("budget server")
	srv := startV2Server(t, server, inprocAddr(t), 4, OptionKeyAgreementBudget, budget)
	var clients []*Socket
	for i := 0; i < 5; i++ {
		c := atkClient(t, srv.addr, OptionServerKey, server.Public(), OptionSecretKey, atkSeeded(fmt.Sprint("budget client ", i)))
		if _, err := roundTrip1(c, "hello"); err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	in := newInjector(t, srv.addr)
	stop := make(chan struct{})
	var legitOK, legitErr atomic.Int64
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				body := fmt.Sprint("legit ", i, " ", k)
				if got, err := roundTrip1(c, body); err != nil || string(got) != "re:"+body {
					legitErr.Add(1)
					t.Errorf("established client %d: %q %v", i, got, err)
					return
				}
				legitOK.Add(1)
			}
		}()
	}
	r := atkRand("budget junk")
	before := wire.ScalarMults.Load()
	start := time.Now()
	chans := make([]chan []byte, 0, junk)
	for i := 0; i < junk; i++ {
		chans = append(chans, in.send(t, junkRequest(r)))
	}
	count := map[string]int{}
	deadline := time.After(30 * time.Second)
	for _, ch := range chans {
		select {
		case a := <-ch:
			switch {
			case bytes.Equal(a, []byte{wire.Version, wire.KindHint, wire.HintBusy}):
				count["busy"]++
			case bytes.Equal(a, []byte{wire.Version, wire.KindHint, wire.HintCannotOpen}):
				count["cannot-open"]++
			default:
				count[fmt.Sprintf("%x", a)]++
			}
		case <-deadline:
			t.Fatalf("answers so far %v", count)
		}
	}
	elapsed := time.Since(start)
	mults := wire.ScalarMults.Load() - before
	st := srv.sock.Stats()
	newcomer := atkClient(t, srv.addr, OptionServerKey, server.Public())
	_, nerr := roundTrip1(newcomer, "new during flood")
	close(stop)
	wg.Wait()

	if count["busy"] == 0 || uint64(count["busy"]) != st.Rejected[ReasonBusy] {
		t.Errorf("%d BUSY hints received, server counted %d", count["busy"], st.Rejected[ReasonBusy])
	}
	if count["busy"]+count["cannot-open"] != junk {
		t.Errorf("answers %v, want BUSY or CANNOT_OPEN for each of %d", count, junk)
	}
	if limit := uint64(budget + budget*elapsed.Seconds() + 10); mults > limit {
		t.Errorf("%d X25519 in %v, budget allows %d", mults, elapsed, limit)
	}
	if legitOK.Load() == 0 || legitErr.Load() != 0 {
		t.Errorf("established clients: %d round trips, %d errors", legitOK.Load(), legitErr.Load())
	}
	t.Logf("%d junk messages in %v: %d BUSY, %d CANNOT_OPEN, %d X25519 (budget %d/s); established clients %d round trips, 0 errors; a new client during the flood: %v",
		junk, elapsed.Round(time.Millisecond), count["busy"], count["cannot-open"], mults, budget, legitOK.Load(), nerr)
}

// TestAttackStaleRefusalDoS (2c): a served client floods the server with
// fresh short-term keys (at least 2,000 per second for several seconds),
// each request dated the allowed clock skew ahead (T = now + Z), through a
// small peer cache (512) so that they are evicted and leave tombstones,
// while 200 legitimate clients keep working: 150 established before the
// flood and 50 that start during it. Not one legitimate request may be
// refused (SPEC.md §6.2, §11: tombstones per key, a segmented cache, no
// global floor with a budget). In v1 each eviction raised the low-water
// mark of a hash bucket to the evicted key's T, refusing every client in
// that bucket as stale for Z; with tombstones that spill into the global
// floor (capacity forced small) every legitimate request is refused
// IN_DOUBT. With the default budget (2048/s) the flood is capped and new
// clients may be told BUSY (advisory, counted), never refused.
func TestAttackStaleRefusalDoS(t *testing.T) {
	for _, tc := range []struct {
		name   string
		budget int
		rate   int
	}{{"unlimited budget", 0, 2200}, {"default budget", 2048, 2100}} {
		t.Run(tc.name, func(t *testing.T) { staleDoS(t, tc.budget, tc.rate) })
	}
}

func staleDoS(t *testing.T, budget, rate int) {
	const oldClients, newClients, cache, skew = 150, 50, 512, 10 * time.Second
	floodTime := 3 * time.Second
	if testing.Short() {
		floodTime = time.Second
	}
	server := atkSeeded("dos server")
	srv := startV2Server(t, server, inprocAddr(t), 16, OptionPeerCacheSize, cache, OptionKeyAgreementBudget, budget,
		OptionMaxClockSkew, skew)

	// The attacker's short-term keys, agreed in advance (its own cost).
	nKeys := rate*int(floodTime/time.Second) + rate/2
	sessions := make([]*atkSession, nKeys)
	var pre sync.WaitGroup
	for g := 0; g < 2; g++ {
		pre.Add(1)
		go func() {
			defer pre.Done()
			r := atkRand(fmt.Sprint("dos attacker ", g))
			for i := g; i < nKeys; i += 2 {
				sessions[i] = newAtkSession(t, r, server.Public())
			}
		}()
	}

	type result struct{ ok, refused, busy, other atomic.Int64 }
	var old, young result
	var errMu sync.Mutex
	var errs []string
	note := func(res *result, err error) {
		switch {
		case err == nil:
			res.ok.Add(1)
			return
		case authenticatedRefusal(err):
			res.refused.Add(1)
		case errors.Is(err, ErrBusy):
			res.busy.Add(1)
			return
		default:
			res.other.Add(1)
		}
		errMu.Lock()
		if len(errs) < 10 {
			errs = append(errs, err.Error())
		}
		errMu.Unlock()
	}
	client := func(i int) *Socket {
		return atkClient(t, srv.addr, OptionServerKey, server.Public(), OptionSecretKey, atkSeeded(fmt.Sprint("dos client ", i)),
			mangos.OptionRetryTime, time.Duration(0))
	}
	olds := make([]*Socket, oldClients)
	for i := range olds {
		olds[i] = client(i)
		for k := 0; k < 2; k++ { // two accepted requests: the protected segment
			if _, err := roundTrip1(olds[i], "warm up"); err != nil {
				t.Fatal(err)
			}
		}
	}
	pre.Wait()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	run := func(c *Socket, res *result, i int) {
		defer wg.Done()
		for k := 0; ; k++ {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			body := fmt.Sprint("legit ", i, " ", k)
			got, err := roundTrip1(c, body)
			if err == nil && string(got) != "re:"+body {
				err = fmt.Errorf("wrong reply %q", got)
			}
			note(res, err)
		}
	}
	for i, c := range olds {
		wg.Add(1)
		go run(c, &old, i)
	}

	in := newInjector(t, srv.addr)
	go func() { // drain: the flood's answers are not waited for
		for range time.Tick(100 * time.Millisecond) {
			in.mu.Lock()
			clear(in.answers)
			in.mu.Unlock()
			select {
			case <-stop:
				return
			default:
			}
		}
	}()
	start := time.Now()
	sent, started := 0, false
	for time.Since(start) < floodTime && sent < nKeys {
		if !started && sent >= rate/2 { // the new clients start once the flood is on
			started = true
			for i := 0; i < newClients; i++ {
				wg.Add(1)
				go run(client(oldClients+i), &young, oldClients+i)
			}
		}
		due := int(time.Since(start).Seconds()*float64(rate)) + 1
		for ; sent < due && sent < nKeys; sent++ {
			s := sessions[sent]
			ts := uint64(time.Now().Add(skew).UnixMilli()) // as far ahead as the server allows
			in.send(t, s.seal(wire.KindRequest, wire.SuiteBox, 1, ts, nil, []byte("flood")))
		}
		time.Sleep(2 * time.Millisecond)
	}
	elapsed := time.Since(start)
	time.Sleep(500 * time.Millisecond) // legitimate clients keep going a little after the flood
	close(stop)
	wg.Wait()

	_, tombs, _ := serverStateOf(srv.sock).Size()
	st := srv.sock.Stats()
	achieved := float64(sent) / elapsed.Seconds()
	for _, e := range errs {
		t.Errorf("legitimate client: %s", e)
	}
	if n := old.refused.Load() + young.refused.Load(); n != 0 {
		t.Errorf("%d legitimate requests refused", n)
	}
	if old.busy.Load() != 0 || old.other.Load() != 0 || old.ok.Load() == 0 {
		t.Errorf("established clients: %d ok, %d busy, %d other errors", old.ok.Load(), old.busy.Load(), old.other.Load())
	}
	if young.ok.Load() == 0 && budget == 0 {
		t.Error("no new client was served")
	}
	for _, r := range []Reason{ReasonStale, ReasonInDoubt, ReasonReplayed, ReasonNotAuthorized} {
		if st.Rejected[r] != 0 {
			t.Errorf("server refused %d requests as %v", st.Rejected[r], r)
		}
	}
	if tombs == 0 {
		t.Error("the flood evicted no peer: the test did not test eviction")
	}
	if !atkRace && achieved < 2000 {
		t.Errorf("flood reached only %.0f keys per second", achieved)
	}
	t.Logf("flood: %d fresh C' dated +%v in %v (%.0f/s), %d tombstones after; served %d, busy %d",
		sent, skew, elapsed.Round(time.Millisecond), achieved, tombs, st.Opened, st.Rejected[ReasonBusy])
	t.Logf("legitimate: established %d ok, %d refused; new %d ok, %d refused, %d BUSY (advisory)",
		old.ok.Load(), old.refused.Load(), young.ok.Load(), young.refused.Load(), young.busy.Load())
}
