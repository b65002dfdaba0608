package server

// Hybrid-mode test vectors (SPEC.md §16.8): the cases below are written
// to ../../testdata/vectors/hybrid with -update and replayed from their
// fields alone; testdata/hybrid-check (a second ML-KEM implementation, in
// Node.js) checks the same files. The C implementation does not read them
// (libsodium has no ML-KEM).

import (
	"bytes"
	"crypto/mlkem"
	"crypto/mlkem/mlkemtest"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/secsock/secsock/internal/wire"
)

const hybridVectorDir = vectorDir + "/hybrid"

// hybridKey returns epoch k's hybrid key (k at or after the chain's index).
func (c *epochChain) hybridKey(k uint32) *wire.HybridKey {
	seed := c.seed
	for i := c.index; i < k; i++ {
		seed = wire.Ratchet(&seed)
	}
	return wire.DeriveHybrid(&seed, k)
}

// hybridAt is at with the hybrid mode on: every accepted key has its
// hybrid part, and the derivable epochs' keys are listed (SPEC.md §16.1).
func (c *epochChain) hybridAt(now, z uint64) *Epochs {
	e := c.at(now, z)
	if e == nil {
		return nil
	}
	cur := uint32((now - c.origin) / c.length)
	e.Current = cur
	for k := max(c.index, cur-min(cur, 1)); k <= cur+1; k++ {
		e.KEM = append(e.KEM, c.hybridKey(k))
	}
	for i := range e.Accepted {
		e.Accepted[i].Hybrid = e.kemKey(e.Accepted[i].Index)
	}
	return e
}

// hyClient is a test client in the hybrid mode: it seals as SPEC.md §16.3
// and §16.4 say.
type hyClient struct {
	*client
	prkE      wire.Secret
	kemElem   []byte
	ticket    []byte
	ss        [32]byte // the KEM secret, or a ticket's q
	q         [32]byte // the resumption secret of a ciphertext request (§16.4)
	wantEpoch bool
	wantKEM   bool
}

// useHybrid makes c seal with epoch key ep and, if hy is not nil, with a
// ciphertext (kemElem set, ss its secret) or a ticket (ticket set, ss q).
func (c *hyClient) useHybrid(ep wire.EpochKey) {
	dhE, err := wire.X25519(&c.eph, &ep.Public)
	if err != nil {
		panic(err)
	}
	c.epochElem = wire.EpochElement(ep.ID)
	c.prkE = wire.EpochSecret(&c.prk0, &dhE, &ep.Public, c.epochElem)
	prk := c.prkE
	switch {
	case c.kemElem != nil:
		prk = wire.HybridSecret(&c.prkE, &c.ss, ep.Hybrid.Public, c.kemElem)
		c.q = wire.ResumptionSecret(&prk)
	case c.ticket != nil:
		prk = wire.TicketSecret(&c.prkE, &c.ss, wire.TicketElement(c.ticket))
	}
	c.keys = wire.SessionKeys(&prk, c.keys.Suite)
}

func (c *hyClient) seal(kind byte, suite byte, n, ts uint64, body []byte) []byte {
	f := wire.RequestFields{Kind: kind, Suite: suite, Eph: c.ephPub, Counter: n, Timestamp: ts,
		Epoch: c.epochElem, KEM: c.kemElem, WantEpoch: c.wantEpoch, WantKEM: c.wantKEM}
	if c.ticket != nil {
		f.Ticket = wire.TicketElement(c.ticket)
	}
	id := c.id
	if !wire.IsVouched(kind) {
		id = nil
	}
	return wire.AppendRequest(nil, &f, c.keys, id, body)
}

// encapsulate is ML-KEM-768.Encaps_internal(ek, m).
func encapsulate(ek []byte, m []byte) (ss [32]byte, ct []byte) {
	k, err := mlkem.NewEncapsulationKey768(ek)
	if err != nil {
		panic(err)
	}
	s, ct, err := mlkemtest.Encapsulate768(k, m)
	if err != nil {
		panic(err)
	}
	copy(ss[:], s)
	return ss, ct
}

