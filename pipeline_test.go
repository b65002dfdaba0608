package secsock

// Sealed PUSH/PULL (SPEC.md §15): each test plays the attacker (or the
// network) and would fail without the defence it names.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.nanomsg.org/mangos/v3"
	"go.nanomsg.org/mangos/v3/protocol/pull"
	"go.nanomsg.org/mangos/v3/protocol/push"
	"go.nanomsg.org/mangos/v3/protocol/rep"
	"go.nanomsg.org/mangos/v3/protocol/xpull"
	"go.nanomsg.org/mangos/v3/protocol/xpush"
	_ "go.nanomsg.org/mangos/v3/transport/all"

	"github.com/secsock/secsock/internal/wire"
	"github.com/secsock/secsock/replaystore"
)

// pullWorker is a curve PULL socket with every hook event kept.
type pullWorker struct {
	*Socket
	mu     sync.Mutex
	events []Event
}

func newPullWorker(t testing.TB, key SecretKey, opts ...any) *pullWorker {
	t.Helper()
	s, err := NewPullSocket()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	w := &pullWorker{Socket: s}
	mustSet(t, s, OptionMechanism, MechanismCurve, OptionSecretKey, key, mangos.OptionRecvDeadline, 10*time.Second,
		OptionEventHook, func(ev Event) {
			w.mu.Lock()
			w.events = append(w.events, ev)
			w.mu.Unlock()
		})
	mustSet(t, s, opts...)
	return w
}

// rejected returns the events of Kind EventRejected so far.
func (w *pullWorker) rejected() []Event {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []Event
	for _, e := range w.events {
		if e.Kind == EventRejected {
			out = append(out, e)
		}
	}
	return out
}

func newPusher(t testing.TB, server PublicKey, opts ...any) *Socket {
	t.Helper()
	s, err := NewPushSocket()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	mustSet(t, s, OptionMechanism, MechanismCurve, OptionServerKey, server, mangos.OptionSendDeadline, 10*time.Second)
	mustSet(t, s, opts...)
	return s
}

