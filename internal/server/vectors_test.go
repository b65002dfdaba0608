package server

// Test vectors (SPEC.md §12): the cases below are written to
// ../../testdata/vectors with -update, and every file there is replayed
// against the crypto core and this state machine, without sockets. The
// C implementation in interop/ replays the same files.

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/secsock/secsock/internal/wire"
)

var updateVectors = flag.Bool("update", false, "rewrite testdata/vectors from the cases in vectors_test.go")

const vectorDir = "../../testdata/vectors"

const vectorTime = 1790000000000 // a fixed timestamp (ms)

// secret returns the test secret key named label.
func secret(label string) [32]byte { return sha256.Sum256([]byte("secsock test vector key " + label)) }

func public(label string) [32]byte {
	s := secret(label)
	p, err := wire.Public(&s)
	if err != nil {
		panic(err)
	}
	return p
}

// vecFile is one vector file to generate.
type vecFile struct {
	name, comment string
	servers       []string // key labels: current first
	sealTo        int
	sealToOther   string // the client seals to this key instead, not configured
	client        string // key label; "" anonymous
	policy        bool
	authorized    []string // key labels
	allowAnon     bool
	peerCache     int
	replySlots    int
	budget        int
	epochSeed     string // label of seed_0; "" for a server without epoch keys
	epochIndex    uint32 // the epoch whose seed the server holds
	epochLength   uint64 // ms (default 300000)
	pipeline      bool   // a PULL server and a pusher (SPEC.md §15; "pattern: pipeline")
	steps         []vecStep
}

// vecStep is one message of a vector file.
type vecStep struct {
	comment       string
	eph           string // key label of c' (default "eph " + file name)
	suite         byte   // default BOX
	counter       uint64 // default 1
	dt            int64  // timestamp minus vectorTime
	expiry        int64  // vouch expiry minus (vectorTime + 1 hour)
	nowOffset     int64  // server clock minus timestamp
	ping          bool
	body, reply   []byte
	again         bool                             // send the previous step's request bytes again
	clientSent    func([]byte) []byte              // the client itself sent this variant (not sealable from the fields)
	mutate        func([]byte) []byte              // an attacker's change in transit
	identity      func(*wire.Identity)             // forge the identity box contents
	mutateReply   func([]byte) []byte              // change the answer after sealing
	answer        func(c *client, h []byte) []byte // replace the answer entirely (made by hand)
	clientCounter uint64
	sealEpoch     bool   // seal with epoch key epochKey (SPEC.md §14.3)
	epochKey      uint32 // its index
	epochID       []byte // name it by this id instead (a forged or unknown id)
	want          bool   // add WANT_EPOCH
	sealAs        string // "push" or "request": seal as the other pattern's sender (a cross-pattern case)
	anonymous     bool   // in a file with a client key: this step is sent without it
	expectServer  string
	expectClient  string
}

// headerOf returns H of a request: bytes 0 .. 54+X.
func headerOf(req []byte) []byte {
	if len(req) < wire.HeaderSize {
		return req
	}
	n := wire.HeaderSize + int(binary.BigEndian.Uint16(req[52:54]))
	return req[:min(n, len(req))]
}

func flip(i int) func([]byte) []byte {
	return func(b []byte) []byte {
		b = bytes.Clone(b)
		if i < 0 {
			i += len(b)
		}
		b[i] ^= 0x01
		return b
	}
}

func setByte(i int, v byte) func([]byte) []byte {
	return func(b []byte) []byte { b = bytes.Clone(b); b[i] = v; return b }
}

func setEph(k [32]byte) func([]byte) []byte {
	return func(b []byte) []byte { b = bytes.Clone(b); copy(b[4:36], k[:]); return b }
}

// client is a test client: it seals as SPEC.md §5.1 says.
type client struct {
	eph, ephPub [32]byte
	prk0        wire.Secret
	keys        *wire.Keys // long-term only, or with the epoch key of useEpoch
	epochElem   []byte     // the EPOCH element, when sealing with an epoch key
	want        bool       // WANT_EPOCH
	push        bool       // a pusher: PUSH kinds and the PUSH key (SPEC.md §15)
	id          *wire.Identity
}

// pushing makes c a pusher (SPEC.md §15): PUSH kinds, and Kp for Kq.
func (c *client) pushing() {
	c.push = true
	c.keys = wire.PushKeys(&c.prk0, c.keys.Suite)
}

