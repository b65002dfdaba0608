package secsock

// Fault tests (project issue 5, protocol v2): workers, devices and clients restarting
// or dying mid-request, sockets and contexts closed under concurrent use,
// and server key rotation under load. Loopback only, bounded in time.

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"go.nanomsg.org/mangos/v3"
)

// holdingWorker receives requests on n contexts and never answers them,
// like a worker that dies mid-request. got receives one value per request
// it holds.
func holdingWorker(t *testing.T, dial string, server SecretKey, n int) (*Socket, chan []byte) {
	t.Helper()
	s, err := NewRepSocket()
	if err != nil {
		t.Fatal(err)
	}
	mustSet(t, s, OptionMechanism, MechanismCurve, OptionSecretKey, server)
	got := make(chan []byte, n)
	for i := 0; i < n; i++ {
		c, err := s.OpenContext()
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			if b, err := c.Recv(); err == nil {
				got <- b
			}
		}()
	}
	if err := s.Dial(dial); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, got
}

// faultWorld is clients -> nonce tap -> device -> workers.
type faultWorld struct {
	server SecretKey
	dev    *atkDevice
	ledger *nonceLedger
	tap    string
}

func newFaultWorld(t *testing.T, label string) *faultWorld {
	w := &faultWorld{server: atkSeeded("fault server " + label), ledger: newNonceLedger()}
	w.dev = newAtkDevice(t, "tcp://127.0.0.1:0", inprocAddr(t))
	w.tap = startNonceTap(t, w.ledger, "tcp://127.0.0.1:0", w.dev.frontAddr)
	return w
}

func (w *faultWorld) client(t *testing.T, opts ...any) *Socket {
	return atkClient(t, w.tap, append([]any{OptionServerKey, w.server.public, mangos.OptionRetryTime, 300 * time.Millisecond}, opts...)...)
}

func checkLegit(t *testing.T, r *legitRun, want int64) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.errs {
		t.Error(e)
	}
	if got := r.rounds.Load(); got != want {
		t.Errorf("%d of %d round trips completed", got, want)
	}
}

// TestFaultWorkerRestart: the only worker takes requests from clients on
// several contexts and is closed without answering; a new worker with the
// same server key starts; with OptionRetryTime the clients' retries
// (identical bytes) complete on it. No request or reply nonce is reused.
func TestFaultWorkerRestart(t *testing.T) {
	const ctxs = 6
	w := newFaultWorld(t, "restart")
	old, held := holdingWorker(t, w.dev.backAddr, w.server, ctxs)
	c := w.client(t, OptionSecretKey, atkSeeded("restart client"))
	legit := newLegitRun()
	wg := legit.run(c, 0, ctxs, 5, 0)
	for i := 0; i < ctxs; i++ {
		select {
		case <-held:
		case <-time.After(10 * time.Second):
			t.Fatalf("worker holds %d of %d requests", i, ctxs)
		}
	}
	old.Close() // dies mid-request
	startAtkWorker(t, w.dev.backAddr, 4, OptionSecretKey, w.server)
	wg.Wait()
	checkLegit(t, legit, ctxs*5)
	w.ledger.check(t)
	w.ledger.mu.Lock()
	defer w.ledger.mu.Unlock()
	if w.ledger.nReq <= ctxs*5 {
		t.Errorf("tap saw %d requests, want retries beyond %d", w.ledger.nReq, ctxs*5)
	}
	t.Logf("tap: %d requests (retries included), %d replies, no nonce reused", w.ledger.nReq, w.ledger.nRep)
}

// TestFaultDeviceRestart: the device between clients and workers is
// closed mid-load and a new one starts on the same addresses; dialers
// reconnect and the clients' retries complete.
func TestFaultDeviceRestart(t *testing.T) {
	server := atkSeeded("fault server device")
	ledger := newNonceLedger()
	dev := newAtkDevice(t, "tcp://127.0.0.1:0", inprocAddr(t))
	tap := startNonceTap(t, ledger, "tcp://127.0.0.1:0", dev.frontAddr)
	for i := 0; i < 2; i++ {
		startAtkWorker(t, dev.backAddr, 4, OptionSecretKey, server)
	}
	c := atkClient(t, tap, OptionServerKey, server.public, mangos.OptionRetryTime, 300*time.Millisecond)
	legit := newLegitRun()
	wg := legit.run(c, 0, 8, 40, 2*time.Millisecond)
	for legit.rounds.Load() < 40 {
		time.Sleep(5 * time.Millisecond)
	}
	dev.front.Close()
	dev.back.Close()
	time.Sleep(50 * time.Millisecond)
	dev2 := newAtkDevice(t, dev.frontAddr, dev.backAddr)
	if dev2.frontAddr != dev.frontAddr {
		t.Fatalf("new device on %s, old on %s", dev2.frontAddr, dev.frontAddr)
	}
	wg.Wait()
	checkLegit(t, legit, 8*40)
	ledger.check(t)
}

