package secsock

// Tests of issue 10: the REP side answers protocol traffic itself,
// whatever the application is doing; the REQ side treats hints and
// failed opens as advisory. Loopback only (inproc, tcp on 127.0.0.1),
// bounded in count and time, with margins for a loaded 2-core machine
// under -race.

import (
	"github.com/secsock/secsock/internal/wire"

	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.nanomsg.org/mangos/v3"
	"go.nanomsg.org/mangos/v3/protocol/req"
	"go.nanomsg.org/mangos/v3/protocol/xrep"
	"go.nanomsg.org/mangos/v3/protocol/xreq"
)

// busyWorkers opens n contexts on rep whose handlers each take one
// request, report it on started and sleep until release is closed (at
// most hold), then reply "re:" and the request.
func busyWorkers(t *testing.T, rep *Socket, n int, hold time.Duration) (started chan []byte, release chan struct{}) {
	t.Helper()
	started, release = make(chan []byte, n), make(chan struct{})
	for i := 0; i < n; i++ {
		c, err := rep.OpenContext()
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			b, err := c.Recv()
			if err != nil {
				return
			}
			started <- b
			select {
			case <-release:
			case <-time.After(hold):
			}
			c.Send(append([]byte("re:"), b...))
		}()
	}
	return started, release
}

// TestPingAndRefusalWhileWorkersBusy: with every REP context inside a slow
// handler, Authenticate from an authorized client succeeds and a request
// from an unauthorized client is refused, both well before the handlers
// wake up.
func TestPingAndRefusalWhileWorkersBusy(t *testing.T) {
	sk, alice, mallory := mustKey(t), mustKey(t), mustKey(t)
	addr := inprocAddr(t)
	rep := newRep(t, sk, OptionAuthorizedKeys, []PublicKey{alice.Public()})
	if err := rep.Listen(addr); err != nil {
		t.Fatal(err)
	}
	const workers = 4
	started, release := busyWorkers(t, rep, workers, 8*time.Second)
	defer close(release)

	busy := newReq(t, sk.Public(), OptionSecretKey, alice)
	if err := busy.Dial(addr); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < workers; i++ {
		c, err := busy.OpenContext()
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Send([]byte(fmt.Sprint("busy ", i))); err != nil {
			t.Fatal(err)
		}
		go c.Recv()
	}
	for i := 0; i < workers; i++ {
		select {
		case <-started:
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d of %d workers got a request", i, workers)
		}
	}

	a := newReq(t, sk.Public(), OptionSecretKey, alice, mangos.OptionRecvDeadline, 3*time.Second)
	m := newReq(t, sk.Public(), OptionSecretKey, mallory, mangos.OptionRecvDeadline, 3*time.Second)
	for _, s := range []*Socket{a, m} {
		if err := s.Dial(addr); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Now()
	if err := a.Authenticate(); err != nil {
		t.Errorf("Authenticate while workers are busy: %v after %v", err, time.Since(t0))
	}
	t1 := time.Now()
	if err := m.Send([]byte("let me in")); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Recv(); !errors.Is(err, ErrNotAuthorized) {
		t.Errorf("unauthorized request while workers are busy: %v after %v, want ErrNotAuthorized", err, time.Since(t1))
	}
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("answers took %v, want well under the workers' sleep", d)
	}
}

