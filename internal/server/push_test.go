package server

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/secsock/secsock/internal/vectorfile"
	"github.com/secsock/secsock/internal/wire"
)

// FuzzPullOpen feeds arbitrary bytes (seeded with every request of the
// vector files) to a PULL instance and, the same bytes, to a REP
// instance with the same key (SPEC.md §15): a PULL instance never
// answers anything, never delivers one message twice, and no message is
// ever delivered by both (a PUSH message is never a request).
func FuzzPullOpen(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(vectorDir, "*.vec"))
	for _, p := range files {
		_, steps, err := vectorfile.Read(p)
		if err != nil {
			f.Fatal(err)
		}
		for _, st := range steps {
			if b := st.Hex(f, "request"); b != nil {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		lim := DefaultLimits()
		lim.Budget = 0
		pol := &Policy{Keys: []KeyPair{{Secret: secret("server"), Public: public("server")}}, Window: 120000, Skew: 10000}
		pullLim := lim
		pullLim.OneWay = true
		pull, rep := New(pullLim), New(lim)
		first := pull.Open(nil, b, vectorTime, pol, nil)
		again := pull.Open(nil, b, vectorTime, pol, nil)
		if first.Respond != nil || again.Respond != nil {
			t.Fatalf("%x: a PULL instance answered %x / %x", b, first.Respond, again.Respond)
		}
		if again.Deliver {
			t.Fatalf("%x: delivered twice", b)
		}
		if first.Deliver && (len(b) < 2 || !wire.IsPushKind(b[1])) {
			t.Fatalf("%x: a PULL instance delivered a message of kind %x", b, b[1])
		}
		if d := rep.Open(nil, b, vectorTime, pol, &seqReader{b: make([]byte, 64)}); d.Deliver && first.Deliver {
			t.Fatalf("%x: delivered as a request and as a PUSH message", b)
		}
	})
}

// pullSeeds are FuzzPullOpen's committed seeds: PUSH messages (anonymous
// and vouched, both suites) sealed to the fuzz policy's key at
// vectorTime, a REQ request, and each relabelled as the other pattern.
func pullSeeds() map[string][]any {
	out := map[string][]any{}
	for _, c := range []struct {
		name, client string
		suite        byte
		push         bool
	}{
		{"push-anon", "", wire.SuiteBox, true},
		{"push-vouched-gcm", "client", wire.SuiteAESGCM, true},
		{"request-anon", "", wire.SuiteBox, false},
	} {
		cl := newClient("eph fuzz "+c.name, c.client, public("server"), c.suite, vectorTime+3600000, nil)
		if c.push {
			cl.pushing()
		}
		b := cl.seal(c.suite, 1, vectorTime, false, []byte("fuzz"))
		out[c.name] = []any{b}
		relabelled := append([]byte(nil), b...)
		relabelled[1] = map[bool]byte{true: wire.KindRequest, false: wire.KindPush}[c.push]
		out[c.name+"-relabelled"] = []any{relabelled}
	}
	return out
}

// TestPushKeyIsNotRequestKey: the second layer of the patterns'
// separation (SPEC.md §15.1). The kind byte in the nonce already stops a
// relabelled message; here the kind is right and only the key is the
// other pattern's (a PUSH-kind message sealed under Kq, a request sealed
// under Kp, as a confused implementation would make them): neither opens,
// because Kp and Kq have different labels.
func TestPushKeyIsNotRequestKey(t *testing.T) {
	lim := DefaultLimits()
	lim.Budget = 0
	pol := &Policy{Keys: []KeyPair{{Secret: secret("server"), Public: public("server")}}, Window: 120000, Skew: 10000}
	for _, suite := range []byte{wire.SuiteBox, wire.SuiteAESGCM} {
		pullLim := lim
		pullLim.OneWay = true
		c := newClient("eph key separation", "", public("server"), suite, 0, nil)
		c.push = true // PUSH kind, but c.keys are still SessionKeys (Kq)
		if d := New(pullLim).Open(nil, c.seal(suite, 1, vectorTime, false, []byte("x")), vectorTime, pol, nil); d.Deliver || d.Reason != ReasonForged {
			t.Errorf("suite %d: a PUSH message under Kq: %s, want drop:forged", suite, outcome(d))
		}
		c = newClient("eph key separation 2", "", public("server"), suite, 0, nil)
		c.keys = wire.PushKeys(&c.prk0, suite) // request kind, PUSH key
		if d := New(lim).Open(nil, c.seal(suite, 1, vectorTime, false, []byte("x")), vectorTime, pol, &seqReader{b: make([]byte, 16)}); d.Deliver || d.Reason != ReasonForged {
			t.Errorf("suite %d: a request under Kp: %s, want hint:cannot-open", suite, outcome(d))
		}
	}
}