// derive returns c's keys of prk: request and reply keys, or Kp.
func (c *client) derive(prk *wire.Secret, suite byte) *wire.Keys {
	if c.push {
		return wire.PushKeys(prk, suite)
	}
	return wire.SessionKeys(prk, suite)
}

func newClient(ephLabel, clientLabel string, server [32]byte, suite byte, expiry uint64, forge func(*wire.Identity)) *client {
	return newPatternClient(false, ephLabel, clientLabel, server, suite, expiry, forge)
}

// newPatternClient is newClient for a REQ client or, with push, a pusher,
// whose vouch is a pusher's (SPEC.md §15.1); forge changes the identity
// after the vouch is made.
func newPatternClient(push bool, ephLabel, clientLabel string, server [32]byte, suite byte, expiry uint64, forge func(*wire.Identity)) *client {
	c := &client{eph: secret(ephLabel)}
	c.ephPub, _ = wire.Public(&c.eph)
	dh, err := wire.X25519(&c.eph, &server)
	if err != nil {
		panic(err)
	}
	c.prk0 = wire.RequestSecret(&dh, &c.ephPub, &server)
	c.keys = wire.SessionKeys(&c.prk0, suite)
	if clientLabel != "" {
		cs, cp := secret(clientLabel), public(clientLabel)
		dh2, err := wire.X25519(&cs, &server)
		if err != nil {
			panic(err)
		}
		v := wire.VouchSecret(&dh2, &cp, &server)
		vouch := wire.Vouch
		if push {
			vouch = wire.PushVouch
		}
		c.id = &wire.Identity{Client: cp, Vouch: vouch(&v, &c.ephPub, &cp, &server, expiry), Expiry: expiry}
		if forge != nil {
			forge(c.id)
		}
	}
	return c
}

// useEpoch makes the client seal with epoch key pub (SPEC.md §14.3),
// naming it by id (another id only in forged cases).
func (c *client) useEpoch(pub [32]byte, id [wire.EpochIDSize]byte) {
	dhE, err := wire.X25519(&c.eph, &pub)
	if err != nil {
		panic(err)
	}
	c.epochElem = wire.EpochElement(id)
	prk := wire.EpochSecret(&c.prk0, &dhE, &pub, c.epochElem)
	c.keys = c.derive(&prk, c.keys.Suite)
}

func (c *client) seal(suite byte, n, ts uint64, ping bool, body []byte) []byte {
	f := wire.RequestFields{Kind: wire.KindRequest, Suite: suite, Eph: c.ephPub, Counter: n, Timestamp: ts,
		Epoch: c.epochElem, WantEpoch: c.want}
	if ping {
		f.Kind = wire.KindPing
	}
	if c.push {
		f.Kind = wire.KindPush
	}
	if c.id != nil {
		f.Kind++
	}
	return wire.AppendRequest(nil, &f, c.keys, c.id, body)
}

// open opens an answer as SPEC.md §7 says and names the outcome.
func (c *client) open(h []byte, n uint64, b []byte) (string, []byte) {
	kind, hint, err := wire.Classify(b)
	switch {
	case errors.Is(err, wire.ErrVersion):
		return "error:not-secsock", nil
	case errors.Is(err, wire.ErrKind) && wire.IsReflectedRequest(b):
		return "error:not-secsock", nil // §7 step 1: the request came back
	case errors.Is(err, wire.ErrKind):
		return "error:unknown-kind", nil
	case err != nil:
		return "error:malformed", nil
	}
	switch kind {
	case wire.KindHint:
		switch hint {
		case wire.HintUnsupportedVersion:
			return "error:unsupported-version", nil
		case wire.HintBusy:
			return "error:busy", nil
		}
		return "error:server-key-mismatch", nil
	case wire.KindRefusal:
		r, err := wire.CheckRefusal(&c.prk0, h, b)
		if err != nil {
			return openError(err), nil
		}
		if name, ok := refusalNames[r]; ok {
			return "error:" + name, nil
		}
		return "error:refused", nil
	}
	if kind == wire.KindReplyExt {
		_, body, err := wire.OpenReplyExt(nil, c.keys, n, b)
		if err != nil {
			return openError(err), nil
		}
		return "ok", body
	}
	body, err := wire.OpenReply(nil, c.keys, n, b)
	if err != nil {
		return openError(err), nil
	}
	return "ok", body
}