// TestRecvDeadlineDuringJunkFlood: junk that the REP side drops does not
// restart the application's receive deadline.
func TestRecvDeadlineDuringJunkFlood(t *testing.T) {
	sk := mustKey(t)
	addr := inprocAddr(t)
	rep := newRep(t, sk, mangos.OptionRecvDeadline, 200*time.Millisecond)
	if err := rep.Listen(addr); err != nil {
		t.Fatal(err)
	}
	junk := newRaw(t, req.NewSocket)
	mustSet(t, junk, mangos.OptionRetryTime, time.Duration(0))
	if err := junk.Dial(addr); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // 50 junk messages per second for at most 4 s
		defer wg.Done()
		for i := 0; i < 200; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			junk.Send([]byte("junk"))
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	time.Sleep(100 * time.Millisecond)
	t0 := time.Now()
	_, err := rep.Recv()
	d := time.Since(t0)
	if !errors.Is(err, mangos.ErrRecvTimeout) || d > time.Second {
		t.Fatalf("Recv with a 200 ms deadline during a junk flood: %v after %v, want ErrRecvTimeout within 1 s", err, d)
	}
	if rep.Stats().TotalRejected() == 0 {
		t.Errorf("no junk counted as rejected")
	}
}

// TestRacingCopyStillAnswered: an attacker who observes a request sends a
// copy ahead of it. The application handles the copy; the client's own
// request, which arrives while the copy is pending, still gets the
// sealed reply, with retries off.
func TestRacingCopyStillAnswered(t *testing.T) {
	sk := mustKey(t)
	serverAddr, tapAddr := inprocAddr(t), inprocAddr(t)
	rep := newRep(t, sk)
	if err := rep.Listen(serverAddr); err != nil {
		t.Fatal(err)
	}
	// Two workers: the second is in Recv while the first handles the
	// copy, as in any server with more than one context.
	got := make(chan []byte, 4)
	for i := 0; i < 2; i++ {
		c, err := rep.OpenContext()
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for {
				b, err := c.Recv()
				if err != nil {
					return
				}
				got <- b
				time.Sleep(300 * time.Millisecond)
				if c.Send(append([]byte("re:"), b...)) != nil {
					return
				}
			}
		}()
	}

	// The attacker's tap: it forwards the client's traffic, but first
	// sends its own copy of the request to the server and waits until
	// the application holds that copy.
	front, back := newRaw(t, xrep.NewSocket), newRaw(t, xreq.NewSocket)
	atkListen(t, front, tapAddr)
	if err := back.Dial(serverAddr); err != nil {
		t.Fatal(err)
	}
	atk := newRaw(t, req.NewSocket)
	mustSet(t, atk, mangos.OptionRetryTime, time.Duration(0), mangos.OptionRecvDeadline, 5*time.Second)
	if err := atk.Dial(serverAddr); err != nil {
		t.Fatal(err)
	}
	atkReply := make(chan []byte, 1)
	go func() {
		m, err := front.RecvMsg()
		if err != nil {
			return
		}
		if atk.Send(append([]byte(nil), m.Body...)) != nil {
			return
		}
		go func() {
			if b, err := atk.Recv(); err == nil {
				atkReply <- b
			}
		}()
		select {
		case b := <-got:
			got <- b
		case <-time.After(5 * time.Second):
			return
		}
		if back.SendMsg(m) != nil {
			return
		}
		for {
			r, err := back.RecvMsg()
			if err != nil {
				return
			}
			if front.SendMsg(r) != nil {
				return
			}
		}
	}()

	c := newReq(t, sk.Public(), mangos.OptionRetryTime, time.Duration(0), mangos.OptionRecvDeadline, 4*time.Second)
	if err := c.Dial(tapAddr); err != nil {
		t.Fatal(err)
	}
	if err := c.Send([]byte("pay 10")); err != nil {
		t.Fatal(err)
	}
	b, err := c.Recv()
	if err != nil || string(b) != "re:pay 10" {
		t.Fatalf("client behind a racing copy: %q, %v; want the reply", b, err)
	}
	select {
	case b := <-atkReply:
		if bytes.Contains(b, []byte("pay 10")) {
			t.Fatalf("attacker's copy got a readable reply")
		}
	case <-time.After(3 * time.Second):
		t.Errorf("the copy's route got no reply")
	}
	if n := len(got); n != 1 {
		t.Errorf("application saw the request %d times, want once", n)
	}
}