// TestFaultClientRestart: a client is closed and a new one with the same
// long-term key makes a new short-term key; both are served.
func TestFaultClientRestart(t *testing.T) {
	w := newFaultWorld(t, "client")
	startAtkWorker(t, w.dev.backAddr, 4, OptionSecretKey, w.server, OptionAuthorizedKeys, []PublicKey{atkSeeded("restarting").public})
	var ephs []PublicKey
	for i := 0; i < 3; i++ {
		c := w.client(t, OptionSecretKey, atkSeeded("restarting"))
		legit := newLegitRun()
		legit.run(c, i, 4, 10, 0).Wait()
		checkLegit(t, legit, 40)
		c.Close()
		w.ledger.mu.Lock()
		last := w.ledger.captured[len(w.ledger.captured)-1]
		w.ledger.mu.Unlock()
		ephs = append(ephs, PublicKey(last[4:36]))
	}
	if ephs[0] == ephs[1] || ephs[1] == ephs[2] || ephs[0] == ephs[2] {
		t.Fatal("a restarted client reused its short-term key")
	}
	w.ledger.check(t)
}

// TestFaultWorkerDiesForGood: one of three workers is closed mid-load and
// never comes back; the others serve everything (retries included).
func TestFaultWorkerDiesForGood(t *testing.T) {
	w := newFaultWorld(t, "dies")
	var ws []*atkWorker
	for i := 0; i < 3; i++ {
		ws = append(ws, startAtkWorker(t, w.dev.backAddr, 3, OptionSecretKey, w.server))
	}
	legit := newLegitRun()
	var wgs []*sync.WaitGroup
	for i := 0; i < 3; i++ {
		wgs = append(wgs, legit.run(w.client(t), i, 6, 30, time.Millisecond))
	}
	for legit.rounds.Load() < 100 {
		time.Sleep(5 * time.Millisecond)
	}
	ws[0].stop()
	for _, wg := range wgs {
		wg.Wait()
	}
	checkLegit(t, legit, 3*6*30)
	served := ws[1].sock.Stats().Opened + ws[2].sock.Stats().Opened
	if served == 0 {
		t.Fatal("surviving workers served nothing")
	}
	w.ledger.check(t)
	t.Logf("dead worker opened %d, survivors %d", ws[0].sock.Stats().Opened, served)
}

// settleGoroutines waits (bounded) for the goroutine count to fall to
// base + slack and reports the count.
func settleGoroutines(base, slack int) int {
	n := runtime.NumGoroutine()
	for end := time.Now().Add(5 * time.Second); n > base+slack && time.Now().Before(end); n = runtime.NumGoroutine() {
		time.Sleep(20 * time.Millisecond)
	}
	return n
}

// TestFaultCloseUnderUse: contexts and then whole sockets are closed
// while other goroutines send and receive on them. No panic, every
// blocked call returns, and no goroutine is left behind.
func TestFaultCloseUnderUse(t *testing.T) {
	for _, transport := range []string{"inproc", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			base := settleGoroutines(runtime.NumGoroutine(), 0)
			server := atkSeeded("close server")
			addr := inprocAddr(t)
			if transport == "tcp" {
				addr = "tcp://127.0.0.1:0"
			}
			rep, err := NewRepSocket()
			if err != nil {
				t.Fatal(err)
			}
			mustSet(t, rep, OptionMechanism, MechanismCurve, OptionSecretKey, server)
			addr = atkListen(t, rep, addr)
			var wg sync.WaitGroup
			var repCtxs []mangos.Context
			for i := 0; i < 4; i++ {
				c, err := rep.OpenContext()
				if err != nil {
					t.Fatal(err)
				}
				repCtxs = append(repCtxs, c)
				wg.Add(1)
				go func() {
					defer wg.Done()
					for k := 0; k < 100000; k++ {
						b, err := c.Recv()
						if errors.Is(err, mangos.ErrClosed) {
							return
						}
						if err == nil {
							c.Send(b)
						}
					}
				}()
			}
			req, err := NewReqSocket()
			if err != nil {
				t.Fatal(err)
			}
			mustSet(t, req, OptionMechanism, MechanismCurve, OptionServerKey, server.public,
				mangos.OptionRecvDeadline, 2*time.Second, mangos.OptionRetryTime, 100*time.Millisecond)
			if err := req.Dial(addr); err != nil {
				t.Fatal(err)
			}
			var reqCtxs []mangos.Context
			for i := 0; i < 8; i++ {
				c, err := req.OpenContext()
				if err != nil {
					t.Fatal(err)
				}
				reqCtxs = append(reqCtxs, c)
				wg.Add(1)
				go func() {
					defer wg.Done()
					for k := 0; k < 100000; k++ {
						if err := c.Send([]byte(fmt.Sprint("ping ", k))); errors.Is(err, mangos.ErrClosed) {
							return
						}
						if _, err := c.Recv(); errors.Is(err, mangos.ErrClosed) {
							return
						}
					}
				}()
			}
			// The default contexts too, with Authenticate on its own context.
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := 0; k < 100000; k++ {
					if err := req.Authenticate(); errors.Is(err, mangos.ErrClosed) {
						return
					}
				}
			}()
			time.Sleep(100 * time.Millisecond)
			for i, c := range reqCtxs {
				if i%2 == 0 {
					c.Close() // half of the client contexts, mid-exchange
				}
			}
			repCtxs[0].Close()
			time.Sleep(100 * time.Millisecond)
			req.Close()
			rep.Close()
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("a goroutine is still blocked in Send or Recv after Close")
			}
			if n := settleGoroutines(base, 0); n > base {
				buf := make([]byte, 1<<16)
				t.Fatalf("%d goroutines after Close, %d before:\n%s", n, base, buf[:runtime.Stack(buf, true)])
			}
		})
	}
}

