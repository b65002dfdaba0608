package secsock

import (
	"bytes"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"go.nanomsg.org/mangos/v3"
	"go.nanomsg.org/mangos/v3/protocol/rep"
)

// TestMaxRecvSizeIsExact: on a curve socket mangos.OptionMaxRecvSize
// limits bodies exactly, over tcp, whether it was set before Wrap or
// after: a body at the limit is delivered, one byte more is refused
// authentically (ErrTooLarge for the client, not advisory), counted and
// reported, and never reaches the application. A REQ socket holds replies
// to its own limit.
func TestMaxRecvSizeIsExact(t *testing.T) {
	const limit = 4096
	sk := mustKey(t)
	for _, beforeWrap := range []bool{false, true} {
		var w *Socket
		if beforeWrap {
			raw, _ := rep.NewSocket()
			mustSet(t, raw, mangos.OptionMaxRecvSize, limit)
			var err error
			if w, err = Wrap(raw); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { w.Close() })
			mustSet(t, w, OptionMechanism, MechanismCurve, OptionSecretKey, sk)
		} else {
			w = newRep(t, sk, mangos.OptionMaxRecvSize, limit)
		}
		var oversize atomic.Int64
		mustSet(t, w, OptionEventHook, func(ev Event) {
			if ev.Reason == ReasonOversize {
				oversize.Add(1)
			}
		})
		sv := serveEcho(t, 0, w)
		cl := newReq(t, sk.Public(), OptionSecretKey, mustKey(t))
		listenOn(t, w, "tcp")(cl)
		if v, _ := w.GetOption(mangos.OptionMaxRecvSize); v != limit {
			t.Fatalf("GetOption %v, want %d", v, limit)
		}
		at := string(bytes.Repeat([]byte{'a'}, limit))
		if _, err := roundTrip(cl, at); err != nil {
			t.Fatalf("before Wrap %v: a body at the limit: %v", beforeWrap, err)
		}
		over := at + "b"
		_, err := roundTrip(cl, over)
		if !errors.Is(err, ErrTooLarge) || !errors.Is(err, mangos.ErrTooLong) || isAdvisory(err) {
			t.Fatalf("before Wrap %v: one byte over: %v, want an authenticated ErrTooLarge", beforeWrap, err)
		}
		if sv.count(over) != 0 {
			t.Fatal("the application saw an oversize body")
		}
		if w.Stats().Rejected[ReasonOversize] != 1 || oversize.Load() != 1 {
			t.Fatalf("oversize not counted or reported: %v, %d events", w.Stats().Rejected, oversize.Load())
		}
	}

	// The REQ side's limit on replies.
	w := newRep(t, sk)
	serveEcho(t, 0, w) // replies "echo:" + body
	cl := newReq(t, sk.Public(), mangos.OptionMaxRecvSize, 100)
	listenOn(t, w, "tcp")(cl)
	if _, err := roundTrip(cl, string(make([]byte, 95))); err != nil {
		t.Fatalf("a reply at the limit: %v", err)
	}
	if _, err := roundTrip(cl, string(make([]byte, 96))); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("a reply one byte over: %v, want ErrTooLarge", err)
	}
}

// TestClockOption: one injected clock drives freshness on both sides and
// the time of events, so ErrStale handling can be tested without waiting.
func TestClockOption(t *testing.T) {
	sk := mustKey(t)
	var offset atomic.Int64 // the server clock's lead
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	var last atomic.Value
	w := newRep(t, sk, OptionClock, clock, OptionEventHook, func(ev Event) { last.Store(ev.Time) })
	serveEcho(t, 0, w)
	dial := listenOn(t, w, "inproc")
	cl := newReq(t, sk.Public())
	dial(cl)
	if _, err := roundTrip(cl, "now"); err != nil {
		t.Fatal(err)
	}
	offset.Store(int64(3 * time.Minute)) // past the 2-minute window
	if _, err := roundTrip(cl, "later"); !errors.Is(err, ErrStale) {
		t.Fatalf("server clock 3 minutes ahead: %v, want ErrStale", err)
	}
	if ts, _ := last.Load().(time.Time); time.Until(ts) < 2*time.Minute {
		t.Fatalf("event time %v is not the injected clock's", ts)
	}
	offset.Store(0)
	// The client's clock dates its requests.
	past := newReq(t, sk.Public(), OptionClock, func() time.Time { return time.Now().Add(-5 * time.Minute) })
	dial(past)
	if _, err := roundTrip(past, "old"); !errors.Is(err, ErrStale) {
		t.Fatalf("client clock 5 minutes behind: %v, want ErrStale", err)
	}
	if err := w.SetOption(OptionClock, (func() time.Time)(nil)); !errors.Is(err, mangos.ErrBadValue) {
		t.Fatalf("nil clock: %v", err)
	}
}
