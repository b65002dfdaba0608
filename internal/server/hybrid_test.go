package server

// Attacks on the hybrid mode's server side (SPEC.md §16.5), in simulated
// time; each fails without the defence it names.

import (
	"bytes"
	"testing"

	"github.com/secsock/secsock/internal/wire"
)

// hybridWorld is a testWorld whose server has the hybrid mode on.
func hybridWorld(lim Limits, client ...string) (*testWorld, *epochChain) {
	w := newTestWorld(lim, client...)
	w.pol.Hybrid = HybridOn
	chain := newEpochChain(secret(hybridSeed), 0, vectorTime-60000, 0)
	w.pol.Epochs = chain.hybridAt(w.now, w.pol.Skew)
	return w, chain
}

// keyFetch is an anonymous key-fetch ping from eph with counter n.
func keyFetch(eph string, n, ts uint64) []byte {
	c := &hyClient{client: newClient(eph, "", public("server"), wire.SuiteBox, 0, nil), wantEpoch: true, wantKEM: true}
	return c.seal(wire.KindPing, wire.SuiteBox, n, ts, nil)
}

// TestKeyFetchFloodKeepsReplies (review R1): an unauthorized sender's
// key-fetch pings on one short-term key are answered with the public keys
// and nothing else: no peer, no reply-cache slot, a charge each. So 1,100
// of them neither flush an authorized client's kept reply (its retry is
// still resent, not refused REPLAYED) nor escape the budget. Without the
// stateless answer the pings are cached pings: one X25519 in all, and the
// kept reply is gone.
func TestKeyFetchFloodKeepsReplies(t *testing.T) {
	lim := vectorLimits(0, 0)
	lim.Budget = 200
	w, _ := hybridWorld(lim, "alice")
	alice := w.seal("alice eph", "alice", 1, w.now)
	if d := w.open(alice); !d.Deliver {
		t.Fatalf("alice: %s", outcome(d))
	}
	d := w.open(alice)
	if outcome(d) != "drop:retry" || !d.Pending {
		t.Fatalf("alice's copy while pending: %s", outcome(d))
	}
	first := w.srv.lookupPendingForTest(alice)
	if _, err := w.srv.SealReply(nil, first, []byte("y"), nil); err != nil {
		t.Fatal(err)
	}
	before := wire.ScalarMults.Load()
	answered, busy := 0, 0
	for n := uint64(1); n <= 1100; n++ {
		d := w.open(keyFetch("mallory eph", n, w.now))
		switch outcome(d) {
		case "reply":
			answered++
			if _, _, err := wire.Classify(d.Respond); err != nil || d.Respond[1] != wire.KindReplyExt {
				t.Fatalf("ping %d: answer %x", n, d.Respond)
			}
		case "hint:busy":
			busy++
		default:
			t.Fatalf("ping %d: %s", n, outcome(d))
		}
	}
	cost := wire.ScalarMults.Load() - before
	if answered == 0 || answered > 200 || busy == 0 || cost < uint64(answered) {
		t.Fatalf("answered %d, busy %d, %d X25519: the pings were not charged each", answered, busy, cost)
	}
	if peers, _, _ := w.srv.Size(); peers != 1 {
		t.Fatalf("%d cached peers: the key fetch took state", peers)
	}
	if got := outcome(w.open(alice)); got != "resend" {
		t.Fatalf("alice's retry after the flood: %s, want resend", got)
	}
}

// lookupPendingForTest returns the ticket of the pending request b.
func (s *Server) lookupPendingForTest(b []byte) Ticket {
	r, _ := wire.ParseRequest(b)
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.peers.get(&r.Eph)
	return Ticket{key: ID{eph: r.Eph, counter: r.Counter}, keys: p.keysFor(r.Suite)}
}

// TestSiblingGetsTicket (review R3): a second request with the same
// ciphertext, answered from the cached peer without a decapsulation, gets
// a ticket too, one that opens and holds the resumption secret.
func TestSiblingGetsTicket(t *testing.T) {
	w, chain := hybridWorld(vectorLimits(0, 0))
	ep := chain.key(0)
	ep.Hybrid = chain.hybridKey(0)
	c := &hyClient{client: newClient("sib", "", public("server"), wire.SuiteBox, 0, nil)}
	var ct []byte
	c.ss, ct = encapsulate(ep.Hybrid.Public, bytes.Repeat([]byte{7}, 32))
	c.kemElem = wire.KEMElement(ct)
	c.useHybrid(ep)
	before := wire.Decapsulations.Load()
	for n := uint64(1); n <= 2; n++ {
		d := w.open(c.seal(wire.KindRequest, wire.SuiteBox, n, w.now, []byte("x")))
		if !d.Deliver {
			t.Fatalf("request %d: %s", n, outcome(d))
		}
		reply, err := w.srv.SealReply(nil, d.Ticket, []byte("y"), nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _, m := c.openHybrid(nil, n, reply)
		tk := m[wire.ElemKEMTicket]
		if tk == nil {
			t.Fatalf("request %d: no ticket in the reply", n)
		}
		srv := public("server")
		q, err := ep.Hybrid.OpenTicket(tk, &c.ephPub, &srv, &ep.ID, wire.SuiteBox)
		if err != nil || q != c.q {
			t.Fatalf("request %d: the ticket does not hold the resumption secret (%v)", n, err)
		}
	}
	if n := wire.Decapsulations.Load() - before; n != 1 {
		t.Fatalf("%d decapsulations, want 1 (the sibling from the cache)", n)
	}
}