// plainSocket makes an unwrapped mangos socket with open.
func plainSocket(t testing.TB, open func() (mangos.Socket, error)) mangos.Socket {
	t.Helper()
	s, err := open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// capturePush returns the wire bytes of body as pusher seals it: the
// pusher sends to a plain PULL socket, as a tap on the path would see it.
func capturePush(t testing.TB, pusher *Socket, body []byte) []byte {
	t.Helper()
	tap := plainSocket(t, pull.NewSocket)
	addr := inprocAddr(t)
	if err := tap.Listen(addr); err != nil {
		t.Fatal(err)
	}
	if err := pusher.Dial(addr); err != nil {
		t.Fatal(err)
	}
	if err := pusher.Send(body); err != nil {
		t.Fatal(err)
	}
	tap.SetOption(mangos.OptionRecvDeadline, 5*time.Second)
	b, err := tap.Recv()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pushInjector is a plain PUSH socket connected to w: it sends bytes as they
// are, as an attacker on the path would.
func pushInjector(t testing.TB, w *pullWorker) mangos.Socket {
	t.Helper()
	addr := inprocAddr(t)
	if err := w.Listen(addr); err != nil {
		t.Fatal(err)
	}
	in := plainSocket(t, push.NewSocket)
	in.SetOption(mangos.OptionSendDeadline, 5*time.Second)
	if err := in.Dial(addr); err != nil {
		t.Fatal(err)
	}
	return in
}

// expectNothing checks that w delivers nothing more within a short wait
// (a dropped message never reaches Recv).
func expectNothing(t testing.TB, w *pullWorker) {
	t.Helper()
	mustSet(t, w, mangos.OptionRecvDeadline, 150*time.Millisecond)
	defer mustSet(t, w, mangos.OptionRecvDeadline, 10*time.Second)
	if b, err := w.Recv(); !errors.Is(err, mangos.ErrRecvTimeout) {
		t.Fatalf("PULL delivered %q (err %v), want nothing", b, err)
	}
}

// waitRejected receives on w (bounded) until it counted n rejections for
// reason; a message delivered meanwhile fails the test.
func waitRejected(t testing.TB, w *pullWorker, reason Reason, n uint64) {
	t.Helper()
	mustSet(t, w, mangos.OptionRecvDeadline, 20*time.Millisecond)
	defer mustSet(t, w, mangos.OptionRecvDeadline, 10*time.Second)
	for i := 0; i < 250; i++ {
		if w.Stats().Rejected[reason] >= n {
			return
		}
		if b, err := w.Recv(); err == nil {
			t.Fatalf("PULL delivered %q, want it dropped", b)
		}
	}
	t.Fatalf("rejected %v, want %d × %s", w.Stats().Rejected, n, reason)
}

func TestPushPullDelivers(t *testing.T) {
	srv, me := mustKey(t), mustKey(t)
	for _, tc := range []struct {
		name       string
		pull, push []any
	}{
		{"anonymous", nil, nil},
		{"aesgcm", nil, []any{OptionCipher, CipherAESGCM}},
		{"vouched-authorized", []any{OptionAuthorizedKeys, []PublicKey{me.Public()}}, []any{OptionSecretKey, me}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newPullWorker(t, srv, tc.pull...)
			addr := inprocAddr(t)
			if err := w.Listen(addr); err != nil {
				t.Fatal(err)
			}
			p := newPusher(t, srv.Public(), tc.push...)
			if err := p.Dial(addr); err != nil {
				t.Fatal(err)
			}
			for i := range 5 {
				body := fmt.Appendf(nil, "job %d", i)
				if err := p.Send(body); err != nil {
					t.Fatal(err)
				}
				got, err := w.Recv()
				if err != nil || !bytes.Equal(got, body) {
					t.Fatalf("Recv = %q, %v; want %q", got, err, body)
				}
			}
			if st := p.Stats(); st.Sealed != 5 {
				t.Fatalf("pusher sealed %d, want 5", st.Sealed)
			}
			if st := w.Stats(); st.Opened != 5 || st.TotalRejected() != 0 {
				t.Fatalf("worker stats %+v", st)
			}
		})
	}
}

// TestPushIsSealed: the bytes on the path are a PUSH message (kind 0x05,
// or 0x06 vouched), not the body.
func TestPushIsSealed(t *testing.T) {
	srv, me := mustKey(t), mustKey(t)
	body := []byte("secret job")
	b := capturePush(t, newPusher(t, srv.Public()), body)
	if bytes.Contains(b, body) || b[0] != wire.Version || b[1] != wire.KindPush || len(b) != len(body)+wire.AnonOverhead {
		t.Fatalf("wire bytes %x", b)
	}
	b = capturePush(t, newPusher(t, srv.Public(), OptionSecretKey, me), body)
	if b[1] != wire.KindPushVouched || len(b) != len(body)+wire.VouchOverhead {
		t.Fatalf("vouched wire bytes %x", b)
	}
}

func TestPullDropsReplay(t *testing.T) {
	srv := mustKey(t)
	b := capturePush(t, newPusher(t, srv.Public()), []byte("pay 10"))
	w := newPullWorker(t, srv)
	in := pushInjector(t, w)
	for range 4 {
		if err := in.Send(b); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := w.Recv(); err != nil || string(got) != "pay 10" {
		t.Fatalf("first copy: %q, %v", got, err)
	}
	expectNothing(t, w)
	waitRejected(t, w, ReasonReplayed, 3)
	if ev := w.rejected(); len(ev) != 3 || ev[0].Reason != ReasonReplayed || ev[0].Time.IsZero() {
		t.Fatalf("events %+v, want 3 replayed", ev)
	}
}

// TestPullDropsForged: any changed byte of a captured message (header,
// identity box, body box) and it does not open, or does not parse.
func TestPullDropsForged(t *testing.T) {
	srv, me := mustKey(t), mustKey(t)
	b := capturePush(t, newPusher(t, srv.Public(), OptionSecretKey, me), []byte("job"))
	w := newPullWorker(t, srv)
	in := pushInjector(t, w)
	positions := []int{1, 2, 3, 40, 50, 60, 54 + 88 - 1, len(b) - 1}
	for _, i := range positions {
		f := bytes.Clone(b)
		f[i] ^= 0x01
		if err := in.Send(f); err != nil {
			t.Fatal(err)
		}
	}
	expectNothing(t, w)
	waitRejected(t, w, ReasonForged, 1)
	if st := w.Stats(); st.TotalRejected() != uint64(len(positions)) {
		t.Fatalf("rejected %v, want %d", st.Rejected, len(positions))
	}
	if err := in.Send(b); err != nil { // the original still opens: nothing consumed it
		t.Fatal(err)
	}
	if got, err := w.Recv(); err != nil || string(got) != "job" {
		t.Fatalf("original: %q, %v", got, err)
	}
}

func TestPullUnauthorizedSender(t *testing.T) {
	srv, friend, stranger := mustKey(t), mustKey(t), mustKey(t)
	w := newPullWorker(t, srv, OptionAuthorizedKeys, []PublicKey{friend.Public()})
	addr := inprocAddr(t)
	if err := w.Listen(addr); err != nil {
		t.Fatal(err)
	}
	for _, opts := range [][]any{{OptionSecretKey, stranger}, nil} {
		p := newPusher(t, srv.Public(), opts...)
		if err := p.Dial(addr); err != nil {
			t.Fatal(err)
		}
		if err := p.Send([]byte("let me in")); err != nil {
			t.Fatal(err) // a pusher cannot know: the drop is on the PULL side only
		}
		waitRejected(t, w, ReasonNotAuthorized, uint64(len(w.rejected())+1))
	}
	ev := w.rejected()
	if len(ev) != 2 || ev[0].Peer != stranger.Public() || !ev[1].Peer.IsZero() {
		t.Fatalf("events %+v: want the stranger's proven key, then an anonymous one", ev)
	}
	p := newPusher(t, srv.Public(), OptionSecretKey, friend)
	if err := p.Dial(addr); err != nil {
		t.Fatal(err)
	}
	if err := p.Send([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if got, err := w.Recv(); err != nil || string(got) != "hello" {
		t.Fatalf("friend: %q, %v", got, err)
	}
}

// TestPullReencodedKeys: a captured message under each of the 15 other
// encodings of its C' opens nothing; the pusher refuses the other
// encodings of the server key, and the PULL side those of an authorized
// key (SPEC.md §4.1).
func TestPullReencodedKeys(t *testing.T) {
	srv, me := mustKey(t), mustKey(t)
	b := capturePush(t, newPusher(t, srv.Public()), []byte("once"))
	w := newPullWorker(t, srv)
	in := pushInjector(t, w)
	var eph [32]byte
	copy(eph[:], b[4:36])
	encs := atkEquivalents(t, eph)
	if len(encs) != 16 {
		t.Fatalf("%d encodings", len(encs))
	}
	for _, e := range encs[1:] {
		f := bytes.Clone(b)
		copy(f[4:36], e[:])
		if err := in.Send(f); err != nil {
			t.Fatal(err)
		}
	}
	expectNothing(t, w)
	st := w.Stats()
	if st.Rejected[ReasonMalformed]+st.Rejected[ReasonForged] != 15 {
		t.Fatalf("rejected %v, want 15 malformed or forged", st.Rejected)
	}
	if err := in.Send(b); err != nil {
		t.Fatal(err)
	}
	if got, err := w.Recv(); err != nil || string(got) != "once" {
		t.Fatalf("original after its encodings: %q, %v", got, err)
	}
	p, err := NewPushSocket()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for i, e := range atkEquivalents(t, [32]byte(srv.Public())) {
		if err := p.SetOption(OptionServerKey, PublicKey(e)); (err == nil) != (i == 0) {
			t.Errorf("server key encoding %d: SetOption = %v", i, err)
		}
	}
	for i, e := range atkEquivalents(t, [32]byte(me.Public()))[1:] {
		if err := w.SetOption(OptionAuthorizedKeys, []PublicKey{PublicKey(e)}); err == nil {
			t.Errorf("authorized key encoding %d accepted", i+1)
		}
	}
}

// TestCrossPattern: a PUSH message is never accepted as a REQ request,
// nor a request as a PUSH message, as sent or with its kind byte
// relabelled (SPEC.md §15: other kinds and another key).
func TestCrossPattern(t *testing.T) {
	srv := mustKey(t)
	t.Run("push-to-rep", func(t *testing.T) {
		b := capturePush(t, newPusher(t, srv.Public()), []byte("job"))
		r := newRep(t, srv)
		addr := inprocAddr(t)
		if err := r.Listen(addr); err != nil {
			t.Fatal(err)
		}
		go func() {
			for {
				if _, err := r.Recv(); errors.Is(err, mangos.ErrClosed) {
					return
				}
			}
		}()
		raw, err := NewReqSocket() // mechanism none: sends bytes as they are
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		mustSet(t, raw, mangos.OptionRecvDeadline, 300*time.Millisecond, mangos.OptionRetryTime, time.Duration(0))
		if err := raw.Dial(addr); err != nil {
			t.Fatal(err)
		}
		relabelled := bytes.Clone(b)
		relabelled[1] = wire.KindRequest
		raw.Send(b)
		if _, err := raw.Recv(); !errors.Is(err, mangos.ErrRecvTimeout) {
			t.Fatalf("REP answered a PUSH message: %v", err)
		}
		raw.Send(relabelled)
		if ans, err := raw.Recv(); err != nil || !bytes.Equal(ans, []byte{wire.Version, wire.KindHint, wire.HintCannotOpen}) {
			t.Fatalf("relabelled PUSH: answer %x, %v; want the CANNOT_OPEN hint", ans, err)
		}
		st := r.Stats()
		if st.Opened != 0 || st.Rejected[ReasonUnknownKind] != 1 || st.Rejected[ReasonForged] != 1 {
			t.Fatalf("REP stats %+v", st)
		}
	})
	t.Run("request-to-pull", func(t *testing.T) {
		tap := plainSocket(t, rep.NewSocket)
		addr := inprocAddr(t)
		if err := tap.Listen(addr); err != nil {
			t.Fatal(err)
		}
		q := newReq(t, srv.Public(), mangos.OptionRecvDeadline, 50*time.Millisecond, OptionAdvisoryGrace, time.Duration(0), OptionEpochs, EpochsOff)
		if err := q.Dial(addr); err != nil {
			t.Fatal(err)
		}
		go q.Send([]byte("job"))
		tap.SetOption(mangos.OptionRecvDeadline, 5*time.Second)
		b, err := tap.Recv()
		if err != nil {
			t.Fatal(err)
		}
		w := newPullWorker(t, srv)
		in := pushInjector(t, w)
		relabelled := bytes.Clone(b)
		relabelled[1] = wire.KindPush
		in.Send(b)
		in.Send(relabelled)
		expectNothing(t, w)
		waitRejected(t, w, ReasonForged, 1)
		if st := w.Stats(); st.Rejected[ReasonUnknownKind] != 1 {
			t.Fatalf("PULL stats %+v", st)
		}
	})
}

// TestAuthenticateOnPipeline: a pusher cannot check its credentials
// (nothing answers); Authenticate says so with a typed error.
func TestAuthenticateOnPipeline(t *testing.T) {
	srv := mustKey(t)
	p := newPusher(t, srv.Public())
	if err := p.Authenticate(); !errors.Is(err, mangos.ErrProtoOp) {
		t.Fatalf("PUSH Authenticate = %v, want mangos.ErrProtoOp", err)
	}
	w := newPullWorker(t, srv)
	if err := w.Authenticate(); !errors.Is(err, mangos.ErrProtoOp) {
		t.Fatalf("PULL Authenticate = %v, want mangos.ErrProtoOp", err)
	}
	if err := w.Send([]byte("x")); !errors.Is(err, mangos.ErrProtoOp) {
		t.Fatalf("PULL Send = %v, want mangos.ErrProtoOp", err)
	}
}

// device runs a raw PULL/PUSH device from front (pushers dial it) to back
// (PULL workers dial it) until stopped.
type device struct{ front, back mangos.Socket }

func startDevice(t testing.TB, front, back string) *device {
	t.Helper()
	d := &device{}
	var err error
	if d.front, err = xpull.NewSocket(); err != nil {
		t.Fatal(err)
	}
	if d.back, err = xpush.NewSocket(); err != nil {
		t.Fatal(err)
	}
	if err := d.front.Listen(front); err != nil {
		t.Fatal(err)
	}
	if err := d.back.Listen(back); err != nil {
		t.Fatal(err)
	}
	if err := mangos.Device(d.front, d.back); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.stop)
	return d
}

func (d *device) stop() { d.front.Close(); d.back.Close() }

// collect receives from each worker until n messages arrived in all, and
// returns how many each delivered, by body.
func collect(t testing.TB, n int, workers ...*pullWorker) []map[string]int {
	t.Helper()
	got := make([]map[string]int, len(workers))
	var mu sync.Mutex
	total := 0
	var wg sync.WaitGroup
	done := make(chan struct{})
	for i, w := range workers {
		got[i] = map[string]int{}
		mustSet(t, w, mangos.OptionRecvDeadline, 200*time.Millisecond)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 400 { // bounded: 80 s at most
				select {
				case <-done:
					return
				default:
				}
				b, err := w.Recv()
				if err != nil {
					continue
				}
				mu.Lock()
				got[i][string(b)]++
				total++
				if total == n {
					close(done)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if total != n {
		t.Fatalf("received %d of %d", total, n)
	}
	return got
}

// TestPullWorkersBehindDevice: two PULL workers behind a raw device share
// the load; each message is delivered once, by one of them, and opens
// the same whatever the hop.
func TestPullWorkersBehindDevice(t *testing.T) {
	srv, me := mustKey(t), mustKey(t)
	front, back := inprocAddr(t), inprocAddr(t)
	startDevice(t, front, back)
	var workers []*pullWorker
	for range 2 {
		w := newPullWorker(t, srv, OptionAuthorizedKeys, []PublicKey{me.Public()})
		if err := w.Dial(back); err != nil {
			t.Fatal(err)
		}
		workers = append(workers, w)
	}
	p := newPusher(t, srv.Public(), OptionSecretKey, me)
	if err := p.Dial(front); err != nil {
		t.Fatal(err)
	}
	const n = 200
	go func() {
		for i := range n {
			p.Send(fmt.Appendf(nil, "job %d", i))
		}
	}()
	got := collect(t, n, workers...)
	for i := range n {
		key := fmt.Sprintf("job %d", i)
		if got[0][key]+got[1][key] != 1 {
			t.Fatalf("%s delivered %d + %d times", key, got[0][key], got[1][key])
		}
	}
	if len(got[0]) == 0 || len(got[1]) == 0 {
		t.Fatalf("no load balancing: %d and %d messages", len(got[0]), len(got[1]))
	}
	for _, w := range workers {
		if st := w.Stats(); st.TotalRejected() != 0 {
			t.Fatalf("a worker rejected %v", st.Rejected)
		}
	}
}

// TestPullDeviceRestart: the device restarts on the same addresses; the
// pusher and the worker reconnect, the pusher keeps its short-term key
// and counters, and the worker's replay state accepts what follows.
func TestPullDeviceRestart(t *testing.T) {
	srv := mustKey(t)
	dir := t.TempDir()
	front, back := "ipc://"+filepath.Join(dir, "front"), "ipc://"+filepath.Join(dir, "back")
	d := startDevice(t, front, back)
	w := newPullWorker(t, srv)
	mustSet(t, w, mangos.OptionReconnectTime, 20*time.Millisecond)
	if err := w.Dial(back); err != nil {
		t.Fatal(err)
	}
	p := newPusher(t, srv.Public(), mangos.OptionReconnectTime, 20*time.Millisecond)
	if err := p.Dial(front); err != nil {
		t.Fatal(err)
	}
	send := func(from, to int) {
		for i := from; i < to; i++ {
			if err := p.Send(fmt.Appendf(nil, "job %d", i)); err != nil {
				t.Errorf("send %d: %v", i, err)
			}
		}
	}
	send(0, 10)
	collect(t, 10, w)
	d.stop()
	startDevice(t, front, back)
	// A message sent while the old device went away can be lost with its
	// pipe (PUSH/PULL is at most once): probe until the path is back.
	mustSet(t, w, mangos.OptionRecvDeadline, 100*time.Millisecond)
	probes := 0
	for ; probes < 100; probes++ {
		if err := p.Send([]byte("probe")); err != nil {
			t.Fatal(err)
		}
		if b, err := w.Recv(); err == nil && string(b) == "probe" {
			break
		}
	}
	for { // drain the probes still on their way
		if _, err := w.Recv(); err != nil {
			break
		}
	}
	go send(10, 20)
	got := collect(t, 10, w)[0]
	for i := 10; i < 20; i++ {
		if got[fmt.Sprintf("job %d", i)] != 1 {
			t.Fatalf("after the restart: %v", got)
		}
	}
	if probes == 100 {
		t.Fatal("the path did not come back after the device restart")
	}
	if st := w.Stats(); st.TotalRejected() != 0 || w.ServerStats().Peers != 1 {
		t.Fatalf("worker: %v rejected, %d peers (want one short-term key throughout)", st.Rejected, w.ServerStats().Peers)
	}
}

// serveReps keeps each REP socket's own reading going (it answers pings
// itself) until the test ends.
func serveReps(t testing.TB, reps ...*Socket) {
	t.Helper()
	for _, r := range reps {
		mustSet(t, r, mangos.OptionRecvDeadline, 100*time.Millisecond)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				if _, err := r.Recv(); errors.Is(err, mangos.ErrClosed) {
					return
				}
			}
		}()
		t.Cleanup(func() { r.Close(); <-done })
	}
}

// TestPushEpochsFromReqPing: a pusher whose OptionEpochSource pinged the
// service seals with epoch keys (forward-secret at the PULL worker); one
// without a source seals to the long-term key; a failed ping fails the
// Send instead of downgrading it (SPEC.md §15.6).
func TestPushEpochsFromReqPing(t *testing.T) {
	srv := mustKey(t)
	seed, err := NewEpochSeed(5 * time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	pullSeed, err := ParseEpochSeed(seed.format())
	if err != nil {
		t.Fatal(err)
	}
	r := newRep(t, srv, OptionEpochSeed, seed)
	repAddr := inprocAddr(t)
	if err := r.Listen(repAddr); err != nil {
		t.Fatal(err)
	}
	serveReps(t, r)
	w := newPullWorker(t, srv, OptionEpochSeed, pullSeed)
	pullAddr := inprocAddr(t)
	if err := w.Listen(pullAddr); err != nil {
		t.Fatal(err)
	}
	q := newReq(t, srv.Public())
	if err := q.Dial(repAddr); err != nil {
		t.Fatal(err)
	}
	withFS := newPusher(t, srv.Public(), OptionEpochSource, q, OptionEpochs, EpochsRequire)
	plain := newPusher(t, srv.Public())
	for _, p := range []*Socket{withFS, plain} {
		if err := p.Dial(pullAddr); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		if err := withFS.Send(fmt.Appendf(nil, "fs %d", i)); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Recv(); err != nil {
			t.Fatal(err)
		}
	}
	if err := plain.Send([]byte("long-term")); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Recv(); err != nil {
		t.Fatal(err)
	}
	if st := w.ServerStats(); st.ForwardSecret != 3 || st.LongTermOnly != 1 {
		t.Fatalf("PULL: %d forward-secret, %d long-term only; want 3 and 1", st.ForwardSecret, st.LongTermOnly)
	}
	if n := r.Stats().Answered; n != 1 {
		t.Fatalf("the REP answered %d pings, want 1 (the keys cover the epoch)", n)
	}
	if err := newPusher(t, srv.Public(), OptionEpochs, EpochsRequire).Send([]byte("x")); !errors.Is(err, ErrUnknownEpoch) {
		t.Fatalf("EpochsRequire without a source: %v, want ErrUnknownEpoch", err)
	}
	lost := newReq(t, srv.Public(), mangos.OptionRecvDeadline, 100*time.Millisecond, mangos.OptionSendDeadline, 100*time.Millisecond)
	if err := lost.Dial(inprocAddr(t)); err != nil && !errors.Is(err, mangos.ErrConnRefused) {
		t.Fatal(err)
	}
	stuck := newPusher(t, srv.Public(), OptionEpochSource, lost)
	if err := stuck.Dial(pullAddr); err != nil {
		t.Fatal(err)
	}
	if err := stuck.Send([]byte("downgraded")); err == nil {
		t.Fatal("a pusher whose ping failed sent anyway")
	}
	expectNothing(t, w)
}

// TestPushEpochSourceWithoutSeed: a service without an epoch seed answers
// the source's ping without keys; the pusher seals to the long-term key
// and does not ping again for every message.
func TestPushEpochSourceWithoutSeed(t *testing.T) {
	srv := mustKey(t)
	r := newRep(t, srv)
	repAddr := inprocAddr(t)
	if err := r.Listen(repAddr); err != nil {
		t.Fatal(err)
	}
	serveReps(t, r)
	w := newPullWorker(t, srv)
	pullAddr := inprocAddr(t)
	if err := w.Listen(pullAddr); err != nil {
		t.Fatal(err)
	}
	q := newReq(t, srv.Public())
	if err := q.Dial(repAddr); err != nil {
		t.Fatal(err)
	}
	p := newPusher(t, srv.Public(), OptionEpochSource, q)
	if err := p.Dial(pullAddr); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := p.Send([]byte("x")); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Recv(); err != nil {
			t.Fatal(err)
		}
	}
	if n := r.Stats().Answered; n != 1 {
		t.Fatalf("the REP answered %d pings, want 1", n)
	}
	if st := w.ServerStats(); st.LongTermOnly != 3 {
		t.Fatalf("PULL: %+v", st)
	}
	other := newReq(t, mustKey(t).Public())
	if err := newPusher(t, srv.Public(), OptionEpochSource, other).Send([]byte("x")); !errors.Is(err, mangos.ErrBadValue) {
		t.Fatalf("a source with another server key: %v, want mangos.ErrBadValue", err)
	}
	pp, _ := NewPullSocket()
	defer pp.Close()
	if err := p.SetOption(OptionEpochSource, pp); !errors.Is(err, mangos.ErrBadValue) {
		t.Fatalf("a PULL socket as the source: %v", err)
	}
}

// downStore is a replay store that cannot be reached.
type downStore struct{}

func (downStore) Claim(context.Context, *replaystore.Request, int) (replaystore.Result, error) {
	return replaystore.Result{}, replaystore.ErrUnavailable
}

func (downStore) Lookup(context.Context, *replaystore.Request, int) (replaystore.Result, error) {
	return replaystore.Result{}, replaystore.ErrUnavailable
}

func (downStore) Refuse(context.Context, *replaystore.Request, int) (replaystore.Result, error) {
	return replaystore.Result{}, replaystore.ErrUnavailable
}

func (downStore) Renew(context.Context, []*replaystore.Request) error {
	return replaystore.ErrUnavailable
}

func (downStore) Reply(context.Context, *replaystore.Request, []byte) error {
	return replaystore.ErrUnavailable
}

// TestPullSharedReplayStore: a captured PUSH message replayed to every
// PULL worker sharing a replay store is delivered once in all (without
// the store, the control, each worker delivers it); with the store down
// a worker drops the message (fail closed) unless told to fall back to
// its own checks (SPEC.md §15.5).
func TestPullSharedReplayStore(t *testing.T) {
	stores(t, func(t *testing.T, st replaystore.Store) {
		srv := mustKey(t)
		time.Sleep(testSkew) // after the store generation's quiescence (SPEC.md §17.4)
		b := capturePush(t, newPusher(t, srv.Public()), []byte("pay once"))
		delivered := func(opts ...any) int {
			n := 0
			for range 3 {
				w := newPullWorker(t, srv, opts...)
				in := pushInjector(t, w)
				if err := in.Send(b); err != nil {
					t.Fatal(err)
				}
				mustSet(t, w, mangos.OptionRecvDeadline, 300*time.Millisecond)
				if got, err := w.Recv(); err == nil {
					if string(got) != "pay once" {
						t.Fatalf("delivered %q", got)
					}
					n++
				} else if st := w.Stats(); st.Rejected[ReasonReplayed] != 1 {
					t.Fatalf("a worker sharing the store: %v, rejected %v; want it dropped as replayed", err, st.Rejected)
				} else if ss := w.ServerStats(); ss.Anonymous != 0 || ss.LongTermOnly != 0 {
					t.Fatalf("a worker that dropped the message counts it accepted: %+v", ss)
				}
			}
			return n
		}
		if n := delivered(); n != 3 {
			t.Fatalf("control without a store: delivered %d times, want 3 (one per worker)", n)
		}
		if n := delivered(OptionReplayStore, st, OptionMaxClockSkew, testSkew); n != 1 {
			t.Fatalf("with a shared store: delivered %d times, want 1", n)
		}
	})
	srv := mustKey(t)
	for _, lax := range []bool{false, true} {
		w := newPullWorker(t, srv, OptionReplayStore, replaystore.Store(downStore{}), OptionReplayStorePerInstance, lax)
		in := pushInjector(t, w)
		if err := in.Send(capturePush(t, newPusher(t, srv.Public()), []byte("x"))); err != nil {
			t.Fatal(err)
		}
		mustSet(t, w, mangos.OptionRecvDeadline, 300*time.Millisecond)
		_, err := w.Recv()
		switch {
		case lax && err != nil:
			t.Fatalf("per-instance fallback: %v", err)
		case lax && w.ServerStats().ReplayStore.Fallbacks != 1:
			t.Fatalf("fallbacks %+v", w.ServerStats().ReplayStore)
		case !lax && (err == nil || w.Stats().Rejected[ReasonStoreUnavailable] != 1):
			t.Fatalf("store down: %v, rejected %v; want a store-unavailable drop", err, w.Stats().Rejected)
		}
	}
}

// TestPullDropsStale: a message read more than OptionFreshness after it
// was sealed (it waited in queues, or was captured and replayed later) is
// dropped, and one within the window delivered (SPEC.md §15.5).
func TestPullDropsStale(t *testing.T) {
	srv := mustKey(t)
	b := capturePush(t, newPusher(t, srv.Public()), []byte("late"))
	for _, tc := range []struct {
		after time.Duration
		ok    bool
	}{{time.Minute, true}, {2*time.Minute + time.Second, false}} {
		w := newPullWorker(t, srv)
		useClock(w.Socket, &fakeClock{t: time.Now().Add(tc.after)})
		in := pushInjector(t, w)
		if err := in.Send(b); err != nil {
			t.Fatal(err)
		}
		if tc.ok {
			if got, err := w.Recv(); err != nil || string(got) != "late" {
				t.Fatalf("%v later: %q, %v", tc.after, got, err)
			}
			continue
		}
		waitRejected(t, w, ReasonStale, 1)
	}
}

// pusherClient returns the sealer of a PUSH socket, for tests that move
// its timers.
func pusherClient(t testing.TB, p *Socket) *curveClient {
	t.Helper()
	c, ok := p.engine().client.(*curveClient)
	if !ok {
		t.Fatal("no curve sealer")
	}
	return c
}

// TestPushEpochSourceAfterNoSeed: one answer without keys (a worker
// without the seed, as during a rollout) does not stop a pusher from
// asking again: once the retry time has passed, its source pings with
// WANT_EPOCH even though its session heard "no seed", and the pusher
// seals with the keys a seeded worker announces (review of issue 17, F4).
func TestPushEpochSourceAfterNoSeed(t *testing.T) {
	srv := mustKey(t)
	seed, err := NewEpochSeed(5 * time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	pullSeed, _ := ParseEpochSeed(seed.format())
	without, with := newRep(t, srv), newRep(t, srv, OptionEpochSeed, seed)
	a1, a2 := inprocAddr(t), inprocAddr(t)
	if err := without.Listen(a1); err != nil {
		t.Fatal(err)
	}
	if err := with.Listen(a2); err != nil {
		t.Fatal(err)
	}
	serveReps(t, without, with)
	w := newPullWorker(t, srv, OptionEpochSeed, pullSeed)
	pullAddr := inprocAddr(t)
	if err := w.Listen(pullAddr); err != nil {
		t.Fatal(err)
	}
	q := newReq(t, srv.Public())
	if err := q.Dial(a1); err != nil {
		t.Fatal(err)
	}
	p := newPusher(t, srv.Public(), OptionEpochSource, q)
	if err := p.Dial(pullAddr); err != nil {
		t.Fatal(err)
	}
	push := func() {
		t.Helper()
		if err := p.Send([]byte("job")); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Recv(); err != nil {
			t.Fatal(err)
		}
	}
	push() // the source asked the worker without the seed
	without.Close()
	if err := q.Dial(a2); err != nil {
		t.Fatal(err)
	}
	pusherClient(t, p).noSeedUntil.Store(0) // the retry time has passed
	push()
	if st := w.ServerStats(); st.LongTermOnly != 1 || st.ForwardSecret != 1 {
		t.Fatalf("PULL: %d long-term only, %d forward-secret; want 1 and 1", st.LongTermOnly, st.ForwardSecret)
	}
}

// TestPushEpochSourceReseed: after the service reseeds (a new chain on
// the REP and PULL workers), a pusher's next recheck of its source
// replaces the old chain's keys (the source meets UNKNOWN_EPOCH and asks
// again), so its messages are delivered again, forward-secret (review of
// issue 17, F2).
func TestPushEpochSourceReseed(t *testing.T) {
	srv := mustKey(t)
	seeds := func() (*EpochSeed, *EpochSeed) {
		s, err := NewEpochSeed(5 * time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := ParseEpochSeed(s.format())
		return s, c
	}
	repSeed, pullSeed := seeds()
	r := newRep(t, srv, OptionEpochSeed, repSeed)
	repAddr := inprocAddr(t)
	if err := r.Listen(repAddr); err != nil {
		t.Fatal(err)
	}
	serveReps(t, r)
	w := newPullWorker(t, srv, OptionEpochSeed, pullSeed)
	pullAddr := inprocAddr(t)
	if err := w.Listen(pullAddr); err != nil {
		t.Fatal(err)
	}
	q := newReq(t, srv.Public())
	if err := q.Dial(repAddr); err != nil {
		t.Fatal(err)
	}
	p := newPusher(t, srv.Public(), OptionEpochSource, q, OptionEpochs, EpochsRequire)
	if err := p.Dial(pullAddr); err != nil {
		t.Fatal(err)
	}
	if err := p.Send([]byte("old chain")); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Recv(); err != nil {
		t.Fatal(err)
	}
	repSeed, pullSeed = seeds()
	mustSet(t, r, OptionEpochSeed, repSeed)
	mustSet(t, w, OptionEpochSeed, pullSeed)
	pusherClient(t, p).annAt.Store(0) // the recheck time has passed
	if err := p.Send([]byte("new chain")); err != nil {
		t.Fatal(err)
	}
	if got, err := w.Recv(); err != nil || string(got) != "new chain" {
		t.Fatalf("after the reseed: %q, %v (rejected %v)", got, err, w.Stats().Rejected)
	}
	if st := w.ServerStats(); st.ForwardSecret != 2 {
		t.Fatalf("PULL: %d forward-secret, want 2", st.ForwardSecret)
	}
}

// TestPushRequireAtEpochBoundary: a pusher that requires epoch keys never
// sends a message without one, even when its clock crosses the end of its
// keys between its check and the sealing (review of issue 17, F7): for
// every point of the crossing, Send either fails with ErrUnknownEpoch or
// the message on the wire names an epoch key.
func TestPushRequireAtEpochBoundary(t *testing.T) {
	srv := mustKey(t)
	seed, err := NewEpochSeed(5 * time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	_, ann := seed.keysAt(now.UnixMilli(), 10000)
	for k := 0; k < 8; k++ {
		p := newPusher(t, srv.Public(), OptionEpochs, EpochsRequire)
		var mu sync.Mutex
		reads := 0
		p.mu.Lock()
		p.cfg.now = func() time.Time { // the clock jumps past the keys after k reads
			mu.Lock()
			defer mu.Unlock()
			reads++
			if reads > k {
				return now.Add(3 * seed.Length())
			}
			return now
		}
		p.mu.Unlock()
		p.eng.Store(nil)
		c := pusherClient(t, p)
		c.ann.Store(&ann)
		c.annAt.Store(now.UnixMilli())
		tap := plainSocket(t, pull.NewSocket)
		addr := inprocAddr(t)
		if err := tap.Listen(addr); err != nil {
			t.Fatal(err)
		}
		if err := p.Dial(addr); err != nil {
			t.Fatal(err)
		}
		if err := p.Send([]byte("x")); err != nil {
			if !errors.Is(err, ErrUnknownEpoch) {
				t.Fatalf("k=%d: %v", k, err)
			}
			continue
		}
		tap.SetOption(mangos.OptionRecvDeadline, 5*time.Second)
		b, err := tap.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if b[3]&(1<<wire.ElemEpoch) == 0 {
			t.Fatalf("k=%d: a message without an epoch key was sent under EpochsRequire", k)
		}
	}
}

// TestPullRequestAuthorizer: per-message peer identity on PULL. Recv's
// message names its sender (Peer: the pusher's proven key, forward
// secrecy), the request authorizer sees it with the body and can drop the
// message, and a dropped message is not counted as accepted.
func TestPullRequestAuthorizer(t *testing.T) {
	srv, me := mustKey(t), mustKey(t)
	w := newPullWorker(t, srv, OptionRequestAuthorizer, func(p Peer, body []byte) bool {
		return p.Key == me.Public() && string(body) != "forbidden"
	})
	addr := inprocAddr(t)
	if err := w.Listen(addr); err != nil {
		t.Fatal(err)
	}
	p := newPusher(t, srv.Public(), OptionSecretKey, me)
	if err := p.Dial(addr); err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"forbidden", "fine"} {
		if err := p.Send([]byte(b)); err != nil {
			t.Fatal(err)
		}
	}
	got, peer, err := w.RecvPeer() // on PULL the sender comes with the message
	if err != nil || string(got) != "fine" {
		t.Fatalf("RecvPeer = %q, %v", got, err)
	}
	if peer.Key != me.Public() || peer.ServerKey != srv.Public() {
		t.Fatalf("Peer = %+v", peer)
	}
	if st, ss := w.Stats(), w.ServerStats(); st.Rejected[ReasonNotAuthorized] != 1 || ss.Vouched != 1 {
		t.Fatalf("rejected %v, %d vouched accepted; want 1 not-authorized and 1 accepted", st.Rejected, ss.Vouched)
	}
}
