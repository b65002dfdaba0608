package server

// FuzzServerOpen runs random and mutated requests through the whole check
// sequence of SPEC.md §6 (Server.Open) under one fixed policy, after a
// warm-up of genuine requests chosen by the fuzzer, and checks what must
// hold for every input: only what a genuine client sealed is delivered,
// each (C', N) at most once per instance; every answer is a well-formed
// hint, a refusal bound to the exact header received, or a reply that
// opens for the genuine client; the state stays within its limits.
//
// The seeds are in fuzzSeeds, added with f.Add and committed under
// testdata/fuzz/<Target>/seed-<name> (TestFuzzCorpora checks;
// `go test -run TestFuzzCorpora -update-fuzz` rewrites them). A finding
// that shows a bug is committed as testdata/fuzz/<Target>/bug-<name>.

import (
	"bytes"
	"flag"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/secsock/secsock/internal/equivalent"
	"github.com/secsock/secsock/internal/fuzzcorpus"

	"github.com/secsock/secsock/internal/wire"
)

var updateFuzz = flag.Bool("update-fuzz", false, "rewrite testdata/fuzz seed files from fuzzSeeds")

// fzPolicy is the one policy of FuzzServerOpen: a current and a previous
// server key, one authorized client, anonymous clients allowed, the
// default window and skew.
var fzPolicy = sync.OnceValue(func() *Policy {
	pol := &Policy{
		Keys:           []KeyPair{{Secret: secret("server"), Public: public("server")}, {Secret: secret("server-previous"), Public: public("server-previous")}},
		Authorized:     map[[32]byte]struct{}{public("client"): {}},
		AllowAnonymous: true,
		Window:         120000,
		Skew:           10000,
	}
	return pol
})

// fzCase is one request a genuine client sealed, and the outcome it has at
// a fresh server in the default mode.
type fzCase struct {
	name    string
	c       *client
	kind    byte
	suite   byte
	n, ts   uint64
	body    []byte
	vouched bool
	key     int // index in fzPolicy().Keys of the key it is sealed to
	expect  string
	sealed  []byte
}

func (g *fzCase) id() ID { return ID{eph: g.c.ephPub, counter: g.n} }

// fzEquivalentKeys are the canonical public keys of
// ../../testdata/x25519-equivalent with their 15 other encodings.
var fzEquivalentKeys = sync.OnceValue(func() (out [][][32]byte) {
	entries, err := equivalent.Load("../../testdata/x25519-equivalent/equivalent.json")
	if err != nil {
		panic(err)
	}
	for _, e := range entries {
		out = append(out, e.All)
	}
	return out
})

// fzClientOf is a client whose C' is eph, a public key whose secret the
// test does not know: its keys come from the server's side of dh1.
func fzClientOf(eph [32]byte, suite byte) *client {
	s, pub := secret("server"), public("server")
	dh, err := wire.X25519(&s, &eph)
	if err != nil {
		panic(err)
	}
	c := &client{ephPub: eph, prk0: wire.RequestSecret(&dh, &eph, &pub)}
	c.keys = wire.SessionKeys(&c.prk0, suite)
	return c
}

