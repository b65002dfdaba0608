package main

// The PUB/SUB measure (mode "pubsub", run alone): one publisher sending
// as fast as it can to 1 or 8 subscribers, sealed (secsock Publisher and
// Subscriber, SPEC.md §18, blinded topics) and plain mangos PUB/SUB side
// by side, interleaved per repetition; and the bytes each adds per
// message.

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/secsock/secsock"
	"go.nanomsg.org/mangos/v3"
	"go.nanomsg.org/mangos/v3/protocol/pub"
	"go.nanomsg.org/mangos/v3/protocol/sub"
)

const psTopic = "bench"

// psFixture is one publisher and its subscribers, connected.
type psFixture struct {
	sealed  bool
	pubSock mangos.Socket
	pub     *secsock.Publisher // sealed only
	subs    []mangos.Socket    // plain
	ssubs   []*secsock.Subscriber
	closers []func()
}

func (f *psFixture) close() {
	for _, c := range slices.Backward(f.closers) {
		c()
	}
}

func newPSFixture(sealed bool, n int, transport, dir string) (*psFixture, error) {
	f := &psFixture{sealed: sealed}
	if !sealed {
		p, err := pub.NewSocket()
		if err != nil {
			return nil, err
		}
		f.pubSock = p
		f.closers = append(f.closers, func() { p.Close() })
		for i := 0; i < n; i++ {
			s, err := sub.NewSocket()
			if err != nil {
				f.close()
				return nil, err
			}
			f.closers = append(f.closers, func() { s.Close() })
			if err := setAll(s, mangos.OptionSubscribe, []byte(psTopic), mangos.OptionMaxRecvSize, maxRecv,
				mangos.OptionRecvDeadline, 100*time.Millisecond); err != nil {
				f.close()
				return nil, err
			}
			if err := connect(p, s, transport, dir); err != nil {
				f.close()
				return nil, err
			}
			f.subs = append(f.subs, s)
		}
		return f, f.sync()
	}
	sign, err := secsock.GenerateSigningKey()
	if err != nil {
		return nil, err
	}
	svc, err := secsock.GenerateKey()
	if err != nil {
		return nil, err
	}
	var subKeys []secsock.SecretKey
	var pubs []secsock.PublicKey
	for i := 0; i < n; i++ {
		k, err := secsock.GenerateKey()
		if err != nil {
			return nil, err
		}
		subKeys, pubs = append(subKeys, k), append(pubs, k.Public())
	}
	ks, err := secsock.NewKeyService(secsock.KeyServiceConfig{Publisher: sign.Public(), Subscribers: pubs})
	if err != nil {
		return nil, err
	}
	rep, err := secsock.NewRepSocket()
	if err != nil {
		return nil, err
	}
	f.closers = append(f.closers, func() { rep.Close() })
	if err := setAll(rep, secsock.OptionMechanism, secsock.MechanismCurve, secsock.OptionSecretKey, svc); err != nil {
		f.close()
		return nil, err
	}
	svcAddr := fmt.Sprintf("inproc://secsock-bench-keys-%d", inprocSeq.Add(1))
	if err := rep.Listen(svcAddr); err != nil {
		f.close()
		return nil, err
	}
	go ks.Serve(rep) //nolint:errcheck // ends when rep closes
	if f.pub, err = secsock.NewPublisher(secsock.PublisherConfig{Signing: sign, Keys: ks}); err != nil {
		f.close()
		return nil, err
	}
	f.pubSock = f.pub.Socket()
	f.closers = append(f.closers, func() { f.pub.Close() })
	for _, k := range subKeys {
		req, err := secsock.NewReqSocket()
		if err != nil {
			f.close()
			return nil, err
		}
		f.closers = append(f.closers, func() { req.Close() })
		if err := setAll(req, secsock.OptionMechanism, secsock.MechanismCurve, secsock.OptionServerKey, svc.Public(),
			secsock.OptionSecretKey, k, mangos.OptionRecvDeadline, 5*time.Second); err != nil {
			f.close()
			return nil, err
		}
		if err := req.Dial(svcAddr); err != nil {
			f.close()
			return nil, err
		}
		s, err := secsock.NewSubscriber(secsock.SubscriberConfig{Publishers: map[secsock.PublisherKey]*secsock.Socket{sign.Public(): req}})
		if err != nil {
			f.close()
			return nil, err
		}
		f.closers = append(f.closers, func() { s.Close() })
		if err := setAll(s.Socket(), mangos.OptionMaxRecvSize, maxRecv, mangos.OptionRecvDeadline, 100*time.Millisecond); err != nil {
			f.close()
			return nil, err
		}
		if err := s.Subscribe(psTopic); err != nil {
			f.close()
			return nil, err
		}
		if err := connect(f.pubSock, s.Socket(), transport, dir); err != nil {
			f.close()
			return nil, err
		}
		f.ssubs = append(f.ssubs, s)
	}
	return f, f.sync()
}

func (f *psFixture) nsubs() int { return max(len(f.subs), len(f.ssubs)) }

func (f *psFixture) recv(i int) error {
	if f.sealed {
		_, err := f.ssubs[i].Recv()
		return err
	}
	_, err := f.subs[i].Recv()
	return err
}