// evictMidFlight runs the first steps of srv's checks on m (lookup and
// the opening, after which the lock is released), then opens others
// (new peers that evict m's from a full cache), as concurrent goroutines
// would, and returns m's request and body for the last step.
func evictMidFlight(t *testing.T, srv *Server, pol *Policy, m []byte, parse func([]byte) (wire.Request, error), others ...[]byte) (*request, []byte) {
	t.Helper()
	parsed, err := parse(m)
	if err != nil {
		t.Fatal(err)
	}
	r := &request{Request: parsed, now: vectorTime, pol: pol}
	if d := srv.lookup(r); d != nil {
		t.Fatal(outcome(*d))
	}
	body, d := srv.requestKey(nil, r)
	if d != nil {
		t.Fatal(outcome(*d))
	}
	for _, o := range others {
		d := srv.Open(nil, o, vectorTime, pol, &seqReader{b: make([]byte, 16)})
		if !d.Deliver {
			t.Fatalf("another peer: %s", outcome(d))
		}
		if !srv.lim.OneWay {
			srv.SealReply(nil, d.Ticket, nil, &seqReader{b: make([]byte, 16)})
		}
	}
	if srv.peers.get(&r.Eph) != nil {
		t.Fatal("the peer was not evicted")
	}
	return r, body
}

// TestEvictedMidFlight: a message whose peer is evicted between the
// lookup and the acceptance (by other goroutines' new peers) is still
// recorded where a replay finds it: delivered once, never twice (review
// of issue 17, F1; REP had the same flaw once its reply-cache slot was
// gone).
func TestEvictedMidFlight(t *testing.T) {
	pol := &Policy{Keys: []KeyPair{{Secret: secret("server"), Public: public("server")}}, Window: 120000, Skew: 10000}
	seal := func(push bool, eph string, n, ts uint64) []byte {
		c := newClient(eph, "", public("server"), wire.SuiteBox, 0, nil)
		if push {
			c.pushing()
		}
		return c.seal(wire.SuiteBox, n, ts, false, []byte("pay 100"))
	}
	for _, push := range []bool{true, false} {
		lim := DefaultLimits()
		lim.Budget, lim.Peers, lim.ReplySlots, lim.OneWay = 0, 2, 1, push
		srv := New(lim)
		parse := wire.ParseRequest
		if push {
			parse = wire.ParsePush
		}
		rnd := func() *seqReader { return &seqReader{b: make([]byte, 16)} }
		if d := srv.Open(nil, seal(push, "victim", 1, vectorTime), vectorTime, pol, rnd()); !d.Deliver {
			t.Fatal(outcome(d))
		} else if !push {
			srv.SealReply(nil, d.Ticket, nil, rnd())
		}
		m := seal(push, "victim", 2, vectorTime+1)
		r, body := evictMidFlight(t, srv, pol, m, parse, seal(push, "x1", 1, vectorTime), seal(push, "x2", 1, vectorTime))
		var d Decision
		if push {
			d = srv.acceptPush(r, body, Decision{})
		} else {
			d = srv.accept(r, body, Decision{}, rnd())
		}
		if !d.Deliver {
			t.Fatalf("push %v: first delivery: %s", push, outcome(d))
		}
		if !push {
			srv.SealReply(nil, d.Ticket, nil, rnd())
			// Another request takes the only reply slot: the replay
			// below cannot be answered from the reply cache.
			if d := srv.Open(nil, seal(push, "x1", 2, vectorTime), vectorTime, pol, rnd()); d.Deliver {
				srv.SealReply(nil, d.Ticket, nil, rnd())
			}
		}
		if d := srv.Open(nil, m, vectorTime, pol, rnd()); d.Deliver {
			t.Errorf("push %v: the message was delivered twice by one instance", push)
		}
	}
}