// fzCases are the genuine requests. The first seven all succeed at a
// fresh server: they are the warm-up (see FuzzServerOpen).
var fzCases = sync.OnceValue(func() []*fzCase {
	const hour = 3600000
	type spec struct {
		name, client, to string
		suite            byte
		n                uint64
		dt, expiry       int64 // T - now, E - (T + 1 hour)
		ping             bool
		forge            func(*wire.Identity)
		expect           string
	}
	specs := []spec{
		{name: "anon-box", expect: "deliver"},
		{name: "vouched-box", client: "client", expect: "deliver"},
		{name: "ping-anon", ping: true, expect: "reply"},
		{name: "anon-gcm", suite: wire.SuiteAESGCM, expect: "deliver"},
		{name: "vouched-gcm", client: "client", suite: wire.SuiteAESGCM, expect: "deliver"},
		{name: "ping-vouched-gcm", client: "client", suite: wire.SuiteAESGCM, ping: true, expect: "reply"},
		{name: "previous-key", client: "client", to: "server-previous", expect: "deliver"},
		{name: "not-authorized", client: "stranger", expect: "refuse:not-authorized"},
		{name: "stale", dt: -120001, expect: "refuse:stale"},
		{name: "future", dt: 10001, suite: wire.SuiteAESGCM, expect: "refuse:stale"},
		{name: "fresh-edge", dt: -120000, expect: "deliver"},
		{name: "vouch-expired", client: "client", expiry: -hour - 1, expect: "refuse:stale"},
		{name: "vouch-too-long", client: "client", expiry: 24*hour - hour + 1, expect: "refuse:stale"},
		{name: "bad-vouch", client: "client", forge: func(id *wire.Identity) { id.Vouch[0] ^= 1 }, expect: "drop:bad-vouch"},
		{name: "weak-client-key", client: "client", forge: func(id *wire.Identity) { id.Client = [32]byte{} }, expect: "drop:weak-key"},
		{name: "counter-max", n: wire.MaxCounter, expect: "deliver"},
		{name: "other-server", to: "other", expect: "hint:cannot-open"},
	}
	var out []*fzCase
	for _, sp := range specs {
		if sp.suite == 0 {
			sp.suite = wire.SuiteBox
		}
		if sp.n == 0 {
			sp.n = 1
		}
		if sp.to == "" {
			sp.to = "server"
		}
		ts := uint64(vectorTime + sp.dt)
		c := newClient("fuzz eph "+sp.name, sp.client, public(sp.to), sp.suite, uint64(int64(ts)+hour+sp.expiry), sp.forge)
		g := &fzCase{name: sp.name, c: c, suite: sp.suite, n: sp.n, ts: ts, vouched: sp.client != "", expect: sp.expect}
		if sp.to == "server-previous" {
			g.key = 1
		}
		if !sp.ping {
			g.body = []byte("hello " + sp.name)
		}
		g.sealed = c.seal(sp.suite, sp.n, ts, sp.ping, g.body)
		g.kind = g.sealed[1]
		out = append(out, g)
	}
	// A second request on the first case's C'.
	first := out[0]
	second := &fzCase{name: "anon-box-second", c: first.c, kind: wire.KindRequest, suite: wire.SuiteBox, n: 2, ts: vectorTime,
		body: []byte("hello again"), expect: "deliver"}
	second.sealed = first.c.seal(second.suite, second.n, second.ts, false, second.body)
	out = append(out, second)
	// Clients whose C' are the shared equivalent keys (the seeds try the
	// other encodings).
	for i, keys := range fzEquivalentKeys() {
		g := &fzCase{name: fmt.Sprintf("equivalent-%d", i), c: fzClientOf(keys[0], wire.SuiteBox), kind: wire.KindRequest,
			suite: wire.SuiteBox, n: 1, ts: vectorTime, body: []byte("hello equivalent"), expect: "deliver"}
		g.sealed = g.c.seal(g.suite, g.n, g.ts, false, g.body)
		out = append(out, g)
	}
	return out
})

func fzCaseNamed(name string) *fzCase {
	for _, g := range fzCases() {
		if g.name == name {
			return g
		}
	}
	panic("no case " + name)
}

// fzReqMutations are the failure classes of a request, as seeds.
func fzReqMutations(b []byte) map[string][]byte {
	set := func(i int, v byte) []byte { c := bytes.Clone(b); c[i] = v; return c }
	fl := func(i int) []byte { c := bytes.Clone(b); c[i] ^= 0x01; return c }
	m := map[string][]byte{
		"empty": {}, "one-byte": b[:1], "header-only": b[:54], "truncated": b[:len(b)-1],
		"extended": append(bytes.Clone(b), 0), "version-1": set(0, 0x01), "kind-reply": set(1, wire.KindReply),
		"kind-five": set(1, 0x05), "suite-unknown": set(2, 0x7f), "suite-zero": set(2, 0x00),
		"flags-one": set(3, 0x01), "ext-len-one": set(53, 0x01), "eph-flip": fl(10), "eph-bit255": set(35, b[35]|0x80),
		"eph-zero":     func() []byte { c := bytes.Clone(b); clear(c[4:36]); return c }(),
		"counter-flip": fl(43), "counter-zero": func() []byte { c := bytes.Clone(b); clear(c[36:44]); return c }(),
		"time-flip": fl(51), "time-high-flip": fl(44), "body-flip": fl(len(b) - 1), "tag-flip": fl(len(b) - 16),
		"flags-with-ext": withExtension(b),
	}
	if b[2] == wire.SuiteBox {
		m["suite-swap"] = set(2, wire.SuiteAESGCM)
	} else {
		m["suite-swap"] = set(2, wire.SuiteBox)
	}
	switch b[1] {
	case wire.KindRequest:
		m["kind-vouched"] = set(1, wire.KindRequestVouched)
	case wire.KindRequestVouched:
		m["kind-anon"] = set(1, wire.KindRequest)
		m["identity-flip"] = fl(54 + 40)
		m["identity-client-flip"] = fl(54 + 16 + 5)
	case wire.KindPingVouched:
		m["kind-ping"] = set(1, wire.KindPing)
		m["ping-with-body"] = append(bytes.Clone(b), 1)
	}
	return m
}