// TestFaultKeyRotationUnderLoad: workers move from key A to key B (B
// current, A previous) while clients holding A and clients holding B run;
// both keep working through the migration window. When A is retired,
// clients still holding it get ErrServerKeyMismatch, never a timeout or a
// wrong reply.
func TestFaultKeyRotationUnderLoad(t *testing.T) {
	a, b := atkSeeded("rotation old"), atkSeeded("rotation new")
	w := &faultWorld{server: a, ledger: newNonceLedger()}
	w.dev = newAtkDevice(t, "tcp://127.0.0.1:0", inprocAddr(t))
	w.tap = startNonceTap(t, w.ledger, "tcp://127.0.0.1:0", w.dev.frontAddr)
	var ws []*atkWorker
	for i := 0; i < 2; i++ {
		ws = append(ws, startAtkWorker(t, w.dev.backAddr, 4, OptionSecretKey, a))
	}
	legit := newLegitRun()
	oldA := legit.run(w.client(t, OptionServerKey, a.public), 0, 6, 60, time.Millisecond)
	for legit.rounds.Load() < 60 {
		time.Sleep(5 * time.Millisecond)
	}
	for _, wk := range ws { // rotate while serving
		mustSet(t, wk.sock, OptionSecretKey, b, OptionPreviousSecretKeys, []SecretKey{a})
	}
	newB := legit.run(w.client(t, OptionServerKey, b.public), 1, 6, 60, time.Millisecond)
	oldA.Wait()
	newB.Wait()
	checkLegit(t, legit, 2*6*60)
	w.ledger.check(t)

	// A client on A with a cached session on every worker (SPEC.md §6: a
	// cached C' whose server key was removed is forgotten).
	cached := w.client(t, OptionServerKey, a.public, mangos.OptionRecvDeadline, 5*time.Second)
	for i := 0; i < 8; i++ {
		if err := cached.Send([]byte(fmt.Sprint("legit cached ", i))); err != nil {
			t.Fatal(err)
		}
		if _, err := cached.Recv(); err != nil {
			t.Fatal(err)
		}
	}

	// End of the migration window.
	for _, wk := range ws {
		mustSet(t, wk.sock, OptionPreviousSecretKeys, []SecretKey{})
	}
	for i := 0; i < 4; i++ {
		if err := cached.Send([]byte("legit cached after")); err != nil {
			t.Fatal(err)
		}
		if _, err := cached.Recv(); !errors.Is(err, ErrServerKeyMismatch) {
			t.Fatalf("cached client with a retired key: %v, want ErrServerKeyMismatch", err)
		}
	}
	late := w.client(t, OptionServerKey, a.public, mangos.OptionRecvDeadline, 5*time.Second)
	if err := late.Send([]byte("legit late")); err != nil {
		t.Fatal(err)
	}
	if _, err := late.Recv(); !errors.Is(err, ErrServerKeyMismatch) {
		t.Fatalf("client with a retired key: %v, want ErrServerKeyMismatch", err)
	}
	fresh := w.client(t, OptionServerKey, b.public)
	if err := fresh.Send([]byte("legit fresh")); err != nil {
		t.Fatal(err)
	}
	if got, err := fresh.Recv(); err != nil || !bytes.Equal(got, []byte("re:legit fresh")) {
		t.Fatalf("client with the new key: %q, %v", got, err)
	}
}
