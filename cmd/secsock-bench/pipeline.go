package main

// The pipeline measure (mode "pipe"): one PUSH socket sending as fast as
// it can to one PULL worker, sealed (secsock PUSH/PULL, SPEC.md §15) and
// plain mangos PUSH/PULL side by side, and the bytes sealing adds to each
// message as a tap on the wire sees them.

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/secsock/secsock"
	"go.nanomsg.org/mangos/v3"
	"go.nanomsg.org/mangos/v3/protocol/pull"
	"go.nanomsg.org/mangos/v3/protocol/push"
)

// pipeKey names a pipeline fixture: transport and variant.
type pipeKey struct{ t, v string }

// pipeFixture is a connected PUSH and PULL pair of one variant.
type pipeFixture struct {
	v          variant
	transport  string
	push, pull mangos.Socket
	tap        mangos.Socket // a plain PULL the pusher also reaches, for the wire size
	tapPush    mangos.Socket // a PUSH of the same variant dialed to the tap only
}

// pipeVariant reports whether v has a pipeline form: plain and curve
// variants without TLS or epoch keys (a pusher's epoch keys come from a
// REQ ping, measured by the REQ/REP tables).
func pipeVariant(v variant) bool { return !v.tls && !v.epochs }

func newPipeFixture(v variant, transport, dir string, k *keys) (*pipeFixture, error) {
	f := &pipeFixture{v: v, transport: transport}
	var err error
	if f.pull, err = f.newSocket(false, k); err != nil {
		return nil, err
	}
	if f.push, err = f.newSocket(true, k); err != nil {
		f.close()
		return nil, err
	}
	if err := connect(f.pull, f.push, transport, dir); err != nil {
		f.close()
		return nil, err
	}
	if f.tap, err = pull.NewSocket(); err != nil {
		f.close()
		return nil, err
	}
	if f.tapPush, err = f.newSocket(true, k); err != nil {
		f.close()
		return nil, err
	}
	if err := connect(f.tap, f.tapPush, transport, dir); err != nil {
		f.close()
		return nil, err
	}
	return f, setAll(f.tap, mangos.OptionMaxRecvSize, maxRecv, mangos.OptionRecvDeadline, 20*time.Second)
}

// connect makes l listen on a fresh address of transport and d dial it.
func connect(l, d mangos.Socket, transport, dir string) error {
	addr := ""
	switch transport {
	case "inproc":
		addr = fmt.Sprintf("inproc://secsock-bench-pipe-%d", inprocSeq.Add(1))
	case "ipc":
		addr = fmt.Sprintf("ipc://%s/p%d.sock", dir, inprocSeq.Add(1))
	case "tcp":
		addr = "tcp://127.0.0.1:0"
	}
	ln, err := l.NewListener(addr, nil)
	if err != nil {
		return err
	}
	if err := ln.Listen(); err != nil {
		return err
	}
	return d.Dial(ln.Address())
}

// newSocket makes a PUSH (sender) or PULL socket of f's variant.
func (f *pipeFixture) newSocket(sender bool, k *keys) (mangos.Socket, error) {
	var s mangos.Socket
	var err error
	switch {
	case f.v.curve && sender:
		var ss *secsock.Socket
		if ss, err = secsock.NewPushSocket(); err == nil {
			s = ss
			err = setAll(s, secsock.OptionMechanism, secsock.MechanismCurve,
				secsock.OptionServerKey, k.server.Public(), secsock.OptionCipher, f.v.cipher)
			if err == nil && f.v.vouched {
				err = s.SetOption(secsock.OptionSecretKey, k.client)
			}
		}
	case f.v.curve:
		var ss *secsock.Socket
		if ss, err = secsock.NewPullSocket(); err == nil {
			s = ss
			err = setAll(s, secsock.OptionMechanism, secsock.MechanismCurve, secsock.OptionSecretKey, k.server)
		}
	case sender:
		s, err = push.NewSocket()
	default:
		s, err = pull.NewSocket()
	}
	if err != nil {
		if s != nil {
			s.Close()
		}
		return nil, err
	}
	if sender {
		err = setAll(s, mangos.OptionSendDeadline, 20*time.Second)
	} else {
		err = setAll(s, mangos.OptionMaxRecvSize, maxRecv, mangos.OptionRecvDeadline, 20*time.Second)
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (f *pipeFixture) close() {
	for _, s := range []mangos.Socket{f.push, f.pull, f.tap, f.tapPush} {
		if s != nil {
			s.Close()
		}
	}
}

// overhead returns the bytes a message of payload has on the wire (as the
// tap receives it) beyond the payload.
func (f *pipeFixture) overhead(payload []byte) (int, error) {
	if err := f.tapPush.Send(payload); err != nil {
		return 0, err
	}
	b, err := f.tap.Recv()
	if err != nil {
		return 0, err
	}
	return len(b) - len(payload), nil
}

// throughput has the pusher send payload as fast as it can for d and
// returns the messages per second the PULL worker received (opened and
// checked, for secsock) in that time. Messages still queued at the end
// are drained, not counted.
func (f *pipeFixture) throughput(payload []byte, d time.Duration) (float64, error) {
	var stop atomic.Bool
	var sendErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			if err := f.push.Send(payload); err != nil {
				sendErr = err
				return
			}
		}
	}()
	n := 0
	start := time.Now()
	for time.Since(start) < d {
		if _, err := f.pull.Recv(); err != nil {
			stop.Store(true)
			wg.Wait()
			return 0, err
		}
		n++
	}
	elapsed := time.Since(start)
	stop.Store(true)
	// The pusher may block on a full queue: keep receiving until it stops.
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	f.pull.SetOption(mangos.OptionRecvDeadline, 50*time.Millisecond)
	defer f.pull.SetOption(mangos.OptionRecvDeadline, 20*time.Second)
	for drained := false; !drained; {
		select {
		case <-done:
			drained = true
		default:
			f.pull.Recv()
		}
	}
	for {
		if _, err := f.pull.Recv(); errors.Is(err, mangos.ErrRecvTimeout) {
			break
		} else if err != nil {
			return 0, err
		}
	}
	if sendErr != nil {
		return 0, sendErr
	}
	return float64(n) / elapsed.Seconds(), nil
}

// measurePipes runs the pipeline measure of one repetition r over
// transport t: every variant for every payload, interleaved.
func measurePipes(res *results, o *options, t string, r int, vs []variant, pipes map[pipeKey]*pipeFixture, payloads map[int][]byte) error {
	for _, p := range o.payloads {
		rotate(vs, r)
		for _, v := range vs {
			f := pipes[pipeKey{t, v.Name}]
			x, err := f.throughput(payloads[p], o.dur)
			if err != nil {
				return fmt.Errorf("PUSH/PULL throughput %s %s %d: %w", v.Name, t, p, err)
			}
			over, err := f.overhead(payloads[p])
			if err != nil {
				return fmt.Errorf("PUSH/PULL overhead %s %s %d: %w", v.Name, t, p, err)
			}
			res.add(t, p, v.Name, "pipe_mps", x)
			res.add(t, p, v.Name, "pipe_MBps", x*float64(p)/1e6)
			res.add(t, p, v.Name, "pipe_over_B", float64(over))
		}
	}
	return nil
}