func (f *psFixture) send(b []byte) error {
	if f.sealed {
		return f.pub.Publish(psTopic, b)
	}
	return f.pubSock.Send(append([]byte(psTopic), b...))
}

// sync publishes until every subscriber has received one message
// (connections are asynchronous).
func (f *psFixture) sync() error {
	for i := 0; i < f.nsubs(); i++ {
		ok := false
		for try := 0; try < 100 && !ok; try++ {
			if err := f.send([]byte("sync")); err != nil {
				return err
			}
			ok = f.recv(i) == nil
		}
		if !ok {
			return fmt.Errorf("subscriber %d never received", i)
		}
	}
	for i := 0; i < f.nsubs(); i++ { // drain
		for f.recv(i) == nil {
		}
	}
	return nil
}

// run publishes b for d and returns messages published per second and
// messages delivered per second per subscriber (mean over subscribers).
func (f *psFixture) run(b []byte, d time.Duration) (sent, perSub float64, err error) {
	var stop atomic.Bool
	var got atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < f.nsubs(); i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for {
				err := f.recv(i)
				if err == nil {
					got.Add(1)
					continue
				}
				if stop.Load() || !errors.Is(err, mangos.ErrRecvTimeout) {
					return
				}
			}
		}(i)
	}
	start := time.Now()
	n := 0
	for time.Since(start) < d {
		if err = f.send(b); err != nil {
			break
		}
		n++
	}
	elapsed := time.Since(start)
	stop.Store(true)
	wg.Wait() // receivers drain what is queued, then time out
	return float64(n) / elapsed.Seconds(), float64(got.Load()) / float64(f.nsubs()) / elapsed.Seconds(), err
}

// added is the bytes a message of b gains on the wire.
func (f *psFixture) added(b []byte) (int, error) {
	if !f.sealed {
		return len(psTopic), nil
	}
	m, err := f.pub.Seal(psTopic, b)
	return len(m) - len(b), err
}

// runPubSubMeasure writes the PUB/SUB tables to w.
func runPubSubMeasure(o *options, dir string, w io.Writer, progress func(string, ...any)) error {
	type key struct {
		t      string
		p, n   int
		sealed bool
	}
	fx := map[key]*psFixture{}
	defer func() {
		for _, f := range fx {
			f.close()
		}
	}()
	counts := []int{1, 8}
	for _, t := range o.transports {
		for _, n := range counts {
			for _, sealed := range []bool{false, true} {
				f, err := newPSFixture(sealed, n, t, dir)
				if err != nil {
					return fmt.Errorf("PUB/SUB fixture %s %d sealed=%v: %w", t, n, sealed, err)
				}
				for _, p := range o.payloads {
					fx[key{t, p, n, sealed}] = f
				}
			}
		}
	}
	sent, perSub, ratio := map[key][]float64{}, map[key][]float64{}, map[key][]float64{}
	for r := 0; r < o.reps; r++ {
		progress("pubsub repetition %d/%d", r+1, o.reps)
		for _, t := range o.transports {
			for _, p := range o.payloads {
				b := make([]byte, p)
				for _, n := range counts {
					order := []bool{r%2 == 1, r%2 == 0}
					var got [2]float64
					for _, sealed := range order {
						k := key{t, p, n, sealed}
						s, ps, err := fx[k].run(b, o.dur)
						if err != nil {
							return fmt.Errorf("PUB/SUB %s %d B %d subscribers sealed=%v: %w", t, p, n, sealed, err)
						}
						sent[k], perSub[k] = append(sent[k], s), append(perSub[k], ps)
						got[map[bool]int{false: 0, true: 1}[sealed]] = ps
					}
					if got[0] > 0 {
						k := key{t, p, n, true}
						ratio[k] = append(ratio[k], got[1]/got[0])
					}
				}
			}
		}
	}
	fmt.Fprintf(w, "secsock-bench -modes pubsub: %d repetitions, %v per cell, plain and sealed interleaved (order alternating). Cells: median (min–max) over repetitions; ratios per repetition.\n\n", o.reps, o.dur)
	fmt.Fprintln(w, "#### PUB/SUB: messages/s delivered to each subscriber, and published (higher is better)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| transport | payload | subscribers | plain, per subscriber | sealed, per subscriber | sealed/plain | plain, published | sealed, published | bytes added plain | bytes added sealed |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, t := range o.transports {
		for _, p := range o.payloads {
			for _, n := range counts {
				kp, ks := key{t, p, n, false}, key{t, p, n, true}
				ap, _ := fx[kp].added(make([]byte, p))
				as, _ := fx[ks].added(make([]byte, p))
				rs := ratio[ks]
				sort.Float64s(rs)
				rv := "–"
				if len(rs) > 0 {
					rv = fmt.Sprintf("**%.2f** (%.2f–%.2f)", rs[len(rs)/2], rs[0], rs[len(rs)-1])
				}
				fmt.Fprintf(w, "| %s | %s | %d | %s | %s | %s | %s | %s | %d | %d |\n", t, sizeName(p), n,
					cellValue(perSub[kp]), cellValue(perSub[ks]), rv, cellValue(sent[kp]), cellValue(sent[ks]), ap, as)
			}
		}
	}
	return nil
}