// Modes of FuzzServerOpen, from its first argument: the low three bits
// are the number of warm-up requests (the first cases of fzCases, opened
// and answered before the fuzzed message).
const (
	fzWarmMask = 0x07
	fzBusy     = 0x08 // a budget of 3 scalar multiplications: most new sessions get BUSY
	fzSmall    = 0x10 // 2 peers, 2 kept replies, 4 tombstones: eviction, spills, IN_DOUBT
)

// fuzzSeeds returns the seed inputs of each target, by target and seed
// name. f.Add and the committed files both come from here.
func fuzzSeeds() fuzzcorpus.Seeds {
	out := map[string]map[string][]any{"FuzzServerOpen": {}}
	so := out["FuzzServerOpen"]
	cases := fzCases()
	for _, g := range cases {
		so["valid-"+g.name] = []any{uint8(0), bytes.Clone(g.sealed)}
	}
	for _, g := range cases[:fzWarmMask] {
		so["retry-"+g.name] = []any{uint8(fzWarmMask), bytes.Clone(g.sealed)}
	}
	for _, name := range []string{"anon-box", "vouched-box", "ping-vouched-gcm", "previous-key"} {
		for mn, mb := range fzReqMutations(fzCaseNamed(name).sealed) {
			so[name+"-"+mn] = []any{uint8(0), mb}
		}
	}
	// Mutations of a cached peer's request take the cached-peer paths.
	for mn, mb := range fzReqMutations(cases[0].sealed) {
		switch mn {
		case "suite-unknown", "suite-swap", "flags-one", "counter-flip", "body-flip", "kind-vouched":
			so["cached-anon-box-"+mn] = []any{uint8(1), mb}
		}
	}
	so["cached-vouched-box-kind-anon"] = []any{uint8(2), fzReqMutations(cases[1].sealed)["kind-anon"]}
	so["cached-vouched-box-identity-flip"] = []any{uint8(2), fzReqMutations(cases[1].sealed)["identity-flip"]}
	so["busy-anon-box"] = []any{uint8(fzBusy), bytes.Clone(cases[0].sealed)}
	so["busy-warm-vouched-gcm"] = []any{uint8(fzBusy | 4), bytes.Clone(cases[4].sealed)}
	so["small-retry-anon-box"] = []any{uint8(fzSmall | fzWarmMask), bytes.Clone(cases[0].sealed)}
	so["small-second-request"] = []any{uint8(fzSmall | fzWarmMask), bytes.Clone(fzCaseNamed("anon-box-second").sealed)}
	// Every other encoding of a genuine C': nothing opens.
	for _, g := range cases {
		if !strings.HasPrefix(g.name, "equivalent-") {
			continue
		}
		for j, k := range fzEquivalentKeys()[g.name[len(g.name)-1]-'0'][1:] {
			b := bytes.Clone(g.sealed)
			copy(b[4:36], k[:])
			so[fmt.Sprintf("%s-other-%02d", g.name, j)] = []any{uint8(0), b}
		}
	}
	// Answers reflected back to the server, and other versions.
	reply := wire.AppendReply(nil, cases[0].c.keys, 1, &[16]byte{}, []byte("world"))
	so["reflected-reply"] = []any{uint8(1), reply}
	so["reflected-refusal"] = []any{uint8(0), wire.AppendRefusal(nil, &cases[0].c.prk0, cases[0].sealed[:54], wire.RefuseStale)}
	so["reflected-hint"] = []any{uint8(0), wire.AppendHint(nil, wire.HintCannotOpen)}
	so["version-1-request"] = []any{uint8(0), append([]byte{0x01, 0x01, 0x01}, make([]byte, 64)...)}
	out["FuzzPullOpen"] = pullSeeds()
	out["FuzzHybridOpen"] = hybridFuzzSeeds()
	return out
}

func addSeeds(f *testing.F) {
	for _, args := range fuzzSeeds()[f.Name()] {
		f.Add(args...)
	}
}

