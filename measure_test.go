package secsock

// Measurements of issue 10 (run with SECSOCK_MEASURE=1, without -race):
//
//	SECSOCK_MEASURE=1 go test -run 'TestMeasure' -v .
//
// They log numbers; the assertions are only sanity checks.

import (
	"encoding/binary"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.nanomsg.org/mangos/v3"
	"go.nanomsg.org/mangos/v3/protocol/xreq"
)

func measureOnly(t *testing.T) {
	if os.Getenv("SECSOCK_MEASURE") == "" {
		t.Skip("set SECSOCK_MEASURE=1 to run measurements")
	}
}

// flood sends body (with a fresh request ID each) to addr from a raw xreq
// socket at rate messages per second until stop, draining the answers.
// It returns the number sent.
func flood(t *testing.T, addr string, body []byte, rate int, stop chan struct{}) *atomic.Int64 {
	t.Helper()
	s := newRaw(t, xreq.NewSocket)
	if err := s.Dial(addr); err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	go func() {
		for {
			m, err := s.RecvMsg()
			if err != nil {
				return
			}
			m.Free()
		}
	}()
	go func() {
		const batch = 20
		tick := time.Second * batch / time.Duration(rate)
		next := time.Now()
		id := uint32(1)
		for {
			select {
			case <-stop:
				return
			default:
			}
			for i := 0; i < batch; i++ {
				m := mangos.NewMessage(len(body))
				m.Header = binary.BigEndian.AppendUint32(m.Header, id|0x80000000)
				id++
				m.Body = append(m.Body, body...)
				if s.SendMsg(m) != nil {
					m.Free()
					return
				}
				n.Add(1)
			}
			next = next.Add(tick)
			time.Sleep(time.Until(next))
		}
	}()
	return &n
}

// TestMeasureEstablishedUnderFreshKeyFlood: an established client's
// throughput (4 contexts, 64 B, tcp) while a flood of forged requests
// with never-seen short-term keys runs (each costs the server a scalar
// multiplication), against the same client during an equally fast flood
// of junk that is rejected without curve work. Issue 10 target: ≥ 0.8.
func TestMeasureEstablishedUnderFreshKeyFlood(t *testing.T) {
	measureOnly(t)
	sk := mustKey(t)
	rep := newRep(t, sk)
	addr := atkListen(t, rep, "tcp://127.0.0.1:0")
	for i := 0; i < 4; i++ {
		c, err := rep.OpenContext()
		if err != nil {
			t.Fatal(err)
		}
		go benchEcho(c)
	}
	// A forged request: sealed by a client holding the wrong server
	// key, so it never opens and its short-term key is never cached.
	forged := captureRequests(t, 1, [][]byte{make([]byte, 64)}, OptionServerKey, mustKey(t).Public())[0]
	junk := append([]byte{0x09}, forged[1:]...) // unknown version: a hint, no curve work
	client := newReq(t, sk.Public())
	if err := client.Dial(addr); err != nil {
		t.Fatal(err)
	}
	run := func(name string, body []byte, rate int) float64 {
		stop := make(chan struct{})
		var sent *atomic.Int64
		if body != nil {
			sent = flood(t, addr, body, rate, stop)
		}
		time.Sleep(200 * time.Millisecond)
		before := rep.Stats()
		const d = 2 * time.Second
		var rounds atomic.Int64
		var wg sync.WaitGroup
		end := time.Now().Add(d)
		for k := 0; k < 4; k++ {
			c, err := client.OpenContext()
			if err != nil {
				t.Fatal(err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				b := make([]byte, 64)
				for time.Now().Before(end) {
					if c.Send(b) != nil {
						return
					}
					if _, err := c.Recv(); err != nil {
						t.Errorf("%s: %v", name, err)
						return
					}
					rounds.Add(1)
				}
			}()
		}
		wg.Wait()
		close(stop)
		after := rep.Stats()
		rps := float64(rounds.Load()) / d.Seconds()
		var n int64
		if sent != nil {
			n = sent.Load()
		}
		t.Logf("%-7s flood %6d msg/s offered (%d sent): established client %8.0f round trips/s; server rejected forged %d, unknown-version %d, busy %d",
			name, rate, n, rps, after.Rejected[ReasonForged]-before.Rejected[ReasonForged],
			after.Rejected[ReasonUnknownVersion]-before.Rejected[ReasonUnknownVersion], after.Rejected[ReasonBusy]-before.Rejected[ReasonBusy])
		time.Sleep(300 * time.Millisecond)
		return rps
	}
	run("none", nil, 0)
	for _, rate := range []int{5000, 20000} {
		control := run("junk", junk, rate)
		fresh := run("forged", forged, rate)
		t.Logf("rate %d/s: forged-key flood / junk flood = %.2f (target ≥ 0.8)", rate, fresh/control)
	}
}

// TestMeasureBacklogMemory: a flood of valid requests that the
// application does not read, and a flood of junk: the REP side's memory
// stays bounded (OptionBacklog and the dispatch's fixed queues).
func TestMeasureBacklogMemory(t *testing.T) {
	measureOnly(t)
	sk := mustKey(t)
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapInuse
	}
	for _, size := range []int{1 << 10, 64 << 10} {
		rep := newRep(t, sk, mangos.OptionRecvDeadline, 50*time.Millisecond)
		addr := atkListen(t, rep, "tcp://127.0.0.1:0")
		rep.Recv() // starts the dispatch; the application reads nothing afterwards
		base := heap()
		client := newReq(t, sk.Public(), mangos.OptionBestEffort, true, mangos.OptionRetryTime, time.Duration(0))
		if err := client.Dial(addr); err != nil {
			t.Fatal(err)
		}
		const n = 2000
		body := make([]byte, size)
		var ctxs []mangos.Context
		for i := 0; i < n; i++ {
			c, err := client.OpenContext()
			if err != nil {
				t.Fatal(err)
			}
			ctxs = append(ctxs, c)
			if err := c.Send(body); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(2 * time.Second)
		d := rep.disp.Load()
		peak := heap()
		t.Logf("%d B requests: %d sent, not read by the application; opened by the dispatch %d, backlog %d of %d; heap in use +%.1f MiB (client and server in one process)",
			size, n, rep.Stats().Opened, len(d.backlog), cap(d.backlog), float64(peak-base)/(1<<20))
		for _, c := range ctxs {
			c.Close()
		}
		client.Close()
		rep.Close()
	}
	// Junk: dropped as it is read.
	rep := newRep(t, sk, mangos.OptionRecvDeadline, 50*time.Millisecond)
	addr := atkListen(t, rep, "tcp://127.0.0.1:0")
	rep.Recv()
	base := heap()
	stop := make(chan struct{})
	sent := flood(t, addr, append([]byte{0x09}, make([]byte, 1<<10)...), 20000, stop)
	time.Sleep(2 * time.Second)
	peak := heap()
	close(stop)
	t.Logf("junk flood of 1 KiB at 20,000/s: %d sent, %d rejected; heap in use +%.1f MiB", sent.Load(), rep.Stats().TotalRejected(), float64(peak-base)/(1<<20))
}
