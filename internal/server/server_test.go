package server

// Unit tests of the state machine's defences, in simulated time: each
// plays the attacker and fails without the defence it names.

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/secsock/secsock/internal/wire"
)

// testWorld is a server, its policy and a clock.
type testWorld struct {
	srv *Server
	pol *Policy
	now uint64
}

func newTestWorld(lim Limits, client ...string) *testWorld {
	w := &testWorld{srv: New(lim), now: vectorTime}
	w.pol = &Policy{Keys: []KeyPair{{Secret: secret("server"), Public: public("server")}}, Window: 120000, Skew: 10000}
	if len(client) > 0 {
		w.pol.Authorized = map[[32]byte]struct{}{}
		for _, c := range client {
			w.pol.Authorized[public(c)] = struct{}{}
		}
	}
	return w
}

// send seals body from the short-term key eph (and long-term key client,
// if not "") with counter n and timestamp ts, and runs it through Open.
func (w *testWorld) send(eph, client string, n, ts uint64) Decision {
	return w.open(w.seal(eph, client, n, ts))
}

func (w *testWorld) seal(eph, client string, n, ts uint64) []byte {
	c := newClient(eph, client, public("server"), wire.SuiteBox, ts+3600000, nil)
	return c.seal(wire.SuiteBox, n, ts, false, []byte("x"))
}

func (w *testWorld) open(req []byte) Decision {
	return w.srv.Open(nil, req, w.now, w.pol, &seqReader{b: make([]byte, 64)})
}

// serverCost returns the X25519 that Open does for req (the client's
// sealing is done before counting).
func (w *testWorld) serverCost(req []byte) (uint64, Decision) {
	before := wire.ScalarMults.Load()
	d := w.open(req)
	return wire.ScalarMults.Load() - before, d
}

// TestFutureDatedFloodRefusesNoOne: a served client makes new short-term
// keys at the full budget rate, each dated the whole allowed skew ahead,
// against a small peer cache (so every key is evicted and leaves a
// tombstone), for several windows of simulated time; legitimate clients,
// some established and some new, send requests dated now and retries up to
// most of the window old throughout. None is refused (SPEC.md §6.2: with a
// budget the tombstone table never spills). The control, a table too small
// for the rate, spills into the global floor and refuses them, so the test
// can fail. The window is scaled down (W = 2 s, Z = 1 s, 500 keys per
// second) to keep the scalar multiplications few; the argument does not
// depend on the scale, and the socket-level attack test runs 2,000 per
// second with the default window.
func TestFutureDatedFloodRefusesNoOne(t *testing.T) {
	const rate, window, skew, seconds = 500, 2000, 1000, 8
	for _, c := range []struct {
		name       string
		budget     int
		tombstones int
		refused    bool
	}{
		{"budget-sized tombstones", rate, 0, false},
		{"control: a table that spills", 0, 200, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			lim := DefaultLimits()
			lim.Peers, lim.Budget, lim.Tombstones = 64, c.budget, c.tombstones
			w := newTestWorld(lim)
			w.pol.Window, w.pol.Skew = window, skew
			refused, served, busy := 0, 0, 0
			counters := map[int]uint64{}
			start := w.now
			for tick := 0; tick < seconds*10; tick++ { // 100 ms ticks
				for i := 0; i < rate/10; i++ {
					w.now = start + uint64(tick)*100 + uint64(i)
					w.send(fmt.Sprintf("flood %d %d", tick, i), "", 1, w.now+skew)
				}
				for k := 0; k < 4; k++ {
					eph := fmt.Sprintf("legit %d", k)
					if k%2 == 1 {
						eph = fmt.Sprintf("legit %d at %d", k, tick) // new clients too
					}
					counters[k]++
					age := uint64(k) * 400 // retries up to 1.2 s old, within W
					switch d := w.send(eph, "", counters[k], w.now-age); {
					case d.Deliver:
						served++
					case d.Reason == ReasonBusy:
						busy++ // a new key past the budget the flood spends: a hint, not a refusal
					default:
						refused++
					}
				}
			}
			t.Logf("served %d, busy %d, refused %d", served, busy, refused)
			if c.refused {
				if refused == 0 {
					t.Fatal("control: spilling tombstones should refuse legitimate clients; none was")
				}
				return
			}
			if refused != 0 {
				t.Fatalf("%d legitimate requests refused (%d served)", refused, served)
			}
			if _, tombs, _ := w.srv.Size(); tombs > rate*(window+skew)/1000+rate {
				t.Fatalf("%d tombstones, over the bound", tombs)
			}
		})
	}
}

