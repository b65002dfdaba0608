package secsock

// Diagnostics: every message the REP side drops or answers itself is
// reported to the event hook with its reason and the client's key when
// known, counted in Stats, and logged through the optional slog logger,
// which is silent by default and never sees secrets or bodies.

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.nanomsg.org/mangos/v3"
)

// diagEvents collects hook events without blocking the receiving
// goroutine.
type diagEvents struct {
	ch chan Event
}

func newDiagEvents() *diagEvents { return &diagEvents{ch: make(chan Event, 256)} }

func (d *diagEvents) hook(ev Event) {
	select {
	case d.ch <- ev:
	default:
		panic("event hook buffer full")
	}
}

func (d *diagEvents) next(t *testing.T) Event {
	t.Helper()
	select {
	case ev := <-d.ch:
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5s")
	}
	return Event{}
}

func (d *diagEvents) none(t *testing.T) {
	t.Helper()
	select {
	case ev := <-d.ch:
		t.Fatalf("unexpected event %+v", ev)
	case <-time.After(50 * time.Millisecond):
	}
}

// diagClient is a curve REQ socket dialing addr.
func diagClient(t *testing.T, addr string, opts ...any) *Socket {
	t.Helper()
	s, err := NewReqSocket()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	mustSet(t, s, OptionMechanism, MechanismCurve, mangos.OptionRecvDeadline, 5*time.Second, mangos.OptionSendDeadline, 5*time.Second)
	mustSet(t, s, opts...)
	if err := s.Dial(addr); err != nil {
		t.Fatal(err)
	}
	return s
}

// diagPlain is a REQ socket with mechanism none: it moves wire bytes.
func diagPlain(t *testing.T, addr string) *Socket {
	t.Helper()
	s, err := NewReqSocket()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	mustSet(t, s, mangos.OptionRecvDeadline, 5*time.Second, mangos.OptionSendDeadline, 5*time.Second)
	if err := s.Dial(addr); err != nil {
		t.Fatal(err)
	}
	return s
}

