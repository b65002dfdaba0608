package secsock

// The mangos REQ/REP behaviours an application relies on, checked on a
// plain mangos pair and on a secsock pair with curve on: both must behave
// the same (issue 10). Loopback only (inproc), bounded times.

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.nanomsg.org/mangos/v3"
	"go.nanomsg.org/mangos/v3/protocol/rep"
	"go.nanomsg.org/mangos/v3/protocol/req"
)

// semPair is a REQ and a REP socket connected over inproc, plain mangos
// or secsock with curve.
type semPair struct {
	req, rep mangos.Socket
}

func newSemPair(t *testing.T, curve bool) semPair {
	t.Helper()
	addr := inprocAddr(t)
	var p semPair
	if curve {
		p.rep, p.req = newSemSockets(t, mustKey(t))
	} else {
		p.rep, p.req = newRaw(t, rep.NewSocket), newRaw(t, req.NewSocket)
	}
	// Wait until the REP side has added the pipe: mangos REP reads its
	// write queue length unlocked while adding one, so a test that sets
	// OptionWriteQLen at that moment races inside mangos.
	attached := make(chan struct{}, 1)
	p.rep.SetPipeEventHook(func(ev mangos.PipeEvent, _ mangos.Pipe) {
		if ev == mangos.PipeEventAttached {
			select {
			case attached <- struct{}{}:
			default:
			}
		}
	})
	if err := p.rep.Listen(addr); err != nil {
		t.Fatal(err)
	}
	if err := p.req.Dial(addr); err != nil {
		t.Fatal(err)
	}
	select {
	case <-attached:
	case <-time.After(5 * time.Second):
		t.Fatal("the REP side never attached the pipe")
	}
	return p
}

// newSemSockets makes secsock REP and REQ sockets with curve and the
// mangos defaults otherwise (no deadlines).
func newSemSockets(t *testing.T, sk SecretKey) (*Socket, *Socket) {
	t.Helper()
	r, err := NewRepSocket()
	if err != nil {
		t.Fatal(err)
	}
	q, err := NewReqSocket()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); q.Close() })
	mustSet(t, r, OptionMechanism, MechanismCurve, OptionSecretKey, sk)
	mustSet(t, q, OptionMechanism, MechanismCurve, OptionServerKey, sk.Public())
	return r, q
}

// bothWays runs f against plain mangos and secsock with curve.
func bothWays(t *testing.T, f func(t *testing.T, p semPair)) {
	for _, curve := range []bool{false, true} {
		name := "mangos"
		if curve {
			name = "secsock-curve"
		}
		t.Run(name, func(t *testing.T) { f(t, newSemPair(t, curve)) })
	}
}

func within(t *testing.T, what string, d, lo, hi time.Duration) {
	t.Helper()
	if d < lo || d > hi {
		t.Errorf("%s after %v, want between %v and %v", what, d, lo, hi)
	}
}

func TestSemanticsRecvDeadline(t *testing.T) {
	bothWays(t, func(t *testing.T, p semPair) {
		mustSet(t, p.rep, mangos.OptionRecvDeadline, 150*time.Millisecond)
		if v, err := p.rep.GetOption(mangos.OptionRecvDeadline); err != nil || v != 150*time.Millisecond {
			t.Errorf("GetOption(RecvDeadline) = %v, %v", v, err)
		}
		t0 := time.Now()
		_, err := p.rep.Recv()
		if !errors.Is(err, mangos.ErrRecvTimeout) {
			t.Fatalf("Recv: %v, want ErrRecvTimeout", err)
		}
		within(t, "timeout", time.Since(t0), 140*time.Millisecond, time.Second)
		// A context has its own deadline.
		c, err := p.rep.OpenContext()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		mustSet(t, c, mangos.OptionRecvDeadline, 50*time.Millisecond)
		t0 = time.Now()
		if _, err := c.Recv(); !errors.Is(err, mangos.ErrRecvTimeout) {
			t.Fatalf("context Recv: %v", err)
		}
		within(t, "context timeout", time.Since(t0), 45*time.Millisecond, 800*time.Millisecond)
		for _, bad := range []any{"1s", 5} {
			if err := p.rep.SetOption(mangos.OptionRecvDeadline, bad); !errors.Is(err, mangos.ErrBadValue) {
				t.Errorf("SetOption(RecvDeadline, %v): %v, want ErrBadValue", bad, err)
			}
		}
	})
}