// TestOneShotFloodKeepsEstablishedPeers: established clients (two
// requests or more) stay cached through a flood of one-shot keys, so
// they cost no scalar multiplication; a plain LRU would evict them.
func TestOneShotFloodKeepsEstablishedPeers(t *testing.T) {
	lim := DefaultLimits()
	lim.Peers, lim.Budget = 64, 0
	w := newTestWorld(lim)
	for k := 0; k < 32; k++ {
		for n := uint64(1); n <= 2; n++ {
			if d := w.send(fmt.Sprintf("est %d", k), "", n, w.now); !d.Deliver {
				t.Fatal(d.Reason)
			}
		}
	}
	for i := 0; i < 1000; i++ {
		w.send(fmt.Sprintf("one-shot %d", i), "", 1, w.now)
	}
	for k := 0; k < 32; k++ {
		n, d := w.serverCost(w.seal(fmt.Sprintf("est %d", k), "", 3, w.now))
		if !d.Deliver || n != 0 {
			t.Fatalf("established client %d after the flood: %v, %d X25519 (evicted)", k, d.Reason, n)
		}
	}
}

// TestTombstoneIsPerKey: an evicted client's tombstone refuses its own old
// requests only; another client's requests of the same age are served
// (the v1 bucket marks refused them too).
func TestTombstoneIsPerKey(t *testing.T) {
	lim := DefaultLimits()
	lim.Peers, lim.ReplySlots, lim.Budget = 1, 1, 0
	w := newTestWorld(lim)
	if d := w.send("attacker", "", 1, w.now+9000); !d.Deliver {
		t.Fatal(d.Reason)
	}
	if d := w.send("victim", "", 1, w.now); !d.Deliver { // evicts the attacker
		t.Fatal(d.Reason)
	}
	if d := w.send("other", "", 1, w.now); !d.Deliver {
		t.Fatalf("another client after the eviction: %v", d.Reason)
	}
	if d := w.send("attacker", "", 1, w.now+9000); d.Reason != ReasonInDoubt {
		t.Fatalf("the evicted client's replay: %v, want in-doubt", d.Reason)
	}
}

// TestRetiredServerKeyWithCachedPeer: a short-term key cached under a
// server key that is then removed is forgotten as if evicted: its
// tombstone keeps its old requests refused under the remaining keys.
func TestRetiredServerKeyWithCachedPeer(t *testing.T) {
	lim := DefaultLimits()
	lim.ReplySlots = 1
	w := newTestWorld(lim)
	a, b := KeyPair{Secret: secret("retire a"), Public: public("retire a")}, KeyPair{Secret: secret("retire b"), Public: public("retire b")}
	w.pol.Keys = []KeyPair{a, b}
	seal := func(to [32]byte, n, ts uint64, body string) []byte {
		return newClient("retire eph", "", to, wire.SuiteBox, 0, nil).seal(wire.SuiteBox, n, ts, false, []byte(body))
	}
	open := func(req []byte) Decision { return w.srv.Open(nil, req, w.now, w.pol, &seqReader{b: make([]byte, 64)}) }
	toB := seal(b.Public, 1, w.now, "one")
	if d := open(toB); !d.Deliver || d.ServerKey != 1 {
		t.Fatalf("sealed to b: %+v", d)
	}
	w.pol = &Policy{Keys: []KeyPair{a}, Window: 120000, Skew: 10000}
	if d := open(seal(a.Public, 2, w.now+1, "two")); !d.Deliver {
		t.Fatalf("same C' sealed to a after b was retired: %v", d.Reason)
	}
	if d := open(toB); outcome(d) != "hint:cannot-open" {
		t.Fatalf("request to the retired key: %v", outcome(d))
	}
	if d := open(seal(a.Public, 1, w.now, "one")); d.Reason != ReasonInDoubt {
		t.Fatalf("old request after the retirement: %v, want in-doubt", d.Reason)
	}
}