// hyStep is one message of a hybrid vector file.
type hyStep struct {
	comment      string
	eph          string // key label of c' (default "eph " + file name)
	suite        byte
	counter      uint64
	dt           int64 // timestamp minus vectorTime
	nowOffset    int64 // server clock minus timestamp
	ping         bool
	anonymous    bool // an anonymous kind, in a file with a client key
	epoch        int  // the epoch to seal with (default 0; -1: long-term key only)
	kem          bool // carry a fresh ciphertext (random "kem " + name + step)
	reuseKEM     int  // carry the ciphertext of this step again
	ticketFrom   int  // carry the ticket issued at this step
	ticket       func(v *hyFile, h *wire.HybridKey, eph [32]byte) (t []byte, q [32]byte)
	wantEpoch    bool
	wantKEM      bool
	body, reply  []byte
	clientSent   func([]byte) []byte // the client sent this (not sealable from the fields)
	mutate       func([]byte) []byte // an attacker's change in transit
	expectServer string
	expectClient string
}

// hyFile is one hybrid vector file.
type hyFile struct {
	name, comment string
	client        string // key label; "" anonymous
	policy        bool   // a client policy (authorizing client)
	hybrid        string // "on", "require" or "off"
	budget        int
	steps         []hyStep
}

const hybridSeed = "hybrid seed"