// hintingTap is a raw hop between clients and target that relays
// everything and, for each request it relays, sprays unauthenticated
// hints for the next span request IDs, rounds times every gap: an
// attacker on the path who sees request IDs and can inject, but not drop.
func hintingTap(t *testing.T, target string, span uint32, rounds int, gap time.Duration) (string, *atomic.Int64) {
	t.Helper()
	front, back := newRaw(t, xrep.NewSocket), newRaw(t, xreq.NewSocket)
	addr := atkListen(t, front, "tcp://127.0.0.1:0")
	if err := back.Dial(target); err != nil {
		t.Fatal(err)
	}
	var sent atomic.Int64
	hint := wire.AppendHint(nil, wire.HintCannotOpen)
	go func() {
		for {
			m, err := front.RecvMsg()
			if err != nil {
				return
			}
			if len(m.Header) == 8 {
				pipe := binary.BigEndian.Uint32(m.Header[:4])
				id := binary.BigEndian.Uint32(m.Header[4:])
				go func() {
					for round := 0; round < rounds; round++ {
						for i := uint32(1); i <= span; i++ {
							h := mangos.NewMessage(len(hint))
							h.Header = binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(h.Header, pipe), (id+i)|0x80000000)
							h.Body = append(h.Body, hint...)
							if front.SendMsg(h) != nil {
								h.Free()
								return
							}
							sent.Add(1)
						}
						time.Sleep(gap)
					}
				}()
			}
			if back.SendMsg(m) != nil {
				m.Free()
				return
			}
		}
	}()
	go func() {
		for {
			m, err := back.RecvMsg()
			if err != nil {
				return
			}
			if front.SendMsg(m) != nil {
				m.Free()
				return
			}
		}
	}()
	return addr, &sent
}

// TestRogueHintsDoNotFailAnsweredRequests: an attacker on the path sprays
// unauthenticated hints for the request IDs that follow each one it sees;
// every request still succeeds (the server answers them all).
func TestRogueHintsDoNotFailAnsweredRequests(t *testing.T) {
	sk := mustKey(t)
	rep := newRep(t, sk)
	serverAddr := atkListen(t, rep, "tcp://127.0.0.1:0")
	var answered sync.Map
	for i := 0; i < 4; i++ {
		c, err := rep.OpenContext()
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for {
				b, err := c.Recv()
				if err != nil {
					return
				}
				answered.Store(string(b), true)
				if c.Send(append([]byte("re:"), b...)) != nil {
					return
				}
			}
		}()
	}
	tapAddr, sprayed := hintingTap(t, serverAddr, 8, 2, time.Millisecond)
	client := newReq(t, sk.Public(), mangos.OptionRetryTime, time.Duration(0), mangos.OptionRecvDeadline, 5*time.Second)
	if err := client.Dial(tapAddr); err != nil {
		t.Fatal(err)
	}
	const ctxs, per = 4, 40
	testStart := time.Now()
	var mu sync.Mutex
	results := map[string]error{}
	var wg sync.WaitGroup
	for k := 0; k < ctxs; k++ {
		c, err := client.OpenContext()
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				body := fmt.Sprintf("req %d/%d", k, i)
				t0 := time.Now()
				err := c.Send([]byte(body))
				var b []byte
				if err == nil {
					b, err = c.Recv()
				}
				if err == nil && string(b) != "re:"+body {
					err = fmt.Errorf("wrong reply %q", b)
				}
				if err != nil {
					err = fmt.Errorf("after %v (started at %v): %w", time.Since(t0), t0.Sub(testStart), err)
				}
				mu.Lock()
				results[body] = err
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	var ok, failed, failedAnswered int
	for body, err := range results {
		if err == nil {
			ok++
			continue
		}
		failed++
		if _, yes := answered.Load(body); yes {
			failedAnswered++
			if failedAnswered <= 5 {
				t.Errorf("%s: the server answered it, the client got %v", body, err)
			}
		}
	}
	t.Logf("%d requests: %d ok, %d failed (%d of them answered by the server); the tap sprayed %d hints, the client rejected %d",
		len(results), ok, failed, failedAnswered, sprayed.Load(), client.Stats().TotalRejected())
	if failed > 0 {
		t.Errorf("%d requests failed (%d answered by the server)", failed, failedAnswered)
	}
}