// captureRequests returns n sealed requests of a REQ socket configured
// with opts, as they leave it, by pointing it at a pass-through REP.
func captureRequests(t *testing.T, n int, bodies [][]byte, opts ...any) [][]byte {
	t.Helper()
	addr := inprocAddr(t)
	spy, err := NewRepSocket()
	if err != nil {
		t.Fatal(err)
	}
	defer spy.Close()
	mustSet(t, spy, mangos.OptionRecvDeadline, 5*time.Second)
	if err := spy.Listen(addr); err != nil {
		t.Fatal(err)
	}
	cli := diagClient(t, addr, opts...)
	var out [][]byte
	for i := 0; i < n; i++ {
		if err := cli.Send(bodies[i]); err != nil {
			t.Fatal(err)
		}
		b, err := spy.Recv()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// serveAll keeps rep in Recv (the REP side answers refusals and hints
// there) and echoes what it delivers, until rep is closed.
func serveAll(rep *Socket) {
	go func() {
		for {
			b, err := rep.Recv()
			if err != nil {
				return
			}
			rep.Send(b)
		}
	}()
}

// TestEventHookReportsEveryRejection drives one REP socket through each
// rejection reason and checks the hook, the client's errors and Stats.
func TestEventHookReportsEveryRejection(t *testing.T) {
	serverKey, alice, mallory := mustKey(t), mustKey(t), mustKey(t)
	events := newDiagEvents()
	addr := inprocAddr(t)
	rep, err := NewRepSocket()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rep.Close() })
	mustSet(t, rep, OptionMechanism, MechanismCurve, OptionSecretKey, serverKey,
		OptionAuthorizedKeys, []PublicKey{alice.Public()}, OptionAllowAnonymous, true,
		OptionReplyCacheSize, 1, OptionEventHook, events.hook)
	if err := rep.Listen(addr); err != nil {
		t.Fatal(err)
	}
	serveAll(rep)

	expect := func(reason Reason, peer PublicKey) {
		t.Helper()
		ev := events.next(t)
		if ev.Reason != reason || ev.Peer != peer || ev.Err != nil {
			t.Fatalf("event %+v, want reason %v peer %v", ev, reason, peer)
		}
	}
	wantRejected := map[Reason]uint64{}
	count := func(r Reason) { wantRejected[r]++ }

	// Authorized: no event.
	a := diagClient(t, addr, OptionServerKey, serverKey.Public(), OptionSecretKey, alice)
	if err := a.Authenticate(); err != nil {
		t.Fatal(err)
	}
	if err := a.Send([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if b, err := a.Recv(); err != nil || string(b) != "hello" {
		t.Fatalf("alice: %q %v", b, err)
	}
	events.none(t)

	// Not authorized: the refused client learns it, the hook has its key.
	m := diagClient(t, addr, OptionServerKey, serverKey.Public(), OptionSecretKey, mallory)
	if err := m.Authenticate(); !errors.Is(err, ErrNotAuthorized) {
		t.Fatalf("mallory: %v", err)
	}
	expect(ReasonNotAuthorized, mallory.Public())
	count(ReasonNotAuthorized)
	m.Send([]byte("data"))
	if _, err := m.Recv(); !errors.Is(err, ErrNotAuthorized) {
		t.Fatalf("mallory recv: %v", err)
	}
	expect(ReasonNotAuthorized, mallory.Public())
	count(ReasonNotAuthorized)

	// Wrong server key: one round trip, a typed unauthenticated hint.
	wrong := diagClient(t, addr, OptionServerKey, mallory.Public(), OptionSecretKey, alice)
	start := time.Now()
	if err := wrong.Authenticate(); !errors.Is(err, ErrServerKeyMismatch) || !strings.Contains(err.Error(), "unauthenticated") {
		t.Fatalf("wrong server key: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("wrong server key took %v: a timeout, not a round trip", d)
	}
	// The hint is advisory: the client resent the identical request
	// (maxAdvisoryCopies copies), and each copy got the same hint.
	for i := 0; i <= maxAdvisoryCopies; i++ {
		expect(ReasonForged, PublicKey{})
		count(ReasonForged)
	}
	wrong.Send([]byte("x"))
	if _, err := wrong.Recv(); !errors.Is(err, ErrServerKeyMismatch) {
		t.Fatalf("wrong server key, Recv: %v", err)
	}
	for i := 0; i <= maxAdvisoryCopies; i++ {
		expect(ReasonForged, PublicKey{})
		count(ReasonForged)
	}

	// Stale: a client whose clock is an hour behind.
	late := diagClient(t, addr, OptionServerKey, serverKey.Public(), OptionSecretKey, alice)
	late.mu.Lock()
	late.cfg.now = func() time.Time { return time.Now().Add(-time.Hour) }
	late.eng.Store(nil)
	late.mu.Unlock()
	late.Send([]byte("late"))
	if _, err := late.Recv(); !errors.Is(err, ErrStale) {
		t.Fatalf("stale: %v", err)
	}
	expect(ReasonStale, alice.Public())
	count(ReasonStale)

	// Replay: two captured anonymous requests, the first replayed after
	// the one-slot reply cache dropped its reply; then a retry answered
	// from the cache.
	caught := captureRequests(t, 2, [][]byte{[]byte("one"), []byte("two")}, OptionServerKey, serverKey.Public())
	inj := diagPlain(t, addr)
	for _, b := range caught {
		if err := inj.Send(b); err != nil {
			t.Fatal(err)
		}
		if _, err := inj.Recv(); err != nil {
			t.Fatal(err)
		}
	}
	events.none(t)
	inj.Send(caught[0])
	if _, err := inj.Recv(); err != nil {
		t.Fatal(err)
	}
	expect(ReasonReplayed, PublicKey{})
	count(ReasonReplayed)
	inj.Send(caught[1])
	if _, err := inj.Recv(); err != nil {
		t.Fatal(err)
	}
	expect(ReasonRetry, PublicKey{})
	count(ReasonRetry)

	// Forged or corrupted: one flipped bit in the body box.
	bad := bytes.Clone(caught[1])
	bad[len(bad)-1] ^= 1
	inj.Send(bad)
	inj.Recv() // the unauthenticated hint
	expect(ReasonForged, PublicKey{})
	count(ReasonForged)

	// Malformed, unknown version, unknown kind: from wire bytes.
	eph := mustKey(t).Public()
	unknownSuite := append(append([]byte{2, 1, 9, 0}, eph[:]...), make([]byte, 16+2+16)...)
	unknownSuite[43] = 1 // N = 1
	for _, c := range []struct {
		body   []byte
		reason Reason
		answer int // length of the answer, 0 for none
	}{
		{[]byte{2, 1}, ReasonMalformed, 0},
		{append([]byte{2, 1, 1}, make([]byte, 20)...), ReasonMalformed, 0},
		{append([]byte{3, 1, 1, 0}, make([]byte, 66)...), ReasonUnknownVersion, 3}, // a request of version 3
		{[]byte{3, 1, 1, 0}, ReasonNotSecsock, 0},                                  // too short for any version's request
		{append([]byte{9, 1, 1, 0}, make([]byte, 66)...), ReasonNotSecsock, 0},     // 9 is never a version byte
		{[]byte("plain request"), ReasonNotSecsock, 0},
		{[]byte{2, 0x11, 1, 0, 0, 0}, ReasonUnknownKind, 0},
		{unknownSuite, ReasonUnsupported, 19},
	} {
		inj.Send(c.body) // a new Send cancels the previous request
		if c.answer != 0 {
			if b, err := inj.Recv(); err != nil || len(b) != c.answer {
				t.Fatalf("%v: want a %d-byte answer, got %x %v", c.reason, c.answer, b, err)
			}
		}
		expect(c.reason, PublicKey{})
		count(c.reason)
	}
	events.none(t)

	st := rep.Stats()
	for r, n := range wantRejected {
		if st.Rejected[r] != n {
			t.Errorf("Stats.Rejected[%v] = %d, want %d (all: %v)", r, st.Rejected[r], n, st.Rejected)
		}
	}
	if len(st.Rejected) != len(wantRejected) {
		t.Errorf("Stats.Rejected = %v, want %v", st.Rejected, wantRejected)
	}
	// Delivered: alice's hello and the two captured requests.
	if st.Opened != 3 || st.Sealed != 3 {
		t.Errorf("Stats opened %d sealed %d, want 3 and 3", st.Opened, st.Sealed)
	}
	// Answered by the server itself: alice's ping, 2 refusals to mallory,
	// 2 hints for the wrong key (and for each of their resent copies),
	// stale, replayed, retry, forged hint, unknown version and
	// unsupported hints.
	if want := uint64(11 + 2*maxAdvisoryCopies); st.Answered != want {
		t.Errorf("Stats.Answered = %d, want %d", st.Answered, want)
	}
	// Three not-secsock bodies are dropped unanswered.
	if want := uint64(16 + 2*maxAdvisoryCopies); st.TotalRejected() != want {
		t.Errorf("TotalRejected = %d, want %d", st.TotalRejected(), want)
	}
}

// TestClientEventsAndStats: the REQ side reports the reply it could not
// accept with the server key and the error, and counts.
func TestClientEventsAndStats(t *testing.T) {
	serverKey, mallory := mustKey(t), mustKey(t)
	events := newDiagEvents()
	req, rep := pair(t, inprocAddr(t), serverKey, OptionSecretKey, mallory, OptionEventHook, events.hook)
	mustSet(t, rep, OptionAuthorizedKeys, []PublicKey{})
	serveAll(rep)
	req.Send([]byte("x"))
	_, err := req.Recv()
	if !errors.Is(err, ErrNotAuthorized) {
		t.Fatal(err)
	}
	ev := events.next(t)
	if ev.Reason != ReasonNotAuthorized || ev.Peer != serverKey.Public() || !errors.Is(ev.Err, ErrNotAuthorized) {
		t.Fatalf("client event %+v", ev)
	}
	st := req.Stats()
	if st.Sealed != 1 || st.Opened != 0 || st.Rejected[ReasonNotAuthorized] != 1 {
		t.Fatalf("client stats %+v", st)
	}
}

// recordHandler is a slog.Handler that keeps every record as text.
type recordHandler struct {
	mu      *sync.Mutex
	records *[]string
	levels  *[]slog.Level
}

func newRecordHandler() *recordHandler {
	return &recordHandler{mu: new(sync.Mutex), records: new([]string), levels: new([]slog.Level)}
}

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *recordHandler) WithGroup(string) slog.Handler            { return h }
func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.Key + "=" + a.Value.String())
		return true
	})
	h.mu.Lock()
	*h.records = append(*h.records, b.String())
	*h.levels = append(*h.levels, r.Level)
	h.mu.Unlock()
	return nil
}