func openError(err error) string {
	if errors.Is(err, wire.ErrMalformed) {
		return "error:malformed"
	}
	return "error:auth-failed"
}

var refusalNames = map[byte]string{
	wire.RefuseNotAuthorized: "not-authorized", wire.RefuseStale: "stale",
	wire.RefuseReplayed: "replayed", wire.RefuseUnsupportedFeature: "unsupported-feature",
	wire.RefuseInDoubt: "in-doubt", wire.RefuseUnknownEpoch: "unknown-epoch",
	wire.RefuseStoreUnavailable: "store-unavailable", wire.RefuseTooLarge: "too-large",
}

var reasonNames = map[Reason]string{
	ReasonMalformed: "malformed", ReasonUnknownVersion: "unknown-version", ReasonNotSecsock: "not-secsock", ReasonOversize: "oversize", ReasonUnknownKind: "unknown-kind",
	ReasonUnsupported: "unsupported-feature", ReasonWeakKey: "weak-key", ReasonForged: "forged",
	ReasonBadVouch: "bad-vouch", ReasonNotAuthorized: "not-authorized", ReasonStale: "stale",
	ReasonReplayed: "replayed", ReasonRetry: "retry", ReasonBusy: "busy", ReasonInDoubt: "in-doubt",
	ReasonUnknownEpoch: "unknown-epoch", ReasonStoreUnavailable: "store-unavailable",
}

// outcome names a server decision as expect_server does.
func outcome(d Decision) string {
	switch {
	case d.Deliver:
		return "deliver"
	case d.Respond == nil:
		return "drop:" + reasonNames[d.Reason]
	case d.Reason == ReasonRetry:
		return "resend"
	case d.Respond[1] == wire.KindHint:
		return map[byte]string{wire.HintCannotOpen: "hint:cannot-open", wire.HintUnsupportedVersion: "hint:unsupported-version", wire.HintBusy: "hint:busy"}[d.Respond[2]]
	case d.Respond[1] == wire.KindRefusal:
		return "refuse:" + reasonNames[d.Reason]
	}
	return "reply"
}

// seqReader returns bytes from a fixed slice: deterministic randomness.
type seqReader struct{ b []byte }