// TestClosedSocketErrors: after Close every data method of a curve socket
// and of its contexts returns mangos.ErrClosed, as on mangos.
func TestClosedSocketErrors(t *testing.T) {
	sk := mustKey(t)
	for _, side := range []string{"rep", "req"} {
		t.Run(side, func(t *testing.T) {
			var s *Socket
			if side == "rep" {
				s = newRep(t, sk)
			} else {
				s = newReq(t, sk.Public())
			}
			if err := s.Listen(inprocAddr(t)); err != nil {
				t.Fatal(err)
			}
			ctx, err := s.OpenContext()
			if err != nil {
				t.Fatal(err)
			}
			closedCtx, err := s.OpenContext()
			if err != nil {
				t.Fatal(err)
			}
			if err := closedCtx.Close(); err != nil {
				t.Fatal(err)
			}
			check := func(what string, err error) {
				t.Helper()
				if !errors.Is(err, mangos.ErrClosed) {
					t.Errorf("%s: %v, want mangos.ErrClosed", what, err)
				}
			}
			data := func(who string, p interface {
				Send([]byte) error
				SendMsg(*mangos.Message) error
				Recv() ([]byte, error)
				RecvMsg() (*mangos.Message, error)
				Close() error
			}) {
				check(who+" Send", p.Send([]byte("x")))
				m := mangos.NewMessage(1)
				m.Body = append(m.Body, 'x')
				check(who+" SendMsg", p.SendMsg(m))
				_, err := p.Recv()
				check(who+" Recv", err)
				_, err = p.RecvMsg()
				check(who+" RecvMsg", err)
				check(who+" Close again", p.Close())
			}
			data("closed context", closedCtx)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			data("socket", s)
			data("context of closed socket", ctx)
			_, err = s.OpenContext()
			check("OpenContext", err)
			if side == "req" {
				check("Authenticate", s.Authenticate())
			}
		})
	}
}

// TestSwitchToNoneNeverRepliesInClear: a request that arrived sealed gets
// a sealed reply even if the REP socket is switched to "none" while the
// application handles it.
func TestSwitchToNoneNeverRepliesInClear(t *testing.T) {
	sk := mustKey(t)
	req, rep := pair(t, inprocAddr(t), sk)
	if err := req.Send([]byte("secret question")); err != nil {
		t.Fatal(err)
	}
	b, err := rep.Recv()
	if err != nil {
		t.Fatal(err)
	}
	// A live socket does not go back to none at all; were it to, the
	// request it holds would still be answered sealed.
	if err := rep.SetOption(OptionMechanism, MechanismNone); !errors.Is(err, mangos.ErrBadOption) {
		t.Fatalf("switch a listening REP to none: %v, want ErrBadOption", err)
	}
	if err := rep.Send(append([]byte("secret answer to "), b...)); err != nil {
		t.Logf("Send after the switch: %v", err)
	}
	got, err := req.Recv()
	if err != nil || string(got) != "secret answer to secret question" {
		t.Fatalf("client got %q, %v; want the sealed reply", got, err)
	}
}

// TestWrapNil: Wrap(nil) is an error, not a panic.
func TestWrapNil(t *testing.T) {
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("Wrap(nil) panicked: %v", r)
		}
	}()
	if s, err := Wrap(nil); err == nil || s != nil {
		t.Fatalf("Wrap(nil) = %v, %v; want an error", s, err)
	}
}