// generateHybrid runs v against a server and writes its vector file.
func generateHybrid(v hyFile) string {
	var w vectorWriter
	w.comment(v.comment)
	w.field("name", v.name)
	s := secret("server")
	w.field("server_secret", s[:])
	if v.client != "" {
		cs := secret(v.client)
		w.field("client_secret", cs[:])
	}
	w.field("seal_to", 0)
	w.field("freshness", 120000)
	w.field("max_skew", 10000)
	if v.policy {
		p := public(v.client)
		w.field("authorized", p[:])
	}
	w.field("allow_anonymous", false)
	lim := vectorLimits(0, 0)
	lim.Budget = v.budget
	w.field("peer_cache", lim.Peers)
	w.field("reply_slots", lim.ReplySlots)
	w.field("max_resends", lim.MaxResends)
	w.field("budget", lim.Budget)
	chain := newEpochChain(secret(hybridSeed), 0, vectorTime-60000, 0)
	w.field("epoch_seed", chain.seed[:])
	w.field("epoch_index", chain.index)
	w.field("epoch_origin", chain.origin)
	w.field("epoch_length", chain.length)
	w.field("hybrid", v.hybrid)
	var authorized []string
	if v.policy {
		authorized = []string{v.client}
	}
	wd := newWorld([]string{"server"}, v.policy, authorized, false, lim)
	wd.pol.Hybrid = map[string]HybridMode{"on": HybridOn, "require": HybridRequire, "off": HybridOff}[v.hybrid]
	issued := map[int][]byte{}    // step -> ticket issued
	secrets := map[int][32]byte{} // step -> ss of its ciphertext
	resumed := map[int][32]byte{} // step -> q of its ciphertext request
	cts := map[int][]byte{}       // step -> its KEM element
	for i, st := range v.steps {
		n := i + 1
		if st.eph == "" {
			st.eph = "eph " + v.name
		}
		st.suite = max(st.suite, wire.SuiteBox)
		st.counter = max(st.counter, 1)
		ts := uint64(vectorTime + st.dt)
		now := uint64(int64(ts) + st.nowOffset)
		expiry := uint64(vectorTime + 3600000)
		to := public("server")
		c := &hyClient{client: newClient(st.eph, v.client, to, st.suite, expiry, nil), wantEpoch: st.wantEpoch, wantKEM: st.wantKEM}
		var ep wire.EpochKey
		var kemRandom, ticketSent []byte
		var ticketQ [32]byte
		if st.epoch >= 0 {
			ep = chain.key(uint32(st.epoch))
			ep.Hybrid = chain.hybridKey(uint32(st.epoch))
			switch {
			case st.kem:
				h := sha256.Sum256([]byte(fmt.Sprintf("kem %s %d", v.name, n)))
				kemRandom = h[:]
				var ct []byte
				c.ss, ct = encapsulate(ep.Hybrid.Public, kemRandom)
				c.kemElem = wire.KEMElement(ct)
				secrets[n], cts[n] = c.ss, c.kemElem
			case st.reuseKEM != 0:
				c.ss, c.kemElem = secrets[st.reuseKEM], cts[st.reuseKEM]
				secrets[n], cts[n] = c.ss, c.kemElem
			case st.ticketFrom != 0:
				c.ticket, c.ss = issued[st.ticketFrom], resumed[st.ticketFrom]
				ticketSent, ticketQ = c.ticket, c.ss
			case st.ticket != nil:
				c.ticket, c.ss = st.ticket(&v, ep.Hybrid, c.ephPub)
				ticketSent, ticketQ = c.ticket, c.ss
			}
			c.useHybrid(ep)
			if c.kemElem != nil {
				resumed[n] = c.q
			}
		}
		kind := wire.KindRequest
		if st.ping {
			kind = wire.KindPing
		}
		if v.client != "" && !st.anonymous {
			kind++
		}
		req := c.seal(kind, st.suite, st.counter, ts, st.body)
		mutated := st.clientSent != nil
		if st.clientSent != nil {
			req = st.clientSent(req)
		}
		sent := req
		if st.mutate != nil {
			req, mutated = st.mutate(req), true
		}
		if st.comment != "" {
			w.comment(st.comment)
		}
		w.field("step", n)
		w.field("now", now)
		e := secret(st.eph)
		w.field("eph_secret", e[:])
		w.field("suite", st.suite)
		w.field("counter", st.counter)
		w.field("timestamp", ts)
		if v.client != "" {
			w.field("vouch_expiry", expiry)
		}
		w.field("ping", st.ping)
		w.field("anonymous", v.client == "" || st.anonymous)
		if st.epoch >= 0 {
			w.field("epoch_key", ep.Public[:])
		}
		w.field("want_epoch", st.wantEpoch)
		w.field("want_kem", st.wantKEM)
		if c.kemElem != nil {
			w.field("kem_epoch", st.epoch)
			w.field("kem_shared", c.ss[:])
			if kemRandom != nil {
				w.field("kem_random", kemRandom)
			} else {
				w.field("kem_ciphertext", c.kemElem[3:])
			}
		}
		if ticketSent != nil {
			w.field("ticket_sent", ticketSent)
			w.field("ticket_secret", ticketQ[:])
		}
		w.field("request_body", st.body)
		w.field("request", req)
		w.field("mutated", mutated)
		if !bytes.Equal(sent, req) {
			w.field("client_request", sent)
		}
		rh := sha256.Sum256([]byte(fmt.Sprintf("reply random %s %d", v.name, n)))
		th := sha256.Sum256([]byte(fmt.Sprintf("ticket random %s %d", v.name, n)))
		rnd, trnd := rh[:wire.ReplyRandSize], th[:wire.TicketRandSize]
		pol := *wd.pol
		if pol.Hybrid != HybridOff {
			pol.Epochs = chain.hybridAt(now, pol.Skew)
		} else {
			pol.Epochs = chain.at(now, pol.Skew)
		}
		d := wd.srv.Open(nil, req, now, &pol, &seqReader{b: append(bytes.Clone(trnd), rnd...)})
		if got := outcome(d); got != st.expectServer {
			panic(fmt.Sprintf("vector %s step %d: server outcome %s, case expects %s", v.name, n, got, st.expectServer))
		}
		w.field("expect_server", st.expectServer)
		answer := d.Respond
		if d.Deliver {
			w.field("reply_body", st.reply)
			var err error
			if answer, err = wd.srv.SealReply(nil, d.Ticket, st.reply, &seqReader{b: rnd}); err != nil {
				panic(err)
			}
		}
		if d.Deliver || outcome(d) == "reply" {
			w.field("ticket_random", trnd)
			w.field("reply_random", rnd)
		}
		if answer == nil {
			continue
		}
		w.field("reply", answer)
		w.field("reply_mutated", false)
		got, _, elems := c.openHybrid(headerOf(sent), st.counter, answer)
		if got != st.expectClient {
			panic(fmt.Sprintf("vector %s step %d: client outcome %s, case expects %s", v.name, n, got, st.expectClient))
		}
		w.field("expect_client", st.expectClient)
		if t := elems[wire.ElemKEMTicket]; t != nil {
			issued[n] = t
			w.field("ticket", t)
		}
		if k := elems[wire.ElemKEMCiphertext]; k != nil {
			w.field("kem_key", k)
		}
	}
	return w.b.String()
}

var hybridRefusalNames = map[byte]string{
	wire.RefuseUnknownTicket: "unknown-ticket", wire.RefuseHybridRequired: "hybrid-required",
}