func TestSemanticsProtoState(t *testing.T) {
	bothWays(t, func(t *testing.T, p semPair) {
		// REP Send without a request; REQ Recv without a request.
		if err := p.rep.Send([]byte("x")); !errors.Is(err, mangos.ErrProtoState) {
			t.Errorf("REP Send before Recv: %v, want ErrProtoState", err)
		}
		if _, err := p.req.Recv(); !errors.Is(err, mangos.ErrProtoState) {
			t.Errorf("REQ Recv before Send: %v, want ErrProtoState", err)
		}
		// Two goroutines in Recv on one REP context: the second gets
		// ErrProtoState.
		mustSet(t, p.rep, mangos.OptionRecvDeadline, 2*time.Second)
		first := make(chan error, 1)
		go func() { _, err := p.rep.Recv(); first <- err }()
		time.Sleep(100 * time.Millisecond)
		if _, err := p.rep.Recv(); !errors.Is(err, mangos.ErrProtoState) {
			t.Errorf("second concurrent Recv: %v, want ErrProtoState", err)
		}
		p.req.Send([]byte("unblock"))
		if err := <-first; err != nil {
			t.Errorf("first Recv: %v", err)
		}
		// A reply answers the request once: a second Send has none.
		if err := p.rep.Send([]byte("re")); err != nil {
			t.Fatal(err)
		}
		if err := p.rep.Send([]byte("again")); !errors.Is(err, mangos.ErrProtoState) {
			t.Errorf("second Send: %v, want ErrProtoState", err)
		}
		if b, err := p.req.Recv(); err != nil || string(b) != "re" {
			t.Errorf("REQ got %q, %v", b, err)
		}
	})
}

// TestSemanticsTimeoutKeepsRequest: a Recv that times out after a request
// was received leaves that request to answer, as mangos keeps the
// backtrace.
func TestSemanticsTimeoutKeepsRequest(t *testing.T) {
	bothWays(t, func(t *testing.T, p semPair) {
		mustSet(t, p.rep, mangos.OptionRecvDeadline, 100*time.Millisecond)
		mustSet(t, p.req, mangos.OptionRecvDeadline, 3*time.Second)
		if err := p.req.Send([]byte("q")); err != nil {
			t.Fatal(err)
		}
		mustSet(t, p.rep, mangos.OptionRecvDeadline, 3*time.Second)
		if _, err := p.rep.Recv(); err != nil {
			t.Fatal(err)
		}
		mustSet(t, p.rep, mangos.OptionRecvDeadline, 100*time.Millisecond)
		if _, err := p.rep.Recv(); !errors.Is(err, mangos.ErrRecvTimeout) {
			t.Fatalf("second Recv: %v", err)
		}
		if err := p.rep.Send([]byte("a")); err != nil {
			t.Fatalf("Send after a timed-out Recv: %v", err)
		}
		if b, err := p.req.Recv(); err != nil || string(b) != "a" {
			t.Fatalf("REQ got %q, %v", b, err)
		}
	})
}