// preAuth are the reasons a message may have without any box of it
// opening: everything else needs the genuine client's keys.
var preAuth = map[Reason]bool{
	ReasonMalformed: true, ReasonUnknownVersion: true, ReasonNotSecsock: true, ReasonUnknownKind: true, ReasonUnsupported: true,
	ReasonWeakKey: true, ReasonForged: true, ReasonBusy: true,
}

// fzRun is one server instance of FuzzServerOpen and what the test knows
// about what it did.
type fzRun struct {
	t         *testing.T
	srv       *Server
	lim       Limits
	pol       *Policy
	exact     bool // default mode: genuine requests have their expected outcome
	rnd       *rand.ChaCha8
	delivered map[ID]bool   // delivered or answered as a ping
	replies   map[ID][]byte // the body of the reply kept for each delivered request
	accepted  map[[32]byte]bool
	byBytes   map[string]*fzCase
	cases     []*fzCase
}

// open runs one message through the server and checks the decision.
// fresh says the message's (C', N) was not sent before, for the exact
// expectation.
func (r *fzRun) open(b []byte, fresh bool) Decision {
	t := r.t
	g := r.byBytes[string(b)]
	d := r.srv.Open(nil, b, vectorTime, r.pol, r.rnd)
	got := outcome(d)
	if g != nil && r.exact {
		want := g.expect
		if !fresh && (want == "deliver" || want == "reply") {
			want = "resend"
		}
		if got != want {
			t.Fatalf("genuine %s: %s, want %s", g.name, got, want)
		}
	}
	if g == nil && !preAuth[d.Reason] {
		t.Fatalf("%x: not sealed by any genuine client, yet %s (reason %d): a box opened", b, got, d.Reason)
	}
	if d.Deliver {
		switch id := g.id(); {
		case d.Respond != nil:
			t.Fatalf("%s: delivered and answered at once", g.name)
		case !bytes.Equal(d.Body, g.body):
			t.Fatalf("%s: delivered %x, sealed %x", g.name, d.Body, g.body)
		case d.Vouched != g.vouched || g.vouched && d.Client != g.c.id.Client:
			t.Fatalf("%s: delivered as client %x (vouched %v)", g.name, d.Client, d.Vouched)
		case d.ServerKey != g.key:
			t.Fatalf("%s: opened with server key %d, sealed to key %d", g.name, d.ServerKey, g.key)
		case r.delivered[id]:
			t.Fatalf("%s: delivered twice by one instance", g.name)
		default:
			r.delivered[id] = true
			body := []byte("reply to " + g.name)
			if _, err := r.srv.SealReply(nil, d.Ticket, body, r.rnd); err != nil {
				t.Fatal(err)
			}
			r.replies[id] = body
		}
	}
	if d.Deliver || got == "reply" || got == "resend" {
		r.accepted[g.c.ephPub] = true
	}
	r.checkRespond(b, g, d)
	r.checkSize()
	if r.srv.Established(b) && (len(b) < 36 || !r.accepted[[32]byte(b[4:36])]) {
		t.Fatalf("%x: Established, but no genuine request of its C' was accepted", b)
	}
	return d
}

// checkRespond checks that d.Respond is a hint, a refusal made for b's
// own header, or a reply that opens for the genuine client.
func (r *fzRun) checkRespond(b []byte, g *fzCase, d Decision) {
	t, resp := r.t, d.Respond
	if resp == nil {
		return
	}
	if len(resp) < 3 || resp[0] != wire.Version {
		t.Fatalf("answer %x is no version 2 message", resp)
	}
	switch resp[1] {
	case wire.KindHint:
		want := map[Reason]byte{ReasonForged: wire.HintCannotOpen, ReasonUnknownVersion: wire.HintUnsupportedVersion, ReasonBusy: wire.HintBusy}[d.Reason]
		if len(resp) != wire.HintSize || want == 0 || resp[2] != want {
			t.Fatalf("hint %x for reason %d", resp, d.Reason)
		}
	case wire.KindRefusal:
		if len(resp) != wire.RefusalSize || resp[2] < wire.RefuseNotAuthorized || resp[2] > wire.RefuseInDoubt {
			t.Fatalf("refusal %x", resp)
		}
		h := headerOf(b)
		// A refusal is made with prk0 of b's C' and one of the server keys,
		// over the exact header received (§5.3).
		var eph [32]byte
		copy(eph[:], b[4:36])
		made := false
		for _, k := range r.pol.Keys {
			dh, err := wire.X25519(&k.Secret, &eph)
			if err != nil {
				continue
			}
			prk0 := wire.RequestSecret(&dh, &eph, &k.Public)
			if _, err := wire.CheckRefusal(&prk0, h, resp); err == nil {
				made = true
			}
		}
		if !made {
			t.Fatalf("refusal %x is not bound to the header %x", resp, h)
		}
		// A genuine client accepts it only for the header it sent.
		for _, c := range r.cases {
			if _, err := wire.CheckRefusal(&c.c.prk0, headerOf(c.sealed), resp); err == nil && !bytes.Equal(headerOf(c.sealed), h) {
				t.Fatalf("refusal of %x verifies for %s, which sent header %x", h, c.name, headerOf(c.sealed))
			}
		}
	case wire.KindReply:
		if g == nil {
			t.Fatalf("reply %x to a message no genuine client sealed", resp)
		}
		body, err := wire.OpenReply(nil, g.c.keys, g.n, resp)
		want := r.replies[g.id()]
		if wire.IsPing(g.kind) {
			want = []byte{}
		}
		if err != nil || want == nil || !bytes.Equal(body, want) {
			t.Fatalf("%s: reply opens to %x (%v), want %x", g.name, body, err, want)
		}
	default:
		t.Fatalf("answer of kind %x", resp[1])
	}
}