// openHybrid opens an answer as the client does and returns the REPLY_EXT
// elements too.
func (c *hyClient) openHybrid(h []byte, n uint64, b []byte) (string, []byte, map[byte][]byte) {
	if len(b) >= 3 && b[1] == wire.KindReplyExt {
		el, body, err := wire.OpenReplyExt(nil, c.keys, n, b)
		if err != nil {
			return openError(err), nil, nil
		}
		m, err := wire.Elements(el)
		if err != nil {
			return "error:malformed", nil, nil
		}
		return "ok", body, m
	}
	if len(b) == wire.RefusalSize && b[1] == wire.KindRefusal {
		if r, err := wire.CheckRefusal(&c.prk0, h, b); err == nil && hybridRefusalNames[r] != "" {
			return "error:" + hybridRefusalNames[r], nil, nil
		}
	}
	got, body := c.open(h, n, b)
	return got, body, nil
}

func init() {
	reasonNames[ReasonUnknownTicket] = "unknown-ticket"
	reasonNames[ReasonHybridRequired] = "hybrid-required"
}

func TestHybridVectors(t *testing.T) {
	if *updateVectors {
		os.MkdirAll(hybridVectorDir, 0o755)
		old, _ := filepath.Glob(filepath.Join(hybridVectorDir, "*.vec"))
		for _, f := range old {
			os.Remove(f)
		}
		for _, v := range hybridVectorFiles() {
			if err := os.WriteFile(filepath.Join(hybridVectorDir, v.name+".vec"), []byte(generateHybrid(v)), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	files, _ := filepath.Glob(filepath.Join(hybridVectorDir, "*.vec"))
	if n := len(hybridVectorFiles()); len(files) != n {
		t.Fatalf("found %d hybrid vector files, want %d (run go test ./internal/server -run TestHybridVectors -update)", len(files), n)
	}
	sort.Strings(files)
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".vec"), func(t *testing.T) { replayHybridFile(t, f) })
	}
}

// replayHybridFile runs one hybrid vector file from its fields alone.
func replayHybridFile(t *testing.T, path string) {
	head, steps := readVectorFile(t, path)
	lim := vectorLimits(int(head.Uint(t, "peer_cache", 4096)), int(head.Uint(t, "reply_slots", 1024)))
	lim.Budget = int(head.Uint(t, "budget", 0))
	var s [32]byte
	copy(s[:], head.Hex(t, "server_secret"))
	sp, _ := wire.Public(&s)
	pol := &Policy{Keys: []KeyPair{{Secret: s, Public: sp}}, Window: head.Uint(t, "freshness", 0), Skew: head.Uint(t, "max_skew", 0)}
	pol.Hybrid = map[string]HybridMode{"on": HybridOn, "require": HybridRequire, "off": HybridOff}[head.Str("hybrid")]
	if head.Has("authorized") {
		var k [32]byte
		copy(k[:], head.Hex(t, "authorized"))
		pol.Authorized = map[[32]byte]struct{}{k: {}}
	}
	var seed [32]byte
	copy(seed[:], head.Hex(t, "epoch_seed"))
	chain := &epochChain{seed: seed, index: uint32(head.Uint(t, "epoch_index", 0)),
		origin: head.Uint(t, "epoch_origin", 0), length: head.Uint(t, "epoch_length", 0)}
	srv := New(lim)
	for _, st := range steps {
		t.Run("step"+st.Str("step"), func(t *testing.T) {
			p := *pol
			now := st.Uint(t, "now", 0)
			if p.Hybrid != HybridOff {
				p.Epochs = chain.hybridAt(now, p.Skew)
			} else {
				p.Epochs = chain.at(now, p.Skew)
			}
			replayHybridStep(t, head, st, srv, &p, chain)
		})
	}
}