func TestSemanticsCloseWakesRecv(t *testing.T) {
	bothWays(t, func(t *testing.T, p semPair) {
		c, err := p.rep.OpenContext()
		if err != nil {
			t.Fatal(err)
		}
		ctxDone, sockDone := make(chan error, 1), make(chan error, 1)
		go func() { _, err := c.Recv(); ctxDone <- err }()
		go func() { _, err := p.rep.Recv(); sockDone <- err }()
		time.Sleep(50 * time.Millisecond)
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-ctxDone:
			if !errors.Is(err, mangos.ErrClosed) {
				t.Errorf("context Recv after Close: %v", err)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("closing a context does not wake its Recv")
		}
		if err := c.Close(); !errors.Is(err, mangos.ErrClosed) {
			t.Errorf("second context Close: %v", err)
		}
		p.rep.Close()
		select {
		case err := <-sockDone:
			if !errors.Is(err, mangos.ErrClosed) {
				t.Errorf("socket Recv after Close: %v", err)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("closing the socket does not wake Recv")
		}
		if err := p.rep.Close(); !errors.Is(err, mangos.ErrClosed) {
			t.Errorf("second Close: %v", err)
		}
		if _, err := p.rep.OpenContext(); !errors.Is(err, mangos.ErrClosed) {
			t.Errorf("OpenContext after Close: %v", err)
		}
	})
}

func TestSemanticsOptions(t *testing.T) {
	bothWays(t, func(t *testing.T, p semPair) {
		for _, o := range []struct {
			name string
			good any
			bad  []any
		}{
			{mangos.OptionTTL, 3, []any{0, 256, "3"}},
			{mangos.OptionBestEffort, true, []any{1}},
			{mangos.OptionSendDeadline, 250 * time.Millisecond, []any{"x"}},
			{mangos.OptionWriteQLen, 16, []any{-1}},
		} {
			if err := p.rep.SetOption(o.name, o.good); err != nil {
				t.Errorf("SetOption(%s, %v): %v", o.name, o.good, err)
			}
			if v, err := p.rep.GetOption(o.name); err != nil || v != o.good {
				t.Errorf("GetOption(%s) = %v, %v; want %v", o.name, v, err, o.good)
			}
			for _, b := range o.bad {
				if err := p.rep.SetOption(o.name, b); !errors.Is(err, mangos.ErrBadValue) {
					t.Errorf("SetOption(%s, %v): %v, want ErrBadValue", o.name, b, err)
				}
			}
		}
		if err := p.rep.SetOption("NO-SUCH-OPTION", 1); !errors.Is(err, mangos.ErrBadOption) {
			t.Errorf("unknown option: %v, want ErrBadOption", err)
		}
		if _, err := p.rep.GetOption("NO-SUCH-OPTION"); !errors.Is(err, mangos.ErrBadOption) {
			t.Errorf("unknown option: %v, want ErrBadOption", err)
		}
		c, _ := p.rep.OpenContext()
		defer c.Close()
		if err := c.SetOption(mangos.OptionTTL, 3); !errors.Is(err, mangos.ErrBadOption) {
			t.Errorf("TTL on a REP context: %v, want ErrBadOption (socket-wide)", err)
		}
		if v, err := p.rep.GetOption(mangos.OptionRaw); err != nil || v != false {
			t.Errorf("OptionRaw = %v, %v", v, err)
		}
	})
}

// TestSemanticsBestEffort: with best effort, a REP reply to a client that
// went away does not block.
func TestSemanticsBestEffort(t *testing.T) {
	bothWays(t, func(t *testing.T, p semPair) {
		mustSet(t, p.rep, mangos.OptionBestEffort, true, mangos.OptionRecvDeadline, 3*time.Second)
		if err := p.req.Send([]byte("q")); err != nil {
			t.Fatal(err)
		}
		if _, err := p.rep.Recv(); err != nil {
			t.Fatal(err)
		}
		p.req.Close()
		t0 := time.Now()
		if err := p.rep.Send([]byte("a")); err != nil {
			t.Errorf("best-effort Send to a closed peer: %v", err)
		}
		within(t, "best-effort Send", time.Since(t0), 0, 500*time.Millisecond)
	})
}

// TestSemanticsTTL: a request that crossed more hops than the REP
// socket's OptionTTL is dropped; within the TTL it is served. (The TTL is
// set before the socket has pipes: mangos reads it without a lock.)
func TestSemanticsTTL(t *testing.T) {
	for _, curve := range []bool{false, true} {
		t.Run(fmt.Sprint("curve=", curve), func(t *testing.T) {
			dev := newAtkDevice(t, inprocAddr(t), inprocAddr(t))
			sk := mustKey(t)
			var r, c mangos.Socket
			if curve {
				r, c = newSemSockets(t, sk)
			} else {
				r, c = newRaw(t, rep.NewSocket), newRaw(t, req.NewSocket)
			}
			// client -> device -> REP: 2 hops in the backtrace.
			mustSet(t, r, mangos.OptionTTL, 1, mangos.OptionRecvDeadline, 300*time.Millisecond)
			if err := r.Dial(dev.backAddr); err != nil {
				t.Fatal(err)
			}
			if err := c.Dial(dev.frontAddr); err != nil {
				t.Fatal(err)
			}
			go func() {
				for {
					b, err := r.Recv()
					if errors.Is(err, mangos.ErrClosed) {
						return
					}
					if err == nil {
						r.Send(b)
					}
				}
			}()
			mustSet(t, c, mangos.OptionRecvDeadline, 500*time.Millisecond)
			time.Sleep(50 * time.Millisecond)
			c.Send([]byte("far"))
			if _, err := c.Recv(); !errors.Is(err, mangos.ErrRecvTimeout) {
				t.Errorf("request over the TTL: %v, want no answer (ErrRecvTimeout)", err)
			}
			if v, err := r.GetOption(mangos.OptionTTL); err != nil || v != 1 {
				t.Errorf("GetOption(TTL) = %v, %v", v, err)
			}
			r.Close()
		})
	}
}

// TestSemanticsRetry: a mangos REQ retry of a slow request gets the reply
// and the application sees the request once.
func TestSemanticsRetry(t *testing.T) {
	bothWays(t, func(t *testing.T, p semPair) {
		mustSet(t, p.req, mangos.OptionRetryTime, 50*time.Millisecond, mangos.OptionRecvDeadline, 3*time.Second)
		var seen atomic.Int32
		go func() {
			for {
				b, err := p.rep.Recv()
				if err != nil {
					return
				}
				seen.Add(1)
				time.Sleep(300 * time.Millisecond)
				p.rep.Send(b)
			}
		}()
		if err := p.req.Send([]byte("slow")); err != nil {
			t.Fatal(err)
		}
		if b, err := p.req.Recv(); err != nil || string(b) != "slow" {
			t.Fatalf("REQ got %q, %v", b, err)
		}
		// plain mangos REP has no replay cache: it sees each retry (that
		// is the difference secsock is for); secsock sees it once.
		if _, curve := p.rep.(*Socket); curve && seen.Load() != 1 {
			t.Errorf("application saw the request %d times, want once", seen.Load())
		}
	})
}

// TestSemanticsContexts: 16 REP contexts serve 16 REQ contexts
// concurrently, each reply to its own request.
func TestSemanticsContexts(t *testing.T) {
	bothWays(t, func(t *testing.T, p semPair) {
		const n, per = 16, 20
		for i := 0; i < n; i++ {
			c, err := p.rep.OpenContext()
			if err != nil {
				t.Fatal(err)
			}
			go func() {
				for {
					b, err := c.Recv()
					if err != nil {
						return
					}
					if c.Send(append([]byte("re:"), b...)) != nil {
						return
					}
				}
			}()
		}
		var wg sync.WaitGroup
		errs := make(chan error, n*per)
		for i := 0; i < n; i++ {
			c, err := p.req.OpenContext()
			if err != nil {
				t.Fatal(err)
			}
			mustSet(t, c, mangos.OptionRecvDeadline, 5*time.Second)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := 0; j < per; j++ {
					msg := fmt.Sprintf("%d/%d", i, j)
					if err := c.Send([]byte(msg)); err != nil {
						errs <- err
						return
					}
					b, err := c.Recv()
					if err != nil || string(b) != "re:"+msg {
						errs <- fmt.Errorf("%s: %q, %v", msg, b, err)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
}

// TestNoneStaysPlain: with mechanism "none" a REP socket starts no
// goroutines of its own and bytes pass unchanged.
func TestNoneStaysPlain(t *testing.T) {
	addr := inprocAddr(t)
	s, err := NewRepSocket()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Listen(addr); err != nil {
		t.Fatal(err)
	}
	c := newRaw(t, req.NewSocket)
	mustSet(t, c, mangos.OptionRecvDeadline, 3*time.Second)
	if err := c.Dial(addr); err != nil {
		t.Fatal(err)
	}
	mustSet(t, s, mangos.OptionRecvDeadline, 100*time.Millisecond)
	base := runtime.NumGoroutine()
	for i := 0; i < 3; i++ {
		s.Recv() // times out: no dispatch starts
	}
	if s.disp.Load() != nil {
		t.Fatal("mechanism none started the dispatch")
	}
	if n := runtime.NumGoroutine(); n > base+1 {
		t.Errorf("goroutines %d -> %d with mechanism none", base, n)
	}
	mustSet(t, s, mangos.OptionRecvDeadline, 3*time.Second)
	c.Send([]byte{0x02, 0x01, 'p', 'l', 'a', 'i', 'n'})
	b, err := s.Recv()
	if err != nil || string(b) != "\x02\x01plain" {
		t.Fatalf("plain Recv: %q, %v", b, err)
	}
	if err := s.Send([]byte("as is")); err != nil {
		t.Fatal(err)
	}
	if b, err := c.Recv(); err != nil || string(b) != "as is" {
		t.Fatalf("plain reply: %q, %v", b, err)
	}
}