func (h *recordHandler) all() ([]string, []slog.Level) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), *h.records...), append([]slog.Level(nil), *h.levels...)
}

// logScenario makes one authorized exchange, one refused client and one
// client with the wrong server key against a REP socket configured with
// repOpts, and returns the keys that must never be logged.
func logScenario(t *testing.T, repOpts, reqOpts []any) []SecretKey {
	t.Helper()
	serverKey, alice, mallory := mustKey(t), mustKey(t), mustKey(t)
	addr := inprocAddr(t)
	rep, err := NewRepSocket()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rep.Close() })
	mustSet(t, rep, OptionMechanism, MechanismCurve, OptionSecretKey, serverKey, OptionAuthorizedKeys, []PublicKey{alice.Public()})
	mustSet(t, rep, repOpts...)
	if err := rep.Listen(addr); err != nil {
		t.Fatal(err)
	}
	serveAll(rep)
	for _, c := range []struct {
		server PublicKey
		key    SecretKey
		want   error
	}{
		{serverKey.Public(), alice, nil},
		{serverKey.Public(), mallory, ErrNotAuthorized},
		{alice.Public(), alice, ErrServerKeyMismatch},
	} {
		cli := diagClient(t, addr, append([]any{OptionServerKey, c.server, OptionSecretKey, c.key}, reqOpts...)...)
		cli.Send([]byte("top secret body"))
		if _, err := cli.Recv(); !errors.Is(err, c.want) && !(c.want == nil && err == nil) {
			t.Fatalf("got %v want %v", err, c.want)
		}
	}
	time.Sleep(20 * time.Millisecond) // the hook runs before the answer is sent; be generous anyway
	return []SecretKey{serverKey, alice, mallory}
}