// TestAdvisoryWrongKeyWithoutDeadline: with no receive deadline (the mangos
// default) a wrong server key still ends in ErrServerKeyMismatch, within
// the grace.
func TestAdvisoryWrongKeyWithoutDeadline(t *testing.T) {
	sk := mustKey(t)
	req, rep := pair(t, inprocAddr(t), sk, OptionServerKey, mustKey(t).Public(), mangos.OptionRecvDeadline, time.Duration(0))
	serveAll(rep)
	if err := req.Send([]byte("x")); err != nil {
		t.Fatal(err)
	}
	res := make(chan error, 1)
	t0 := time.Now()
	go func() { _, err := req.Recv(); res <- err }()
	select {
	case err := <-res:
		if !errors.Is(err, ErrServerKeyMismatch) {
			t.Fatalf("got %v, want ErrServerKeyMismatch", err)
		}
		t.Logf("ErrServerKeyMismatch after %v", time.Since(t0))
	case <-time.After(5 * time.Second):
		t.Fatal("Recv with a wrong server key and no deadline hangs")
	}
}

// TestAdvisoryHintThenSlowReply: forged hints that arrive long before a
// slow server's reply do not end the request: the client waits out the
// grace for the authenticated reply.
func TestAdvisoryHintThenSlowReply(t *testing.T) {
	sk := mustKey(t)
	rep := newRep(t, sk)
	serverAddr := atkListen(t, rep, "tcp://127.0.0.1:0")
	go func() {
		for {
			b, err := rep.Recv()
			if err != nil {
				return
			}
			time.Sleep(300 * time.Millisecond)
			if rep.Send(append([]byte("re:"), b...)) != nil {
				return
			}
		}
	}()
	// The tap hints the request's own ID too (span counts from the ID
	// before it: the previous request's burst covers it).
	tapAddr, _ := hintingTap(t, serverAddr, 8, 1, 0)
	c := newReq(t, sk.Public(), mangos.OptionRetryTime, time.Duration(0), mangos.OptionRecvDeadline, 5*time.Second)
	if err := c.Dial(tapAddr); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		body := fmt.Sprint("q", i)
		if err := c.Send([]byte(body)); err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		b, err := c.Recv()
		if err != nil || string(b) != "re:"+body {
			t.Errorf("%s: %q, %v after %v; want the reply", body, b, err, time.Since(t0))
		}
	}
	if n := c.Stats().Opened; n != 4 {
		t.Errorf("opened %d replies, want 4", n)
	}
}

// TestAdvisoryNeverPastDeadline: when only a rogue answers, with hints,
// the client reports the hint's error no later than its receive deadline.
func TestAdvisoryNeverPastDeadline(t *testing.T) {
	sk := mustKey(t)
	addr := inprocAddr(t)
	rogue := newRaw(t, xrep.NewSocket)
	atkListen(t, rogue, addr)
	go func() {
		for {
			m, err := rogue.RecvMsg()
			if err != nil {
				return
			}
			m.Body = wire.AppendHint(m.Body[:0], wire.HintCannotOpen)
			time.Sleep(20 * time.Millisecond)
			if rogue.SendMsg(m) != nil {
				return
			}
		}
	}()
	for _, dl := range []time.Duration{300 * time.Millisecond, 0} {
		c := newReq(t, sk.Public(), mangos.OptionRecvDeadline, dl, OptionAdvisoryGrace, 600*time.Millisecond)
		if err := c.Dial(addr); err != nil {
			t.Fatal(err)
		}
		if err := c.Send([]byte("x")); err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		_, err := c.Recv()
		d := time.Since(t0)
		if !errors.Is(err, ErrServerKeyMismatch) {
			t.Errorf("deadline %v: %v, want ErrServerKeyMismatch", dl, err)
		}
		limit := dl
		if limit == 0 {
			limit = 600 * time.Millisecond
		}
		if d > limit+700*time.Millisecond {
			t.Errorf("deadline %v: error after %v", dl, d)
		}
		t.Logf("deadline %v: %v after %v", dl, err, d)
	}
}