// TestPullEpochBoundaryFlood: just after an epoch boundary, a flood of
// forged messages from new short-term keys spends the budget; an
// established pusher's first message under the new epoch's key is still
// delivered (a PULL worker does not charge a cached peer's dhE, which it
// computes once and keeps), while a REP worker answers BUSY, which its
// client retries (review of issue 17, F3). The agreement is kept even
// when the body does not open, so that a cached peer costs at most one
// uncharged dhE per epoch however many messages it sends.
func TestPullEpochBoundaryFlood(t *testing.T) {
	chain := newEpochChain(secret("epoch chain"), 0, vectorTime-60000, 300000)
	lim := DefaultLimits()
	lim.Budget, lim.OneWay = 4, true
	srv := New(lim)
	pol := func(now uint64) *Policy {
		return &Policy{Keys: []KeyPair{{Secret: secret("server"), Public: public("server")}}, Window: 120000, Skew: 10000,
			Epochs: chain.at(now, 10000)}
	}
	pusher := newClient("eph established", "", public("server"), wire.SuiteBox, 0, nil)
	pusher.pushing()
	k0 := chain.key(0)
	pusher.useEpoch(k0.Public, k0.ID)
	if d := srv.Open(nil, pusher.seal(wire.SuiteBox, 1, vectorTime, false, []byte("a")), vectorTime, pol(vectorTime), nil); !d.Deliver {
		t.Fatalf("established: %s", outcome(d))
	}
	now := uint64(vectorTime + 300000) // epoch 1
	k1 := chain.key(1)
	for i := range 8 { // forged: fresh C', naming the current epoch
		f := newClient(fmt.Sprintf("eph forger %d", i), "", public("other"), wire.SuiteBox, 0, nil)
		f.pushing()
		f.useEpoch(k1.Public, k1.ID)
		srv.Open(nil, f.seal(wire.SuiteBox, 1, now, false, []byte("x")), now, pol(now), nil)
	}
	fresh := newClient("eph established", "", public("server"), wire.SuiteBox, 0, nil)
	fresh.pushing()
	fresh.useEpoch(k1.Public, k1.ID)
	junk := fresh.seal(wire.SuiteBox, 2, now, false, []byte("b"))
	junk[len(junk)-1] ^= 1
	if d := srv.Open(nil, junk, now, pol(now), nil); d.Deliver || d.Reason != ReasonForged {
		t.Fatalf("a forged body under the cached C': %s", outcome(d))
	}
	if srv.peers.get(&fresh.ephPub).epochKeys(k1.ID[:], wire.SuiteBox) == nil {
		t.Fatal("the cached peer's agreement with the epoch was not kept")
	}
	if d := srv.Open(nil, fresh.seal(wire.SuiteBox, 3, now, false, []byte("b")), now, pol(now), nil); !d.Deliver {
		t.Fatalf("the established pusher after the boundary, during the flood: %s, want deliver", outcome(d))
	}
}

// TestVouchNamesThePattern: a vouch made for one pattern never verifies
// in the other (SPEC.md §15.1). A thief of a REQ client's c' who puts its
// vouch in a PUSH message, or of a pusher's c' who puts its vouch in a
// request, is dropped as a bad vouch, though every other byte is right.
func TestVouchNamesThePattern(t *testing.T) {
	lim := DefaultLimits()
	lim.Budget = 0
	pullLim := lim
	pullLim.OneWay = true
	pol := &Policy{Keys: []KeyPair{{Secret: secret("server"), Public: public("server")}}, Window: 120000, Skew: 10000}
	expiry := uint64(vectorTime + 3600000)
	thief := newPatternClient(false, "eph stolen req", "client", public("server"), wire.SuiteBox, expiry, nil)
	thief.pushing() // a PUSH message carrying the REQ client's vouch
	if d := New(pullLim).Open(nil, thief.seal(wire.SuiteBox, 1, vectorTime, false, []byte("x")), vectorTime, pol, nil); d.Deliver || d.Reason != ReasonBadVouch {
		t.Errorf("a REQ vouch in a PUSH message: %s, want drop:bad-vouch", outcome(d))
	}
	thief = newPatternClient(true, "eph stolen push", "client", public("server"), wire.SuiteBox, expiry, nil)
	if d := New(lim).Open(nil, thief.seal(wire.SuiteBox, 1, vectorTime, false, []byte("x")), vectorTime, pol, &seqReader{b: make([]byte, 16)}); d.Deliver || d.Reason != ReasonBadVouch {
		t.Errorf("a pusher's vouch in a request: %s, want drop:bad-vouch", outcome(d))
	}
	genuine := newPatternClient(true, "eph genuine push", "client", public("server"), wire.SuiteBox, expiry, nil)
	genuine.pushing()
	if d := New(pullLim).Open(nil, genuine.seal(wire.SuiteBox, 1, vectorTime, false, []byte("x")), vectorTime, pol, nil); !d.Deliver {
		t.Errorf("a pusher's own vouch: %s, want deliver", outcome(d))
	}
}