func (r *seqReader) Read(p []byte) (int, error) {
	if len(r.b) < len(p) {
		return 0, errors.New("test randomness exhausted")
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

// world is the server side of one vector file.
type world struct {
	srv    *Server
	pol    *Policy
	window uint64
	chain  *epochChain
}

func newWorld(servers []string, policy bool, authorized []string, allowAnon bool, lim Limits) *world {
	w := &world{srv: New(lim), window: 120000}
	w.pol = &Policy{AllowAnonymous: allowAnon, Window: 120000, Skew: 10000}
	for _, l := range servers {
		w.pol.Keys = append(w.pol.Keys, KeyPair{Secret: secret(l), Public: public(l)})
	}
	if policy {
		w.pol.Authorized = map[[32]byte]struct{}{}
		for _, l := range authorized {
			w.pol.Authorized[public(l)] = struct{}{}
		}
	}
	return w
}

func vectorLimits(peers, slots int) Limits {
	l := DefaultLimits()
	l.Budget = 0
	if peers > 0 {
		l.Peers = peers
	}
	if slots > 0 {
		l.ReplySlots = slots
	}
	return l
}

func generate(v vecFile) string {
	if len(v.servers) == 0 {
		v.servers = []string{"server"}
	}
	var w vectorWriter
	w.comment(v.comment)
	w.field("name", v.name)
	if v.pipeline {
		w.field("pattern", "pipeline")
	}
	for _, l := range v.servers {
		s := secret(l)
		w.field("server_secret", s[:])
	}
	if v.client != "" {
		s := secret(v.client)
		w.field("client_secret", s[:])
	}
	w.field("seal_to", v.sealTo)
	if v.sealToOther != "" {
		p := public(v.sealToOther)
		w.field("client_server_key", p[:])
	}
	w.field("freshness", 120000)
	w.field("max_skew", 10000)
	for _, l := range v.authorized {
		p := public(l)
		w.field("authorized", p[:])
	}
	if v.policy && len(v.authorized) == 0 {
		w.field("policy", "on")
	}
	w.field("allow_anonymous", v.allowAnon)
	lim := vectorLimits(v.peerCache, v.replySlots)
	lim.Budget = v.budget
	lim.OneWay = v.pipeline
	w.field("peer_cache", lim.Peers)
	w.field("reply_slots", lim.ReplySlots)
	w.field("max_resends", lim.MaxResends)
	w.field("budget", lim.Budget)
	var chain *epochChain
	if v.epochSeed != "" {
		chain = newEpochChain(secret(v.epochSeed), v.epochIndex, vectorTime-60000, v.epochLength)
		w.field("epoch_seed", chain.seed[:])
		w.field("epoch_index", chain.index)
		w.field("epoch_origin", chain.origin)
		w.field("epoch_length", chain.length)
	}
	wd := newWorld(v.servers, v.policy, v.authorized, v.allowAnon, lim)
	wd.chain = chain
	var last []byte
	var prev vecStep
	for i, st := range v.steps {
		if st.again {
			// The same request as before: its fields, this step's expectations.
			st.eph, st.suite, st.counter, st.dt, st.nowOffset, st.ping, st.body, st.expiry =
				prev.eph, prev.suite, prev.counter, prev.dt, prev.nowOffset, prev.ping, prev.body, prev.expiry
		} else {
			prev = st
		}
		last = generateStep(&w, wd, v, i+1, st, last)
	}
	return w.b.String()
}

func generateStep(w *vectorWriter, wd *world, v vecFile, n int, st vecStep, last []byte) []byte {
	if st.eph == "" {
		st.eph = "eph " + v.name
	}
	if st.suite == 0 {
		st.suite = wire.SuiteBox
	}
	if st.counter == 0 {
		st.counter = 1
	}
	ts := uint64(vectorTime + st.dt)
	now := uint64(int64(ts) + st.nowOffset)
	expiry := uint64(vectorTime + 3600000 + st.expiry)
	to := public(v.servers[v.sealTo])
	if v.sealToOther != "" {
		to = public(v.sealToOther)
	}
	push := (v.pipeline && st.sealAs != "request") || st.sealAs == "push"
	c := newPatternClient(push, st.eph, v.client, to, st.suite, expiry, st.identity)
	c.want = st.want
	if push {
		c.pushing()
	}
	if st.anonymous {
		c.id = nil
	}
	var epochPub []byte
	if st.sealEpoch {
		label := v.epochSeed
		if label == "" {
			label = "a chain the server does not have"
		}
		k := newEpochChain(secret(label), 0, 0, 1).key(st.epochKey)
		id := k.ID
		if st.epochID != nil {
			copy(id[:], st.epochID)
		}
		c.useEpoch(k.Public, id)
		epochPub = k.Public[:]
	}
	req := c.seal(st.suite, st.counter, ts, st.ping, st.body)
	// A ping with a body is not something a client sends (SPEC.md §5.1).
	mutated := st.identity != nil || st.clientSent != nil || (st.ping && len(st.body) > 0) || st.sealAs != "" || st.anonymous ||
		(v.pipeline && st.want) // a pusher never asks for epoch keys (SPEC.md §15)
	if st.clientSent != nil {
		req = st.clientSent(req)
	}
	sent := req // what the client sent
	if st.again {
		req, sent, mutated = last, last, true
	}
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
	if epochPub != nil {
		w.field("epoch_key", epochPub)
		if st.epochID != nil {
			w.field("epoch_id", st.epochID)
		}
	}
	if st.want {
		w.field("want_epoch", true)
	}
	w.field("request_body", st.body)
	w.field("request", req)
	w.field("mutated", mutated)
	if !bytes.Equal(sent, req) {
		w.field("client_request", sent)
	}
	rh := sha256.Sum256([]byte("reply random " + v.name + " " + strconv.Itoa(n)))
	rnd := rh[:wire.ReplyRandSize]
	pol := *wd.pol
	pol.Epochs = wd.chain.at(now, pol.Skew)
	d := wd.srv.Open(nil, req, now, &pol, &seqReader{b: rnd})
	if got := outcome(d); got != st.expectServer {
		panic(fmt.Sprintf("vector %s step %d: server outcome %s, case expects %s", v.name, n, got, st.expectServer))
	}
	w.field("expect_server", st.expectServer)
	answer := d.Respond
	if d.Deliver && v.pipeline {
		if answer != nil {
			panic(fmt.Sprintf("vector %s step %d: a PULL server answered", v.name, n))
		}
		return sent // one-way: nothing to open
	}
	if d.Deliver {
		w.field("reply_random", rnd)
		w.field("reply_body", st.reply)
		var err error
		if answer, err = wd.srv.SealReply(nil, d.Ticket, st.reply, &seqReader{b: rnd}); err != nil {
			panic(err)
		}
	} else if outcome(d) == "reply" {
		w.field("reply_random", rnd)
	}
	if st.answer != nil {
		answer = st.answer(c, headerOf(sent))
	}
	if answer == nil {
		return sent
	}
	if st.mutateReply != nil {
		answer = st.mutateReply(answer)
	}
	w.field("reply", answer)
	w.field("reply_mutated", st.mutateReply != nil || st.answer != nil)
	cn := st.counter
	if st.clientCounter != 0 {
		cn = st.clientCounter
		w.field("client_counter", cn)
	}
	if got, _ := c.open(headerOf(sent), cn, answer); got != st.expectClient {
		panic(fmt.Sprintf("vector %s step %d: client outcome %s, case expects %s", v.name, n, got, st.expectClient))
	}
	w.field("expect_client", st.expectClient)
	return sent
}

func TestVectors(t *testing.T) {
	if *updateVectors {
		old, _ := filepath.Glob(filepath.Join(vectorDir, "*.vec"))
		for _, f := range old {
			os.Remove(f)
		}
		for _, v := range vectorFiles() {
			if err := os.WriteFile(filepath.Join(vectorDir, v.name+".vec"), []byte(generate(v)), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	files, _ := filepath.Glob(filepath.Join(vectorDir, "*.vec"))
	if n := len(vectorFiles()); len(files) != n {
		t.Fatalf("found %d vector files, want %d (run go test ./internal/server -run TestVectors -update)", len(files), n)
	}
	sort.Strings(files)
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".vec"), func(t *testing.T) { replayFile(t, f) })
	}
}

// replayFile runs one vector file as an independent implementation would,
// from its fields alone.
func replayFile(t *testing.T, path string) {
	head, steps := readVectorFile(t, path)
	if len(steps) == 0 {
		t.Fatal("no steps")
	}
	lim := vectorLimits(int(head.Uint(t, "peer_cache", 4096)), int(head.Uint(t, "reply_slots", 1024)))
	lim.MaxResends = int(head.Uint(t, "max_resends", 4))
	lim.Budget = int(head.Uint(t, "budget", 0))
	lim.OneWay = head.Str("pattern") == "pipeline"
	pol := &Policy{AllowAnonymous: head.Str("allow_anonymous") == "true",
		Window: head.Uint(t, "freshness", 0), Skew: head.Uint(t, "max_skew", 0)}
	for _, h := range head["server_secret"] {
		var s [32]byte
		b, _ := hex.DecodeString(h)
		copy(s[:], b)
		p, err := wire.Public(&s)
		if err != nil {
			t.Fatal(err)
		}
		pol.Keys = append(pol.Keys, KeyPair{Secret: s, Public: p})
	}
	if head.Has("authorized") || head.Str("policy") == "on" {
		pol.Authorized = map[[32]byte]struct{}{}
		for _, h := range head["authorized"] {
			var k [32]byte
			b, _ := hex.DecodeString(h)
			copy(k[:], b)
			pol.Authorized[k] = struct{}{}
		}
	}
	srv := New(lim)
	var chain *epochChain
	if head.Has("epoch_seed") {
		var seed [32]byte
		copy(seed[:], head.Hex(t, "epoch_seed"))
		chain = &epochChain{seed: seed, index: uint32(head.Uint(t, "epoch_index", 0)),
			origin: head.Uint(t, "epoch_origin", 0), length: head.Uint(t, "epoch_length", 0)}
	}
	sealTo := pol.Keys[head.Uint(t, "seal_to", 0)].Public
	if head.Has("client_server_key") {
		copy(sealTo[:], head.Hex(t, "client_server_key"))
	}
	for _, st := range steps {
		t.Run("step"+st.Str("step"), func(t *testing.T) {
			p := *pol
			p.Epochs = chain.at(st.Uint(t, "now", 0), p.Skew)
			replayStep(t, head, st, srv, &p, sealTo)
		})
	}
}

func replayStep(t *testing.T, head, st fields, srv *Server, pol *Policy, sealTo [32]byte) {
	var eph, cs [32]byte
	copy(eph[:], st.Hex(t, "eph_secret"))
	c := &client{eph: eph}
	c.ephPub, _ = wire.Public(&eph)
	dh, err := wire.X25519(&eph, &sealTo)
	if err != nil {
		t.Fatal(err)
	}
	suite := byte(st.Uint(t, "suite", 1))
	c.prk0 = wire.RequestSecret(&dh, &c.ephPub, &sealTo)
	c.keys = wire.SessionKeys(&c.prk0, suite)
	if head.Str("pattern") == "pipeline" {
		c.pushing()
	}
	if head.Has("client_secret") {
		copy(cs[:], head.Hex(t, "client_secret"))
		cp, _ := wire.Public(&cs)
		dh2, _ := wire.X25519(&cs, &sealTo)
		v := wire.VouchSecret(&dh2, &cp, &sealTo)
		e := st.Uint(t, "vouch_expiry", 0)
		vouch := wire.Vouch
		if c.push {
			vouch = wire.PushVouch // a pusher's vouch (SPEC.md §15.1)
		}
		c.id = &wire.Identity{Client: cp, Vouch: vouch(&v, &c.ephPub, &cp, &sealTo, e), Expiry: e}
	}
	if st.Has("epoch_key") {
		var pub [32]byte
		copy(pub[:], st.Hex(t, "epoch_key"))
		id := wire.EpochID(&pub)
		if st.Has("epoch_id") {
			copy(id[:], st.Hex(t, "epoch_id"))
		}
		c.useEpoch(pub, id)
	}
	c.want = st.Str("want_epoch") == "true"
	n, ts := st.Uint(t, "counter", 0), st.Uint(t, "timestamp", 0)
	req, body := st.Hex(t, "request"), st.Hex(t, "request_body")
	if st.Str("mutated") == "false" {
		if got := c.seal(suite, n, ts, st.Str("ping") == "true", body); !bytes.Equal(got, req) {
			t.Fatalf("sealing request_body does not reproduce request:\n got %x\nwant %x", got, req)
		}
	}
	d := srv.Open(nil, req, st.Uint(t, "now", 0), pol, &seqReader{b: st.Hex(t, "reply_random")})
	if got, want := outcome(d), st.Str("expect_server"); got != want {
		t.Fatalf("server: got %s, want %s", got, want)
	}
	if d.Deliver && !bytes.Equal(d.Body, body) {
		t.Fatalf("server delivered %x, want %x", d.Body, body)
	}
	answer := d.Respond
	if d.Deliver && !srv.lim.OneWay {
		if answer, err = srv.SealReply(nil, d.Ticket, st.Hex(t, "reply_body"), &seqReader{b: st.Hex(t, "reply_random")}); err != nil {
			t.Fatal(err)
		}
	}
	wireAnswer := st.Hex(t, "reply")
	if wireAnswer == nil {
		if answer != nil || st.Has("expect_client") {
			t.Fatalf("server answered %x; the vector has no reply", answer)
		}
		return
	}
	if st.Str("reply_mutated") == "false" && !bytes.Equal(answer, wireAnswer) {
		t.Fatalf("server answer does not reproduce reply:\n got %x\nwant %x", answer, wireAnswer)
	}
	sent := req
	if st.Has("client_request") {
		sent = st.Hex(t, "client_request")
	}
	got, opened := c.open(headerOf(sent), st.Uint(t, "client_counter", n), wireAnswer)
	if want := st.Str("expect_client"); got != want {
		t.Fatalf("client: got %s, want %s", got, want)
	}
	if got == "ok" && d.Deliver && !bytes.Equal(opened, st.Hex(t, "reply_body")) {
		t.Fatalf("client opened %x, want %x", opened, st.Hex(t, "reply_body"))
	}
}

// vectorFiles are the cases written to testdata/vectors.
func vectorFiles() []vecFile {
	return append(append(append(singleVectors(), multiVectors()...), epochVectors()...), pushVectors()...)
}