// TestVouchKeyCostsAndCache counts X25519 per message (SPEC.md §6.1): a
// vouched client's first short-term key costs two (dh1, dh2), later ones
// one, and a bad vouch does not enter the cache.
func TestVouchKeyCostsAndCache(t *testing.T) {
	w := newTestWorld(DefaultLimits())
	forged := func(eph string) []byte {
		c := newClient(eph, "client", public("server"), wire.SuiteBox, w.now+1000, func(id *wire.Identity) { id.Vouch[0] ^= 1 })
		return c.seal(wire.SuiteBox, 1, w.now, false, []byte("x"))
	}
	if n, d := w.serverCost(forged("bad 0")); n != 2 || d.Reason != ReasonBadVouch {
		t.Fatalf("bad vouch: %d X25519, %v", n, d.Reason)
	}
	if n, d := w.serverCost(forged("bad 1")); n != 2 || d.Reason != ReasonBadVouch {
		t.Fatalf("second bad vouch: %d X25519 (a bad vouch must not be cached), %v", n, d.Reason)
	}
	for i, want := range []uint64{2, 1, 1} {
		n, d := w.serverCost(w.seal(fmt.Sprintf("vouch eph %d", i), "client", 1, w.now))
		if !d.Deliver || n != want {
			t.Fatalf("short-term key %d: %v, %d X25519, want %d", i, d.Reason, n, want)
		}
	}
	if n, d := w.serverCost(w.seal("vouch eph 0", "client", 2, w.now)); !d.Deliver || n != 0 {
		t.Fatalf("cached peer: %v, %d X25519", d.Reason, n)
	}
	junk := make([]byte, wire.AnonOverhead+8)
	junk[0], junk[1], junk[2] = wire.Version, wire.KindRequest, wire.SuiteBox
	copy(junk[4:36], bytes.Repeat([]byte{7}, 32))
	junk[43] = 1
	if n, d := w.serverCost(junk); n != 1 || d.Reason != ReasonForged {
		t.Fatalf("random junk with a fresh C': %d X25519, %v", n, d.Reason)
	}
	w.pol.Keys = append(w.pol.Keys, KeyPair{Secret: secret("previous"), Public: public("previous")})
	junk[43] = 2
	if n, d := w.serverCost(junk); n != 2 || d.Reason != ReasonForged {
		t.Fatalf("junk with two server keys: %d X25519, %v", n, d.Reason)
	}
	junk[2] = 0x7f
	if n, d := w.serverCost(junk); n != 1 || d.Reason != ReasonUnsupported {
		t.Fatalf("junk with an unknown suite: %d X25519, %v", n, d.Reason)
	}
}

// TestPolicyAppliesToCachedPeers: removing a client from the policy
// refuses its next request, even though its short-term key is cached.
func TestPolicyAppliesToCachedPeers(t *testing.T) {
	w := newTestWorld(DefaultLimits(), "client")
	if d := w.send("revoked eph", "client", 1, w.now); !d.Deliver || !d.Vouched {
		t.Fatalf("%+v", d)
	}
	w.pol = &Policy{Keys: w.pol.Keys, Authorized: map[[32]byte]struct{}{}, Window: 120000, Skew: 10000}
	if d := w.send("revoked eph", "client", 2, w.now); d.Reason != ReasonNotAuthorized || d.Respond == nil {
		t.Fatalf("revoked client's cached session: %v", outcome(d))
	}
}

// TestBudgetSparesCachedPeers: past the budget, new keys get BUSY while a
// cached peer is served; the budget refills with time.
func TestBudgetSparesCachedPeers(t *testing.T) {
	lim := DefaultLimits()
	lim.Budget = 10
	w := newTestWorld(lim)
	if d := w.send("cached", "", 1, w.now); !d.Deliver {
		t.Fatal(d.Reason)
	}
	busy := 0
	for i := 0; i < 100; i++ {
		if d := w.send(fmt.Sprintf("new %d", i), "", 1, w.now); d.Reason == ReasonBusy {
			busy++
			if !bytes.Equal(d.Respond, []byte{wire.Version, wire.KindHint, wire.HintBusy}) {
				t.Fatalf("busy answer %x", d.Respond)
			}
		}
	}
	if busy != 91 {
		t.Fatalf("%d of 100 new keys busy, want 91 (budget 10, one spent)", busy)
	}
	if d := w.send("cached", "", 2, w.now); !d.Deliver {
		t.Fatalf("cached peer past the budget: %v", d.Reason)
	}
	w.now += 1000
	if d := w.send("after a second", "", 1, w.now); !d.Deliver {
		t.Fatalf("after the refill: %v", d.Reason)
	}
}