func TestLoggerSilentByDefault(t *testing.T) {
	h := newRecordHandler()
	old := slog.Default()
	slog.SetDefault(slog.New(h))
	t.Cleanup(func() { slog.SetDefault(old) })
	logScenario(t, nil, nil)
	recs, _ := h.all()
	for _, r := range recs {
		if strings.Contains(r, "secsock") {
			t.Fatalf("logged without a logger: %q", r)
		}
	}
}

func TestLoggerLogsRejectionsWithoutSecrets(t *testing.T) {
	repLog, reqLog := newRecordHandler(), newRecordHandler()
	keys := logScenario(t, []any{OptionLogger, slog.New(repLog)}, []any{OptionLogger, slog.New(reqLog)})
	recs, levels := repLog.all()
	// One forged record per copy of the wrong-key request: the client
	// resends it after the (advisory) hint.
	if len(recs) != 2+maxAdvisoryCopies {
		t.Fatalf("REP logged %d records, want %d (not-authorized, forged for each copy): %q", len(recs), 2+maxAdvisoryCopies, recs)
	}
	if !strings.Contains(recs[0], "reason=not-authorized") || !strings.Contains(recs[0], "peer="+keys[2].Public().String()) {
		t.Fatalf("not-authorized record: %q", recs[0])
	}
	for _, r := range recs[1:] {
		if !strings.Contains(r, "reason=forged") || strings.Contains(r, "peer=") {
			t.Fatalf("forged record: %q", r)
		}
	}
	crecs, clevels := reqLog.all()
	if len(crecs) != 2 || !strings.Contains(crecs[0], "reason=not-authorized") || !strings.Contains(crecs[1], "error=") {
		t.Fatalf("REQ records: %q", crecs)
	}
	for _, l := range append(levels, clevels...) {
		if l != slog.LevelDebug {
			t.Fatalf("record at level %v, want debug", l)
		}
	}
	for _, r := range append(recs, crecs...) {
		if strings.Contains(r, "top secret body") {
			t.Fatalf("a body was logged: %q", r)
		}
		for _, k := range keys {
			if strings.Contains(r, k.Reveal()) {
				t.Fatalf("a secret key was logged: %q", r)
			}
		}
	}
}