func replayHybridStep(t *testing.T, head, st fields, srv *Server, pol *Policy, chain *epochChain) {
	var eph [32]byte
	copy(eph[:], st.Hex(t, "eph_secret"))
	sealTo := pol.Keys[0].Public
	suite := byte(st.Uint(t, "suite", 1))
	c := &hyClient{client: &client{eph: eph}, wantEpoch: st.Str("want_epoch") == "true", wantKEM: st.Str("want_kem") == "true"}
	c.ephPub, _ = wire.Public(&eph)
	dh, _ := wire.X25519(&eph, &sealTo)
	c.prk0 = wire.RequestSecret(&dh, &c.ephPub, &sealTo)
	c.keys = wire.SessionKeys(&c.prk0, suite)
	if head.Has("client_secret") {
		var cs [32]byte
		copy(cs[:], head.Hex(t, "client_secret"))
		cp, _ := wire.Public(&cs)
		dh2, _ := wire.X25519(&cs, &sealTo)
		v := wire.VouchSecret(&dh2, &cp, &sealTo)
		e := st.Uint(t, "vouch_expiry", 0)
		c.id = &wire.Identity{Client: cp, Vouch: wire.Vouch(&v, &c.ephPub, &cp, &sealTo, e), Expiry: e}
	}
	if st.Has("epoch_key") {
		var ep wire.EpochKey
		copy(ep.Public[:], st.Hex(t, "epoch_key"))
		ep.ID = wire.EpochID(&ep.Public)
		if st.Has("kem_epoch") {
			ek := chain.hybridKey(uint32(st.Uint(t, "kem_epoch", 0))).Public
			ep.Hybrid = &wire.HybridKey{Public: ek}
			ct := st.Hex(t, "kem_ciphertext")
			if m := st.Hex(t, "kem_random"); m != nil {
				c.ss, ct = encapsulate(ek, m)
			} else {
				copy(c.ss[:], st.Hex(t, "kem_shared"))
			}
			if !bytes.Equal(c.ss[:], st.Hex(t, "kem_shared")) {
				t.Fatalf("encapsulating with kem_random gives ss %x, want %x", c.ss, st.Hex(t, "kem_shared"))
			}
			c.kemElem = wire.KEMElement(ct)
		}
		if st.Has("ticket_sent") {
			c.ticket = st.Hex(t, "ticket_sent")
			copy(c.ss[:], st.Hex(t, "ticket_secret"))
		}
		c.useHybrid(ep)
	}
	kind := wire.KindRequest
	if st.Str("ping") == "true" {
		kind = wire.KindPing
	}
	if st.Str("anonymous") == "false" {
		kind++
	}
	n, ts := st.Uint(t, "counter", 0), st.Uint(t, "timestamp", 0)
	req, body := st.Hex(t, "request"), st.Hex(t, "request_body")
	if st.Str("mutated") == "false" {
		if got := c.seal(kind, suite, n, ts, body); !bytes.Equal(got, req) {
			t.Fatalf("sealing the fields does not reproduce request:\n got %x\nwant %x", got, req)
		}
	}
	rnd := append(bytes.Clone(st.Hex(t, "ticket_random")), st.Hex(t, "reply_random")...)
	d := srv.Open(nil, req, st.Uint(t, "now", 0), pol, &seqReader{b: rnd})
	if got, want := outcome(d), st.Str("expect_server"); got != want {
		t.Fatalf("server: got %s, want %s", got, want)
	}
	if d.Deliver && !bytes.Equal(d.Body, body) {
		t.Fatalf("server delivered %x, want %x", d.Body, body)
	}
	answer := d.Respond
	if d.Deliver {
		var err error
		if answer, err = srv.SealReply(nil, d.Ticket, st.Hex(t, "reply_body"), &seqReader{b: st.Hex(t, "reply_random")}); err != nil {
			t.Fatal(err)
		}
	}
	wireAnswer := st.Hex(t, "reply")
	if !bytes.Equal(answer, wireAnswer) {
		t.Fatalf("server answer does not reproduce reply:\n got %x\nwant %x", answer, wireAnswer)
	}
	if wireAnswer == nil {
		return
	}
	sent := req
	if st.Has("client_request") {
		sent = st.Hex(t, "client_request")
	}
	got, opened, elems := c.openHybrid(headerOf(sent), n, wireAnswer)
	if want := st.Str("expect_client"); got != want {
		t.Fatalf("client: got %s, want %s", got, want)
	}
	if got == "ok" && d.Deliver && !bytes.Equal(opened, st.Hex(t, "reply_body")) {
		t.Fatalf("client opened %x, want %x", opened, st.Hex(t, "reply_body"))
	}
	if !bytes.Equal(elems[wire.ElemKEMTicket], st.Hex(t, "ticket")) || !bytes.Equal(elems[wire.ElemKEMCiphertext], st.Hex(t, "kem_key")) {
		t.Fatal("the answer's ticket or KEM key is not the vector's")
	}
}