// checkSize checks that the state stays within its limits and that only
// genuine C' are cached.
func (r *fzRun) checkSize() {
	peers, tombs, replyBytes := r.srv.Size()
	capTombs := r.lim.Tombstones
	if b := r.lim.Budget; b > 0 {
		capTombs = int(uint64(b)*(r.pol.Window+r.pol.Skew)/1000) + b
	}
	if peers > r.lim.Peers || peers > len(r.accepted) || tombs > capTombs || replyBytes > r.lim.ReplyBytes {
		r.t.Fatalf("state: %d peers (limit %d, %d genuine C' accepted), %d tombstones (limit %d), %d reply bytes (limit %d)",
			peers, r.lim.Peers, len(r.accepted), tombs, capTombs, replyBytes, r.lim.ReplyBytes)
	}
}

// FuzzServerOpen: mode (warm-up count, budget, small caches, see fzBusy)
// and one message b, opened twice by one instance after the warm-up.
func FuzzServerOpen(f *testing.F) {
	addSeeds(f)
	cases := fzCases()
	byBytes := map[string]*fzCase{}
	for _, g := range cases {
		byBytes[string(g.sealed)] = g
	}
	f.Fuzz(func(t *testing.T, mode uint8, b []byte) {
		lim := DefaultLimits()
		lim.Budget = 0
		if mode&fzBusy != 0 {
			lim.Budget = 3
		}
		if mode&fzSmall != 0 {
			lim.Peers, lim.ReplySlots, lim.Tombstones = 2, 2, 4
		}
		var seed [32]byte
		seed[0] = mode
		r := &fzRun{t: t, srv: New(lim), lim: lim, pol: fzPolicy(), exact: mode&(fzBusy|fzSmall) == 0,
			rnd: rand.NewChaCha8(seed), delivered: map[ID]bool{}, replies: map[ID][]byte{},
			accepted: map[[32]byte]bool{}, byBytes: byBytes, cases: cases}
		warm := int(mode & fzWarmMask)
		for _, g := range cases[:warm] {
			r.open(g.sealed, true)
		}
		g := byBytes[string(b)]
		fresh := true
		for _, w := range cases[:warm] {
			fresh = fresh && (g == nil || w.id() != g.id())
		}
		first := r.open(b, fresh)
		second := r.open(b, false)
		// Without a budget, a message that was not accepted changed
		// nothing, so it gets the same answer again: in particular the
		// same refusal bytes (§5.3: refusals are deterministic).
		accepted := first.Deliver || outcome(first) == "reply" || outcome(first) == "resend" || first.Pending
		if !accepted && lim.Budget == 0 && (outcome(second) != outcome(first) || !bytes.Equal(second.Respond, first.Respond)) {
			t.Fatalf("%x: first %s %x, then %s %x", b, outcome(first), first.Respond, outcome(second), second.Respond)
		}
	})
}

// TestFuzzCorpora fails when a fuzz target of this package has an empty
// or missing corpus directory, or when a seed of fuzzSeeds is not
// committed as it is generated.
func TestFuzzCorpora(t *testing.T) { fuzzcorpus.Check(t, fuzzSeeds(), *updateFuzz) }
