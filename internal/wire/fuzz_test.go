package wire

// Fuzz targets for the crypto core: the request parser (SPEC.md §5.1, §6
// steps 1-2), the client's handling of answers (§7), the valid-key check
// of long-term keys (§4.1) and the vouch (§4.3).
//
// Each target compares the code with an oracle written here from the
// SPEC text alone (byte offsets and constants spelled out, math/big for
// field arithmetic), or with the finite set of messages that a genuine
// party sealed: without the keys nobody, the fuzzer included, can make
// anything else that opens or verifies.
//
// The seeds are in fuzzSeeds, added with f.Add and committed under
// testdata/fuzz/<Target>/seed-<name> (TestFuzzCorpora checks;
// `go test -run TestFuzzCorpora -update-fuzz` rewrites them). A finding
// that shows a bug is committed as testdata/fuzz/<Target>/bug-<name>.

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"

	"github.com/secsock/secsock/internal/equivalent"
	"github.com/secsock/secsock/internal/fuzzcorpus"

	"filippo.io/edwards25519"
)

var updateFuzz = flag.Bool("update-fuzz", false, "rewrite testdata/fuzz seed files from fuzzSeeds")

const fzTime = 1790000000000 // the test vectors' fixed timestamp (ms)

// fzSecret is the test secret key named label (the test vectors'
// derivation, so the keys are the vectors' keys).
func fzSecret(label string) [32]byte {
	return sha256.Sum256([]byte("secsock test vector key " + label))
}

func fzPublic(label string) [32]byte {
	s := fzSecret(label)
	p, err := Public(&s)
	if err != nil {
		panic(err)
	}
	return p
}

// fzEquivalent is one key of ../../testdata/x25519-equivalent: its
// canonical public key and the 15 other byte strings X25519 treats alike.
type fzEquivalent struct {
	public [32]byte
	others [][32]byte
}

var fzEquivalents = sync.OnceValue(func() (out []fzEquivalent) {
	entries, err := equivalent.Load("../../testdata/x25519-equivalent/equivalent.json")
	if err != nil {
		panic(err)
	}
	for _, e := range entries {
		out = append(out, fzEquivalent{public: e.Public, others: e.All[1:]})
	}
	return out
})

// fzSession is one short-term key's session with the server "server",
// computed from the server's side (X25519(s, C') = X25519(c', S)), so a
// C' whose secret is unknown (the shared equivalent keys) works too.
type fzSession struct {
	eph, server [32]byte
	prk0        Secret
	keys        map[byte]*Keys
}

func newFzSession(eph [32]byte) *fzSession {
	s := fzSecret("server")
	z := &fzSession{eph: eph, server: fzPublic("server"), keys: map[byte]*Keys{}}
	dh, err := X25519(&s, &eph)
	if err != nil {
		panic(err)
	}
	z.prk0 = RequestSecret(&dh, &eph, &z.server)
	for _, suite := range []byte{SuiteBox, SuiteAESGCM} {
		z.keys[suite] = SessionKeys(&z.prk0, suite)
	}
	return z
}

// vouch returns the identity of client (a public key) for this session,
// with dh2 from the server's side.
func (z *fzSession) vouch(client [32]byte, expiry uint64) *Identity {
	s := fzSecret("server")
	dh2, err := X25519(&s, &client)
	if err != nil {
		panic(err)
	}
	v := VouchSecret(&dh2, &client, &z.server)
	return &Identity{Client: client, Vouch: Vouch(&v, &z.eph, &client, &z.server, expiry), Expiry: expiry}
}

func (z *fzSession) request(kind, suite byte, n, ts uint64, id *Identity, body []byte) []byte {
	f := RequestFields{Kind: kind, Suite: suite, Eph: z.eph, Counter: n, Timestamp: ts}
	return AppendRequest(nil, &f, z.keys[suite], id, body)
}

// fzRequestMutations are the failure classes of a request, as seeds.
func fzRequestMutations(b []byte) map[string][]byte {
	set := func(i int, v byte) []byte { c := bytes.Clone(b); c[i] = v; return c }
	fl := func(i int) []byte { c := bytes.Clone(b); c[i] ^= 0x01; return c }
	u64 := func(off int, v uint64) []byte { c := bytes.Clone(b); binary.BigEndian.PutUint64(c[off:], v); return c }
	m := map[string][]byte{
		"empty":            {},
		"one-byte":         b[:1],
		"two-bytes":        b[:2],
		"header-only":      b[:54],
		"header-minus-one": b[:53],
		"truncated":        b[:len(b)-1],
		"extended":         append(bytes.Clone(b), 0),
		"version-1":        set(0, 0x01),
		"version-3":        set(0, 0x03),
		"kind-reply":       set(1, KindReply),
		"kind-refusal":     set(1, KindRefusal),
		"kind-hint":        set(1, KindHint),
		"kind-zero":        set(1, 0x00),
		"kind-five":        set(1, 0x05),
		"suite-zero":       set(2, 0x00),
		"suite-unknown":    set(2, 0x7f),
		"flags-one":        set(3, 0x01),
		"flags-high":       set(3, 0x80),
		"ext-len-one":      set(53, 0x01),
		"eph-flip":         fl(10),
		"eph-bit255":       set(35, b[35]|0x80),
		"eph-zero":         func() []byte { c := bytes.Clone(b); clear(c[4:36]); return c }(),
		"counter-flip":     fl(43),
		"counter-zero":     u64(36, 0),
		"counter-2^32":     u64(36, 1<<32),
		"counter-max":      u64(36, 1<<32-1),
		"time-flip":        fl(51),
		"time-high-flip":   fl(44), // outside the 32 bits of T in the GCM nonce: AD catches it
		"body-flip":        fl(len(b) - 1),
		"tag-flip":         fl(len(b) - 16),
		"header-tag-swap":  append(bytes.Clone(b[:len(b)-16]), 0x00),
	}
	if b[2] == SuiteBox {
		m["suite-swap"] = set(2, SuiteAESGCM)
	} else {
		m["suite-swap"] = set(2, SuiteBox)
	}
	switch b[1] {
	case KindRequest:
		m["kind-vouched"] = set(1, KindRequestVouched)
		m["kind-ping"] = set(1, KindPing)
	case KindRequestVouched:
		m["kind-anon"] = set(1, KindRequest)
		m["kind-ping-vouched"] = set(1, KindPingVouched)
		m["identity-flip"] = fl(54 + 40)
		m["identity-cut"] = b[:54+88+15]
		m["identity-only"] = b[:54+88]
	case KindPing:
		m["ping-with-body"] = append(bytes.Clone(b), 1, 2, 3)
		m["kind-request"] = set(1, KindRequest)
		m["kind-ping-vouched"] = set(1, KindPingVouched)
	case KindPingVouched:
		m["ping-with-body"] = append(bytes.Clone(b), 1)
		m["kind-ping"] = set(1, KindPing)
	}
	return m
}

// fzReq is one request of a genuine client of the parser and client
// targets.
type fzReq struct {
	name        string
	kind, suite byte
	n           uint64
	sealed      []byte
}

// fzClient is the genuine client of FuzzClientOpen: one C', four
// requests with distinct counters (as a real client sends them), and
// every answer the genuine server could send to each.
type fzClient struct {
	sess    *fzSession
	reqs    []fzReq
	answers []fzAnswer
}

type fzAnswer struct {
	name   string
	req    int // index in reqs
	kind   byte
	reason byte // refusals
	body   []byte
	b      []byte
}

var fzClientState = sync.OnceValue(func() *fzClient {
	c := &fzClient{sess: newFzSession(fzPublic("fuzz client eph"))}
	id := c.sess.vouch(fzPublic("client"), fzTime+3600000)
	for _, r := range []fzReq{
		{name: "box", kind: KindRequest, suite: SuiteBox, n: 7},
		{name: "gcm", kind: KindRequest, suite: SuiteAESGCM, n: 8},
		{name: "vouched-box", kind: KindRequestVouched, suite: SuiteBox, n: 9},
		{name: "ping-gcm", kind: KindPing, suite: SuiteAESGCM, n: 10},
	} {
		var rid *Identity
		if IsVouched(r.kind) {
			rid = id
		}
		var body []byte
		if !IsPing(r.kind) {
			body = []byte("hello " + r.name)
		}
		r.sealed = c.sess.request(r.kind, r.suite, r.n, fzTime, rid, body)
		c.reqs = append(c.reqs, r)
	}
	for i, r := range c.reqs {
		replies := []fzAnswer{{name: "reply-empty", body: []byte{}}}
		if !IsPing(r.kind) {
			replies = append(replies, fzAnswer{name: "reply", body: []byte("world " + r.name)})
		}
		for _, a := range replies {
			a.name, a.req, a.kind = r.name+"-"+a.name, i, KindReply
			rnd := sha256.Sum256([]byte("fuzz reply random " + a.name))
			a.b = AppendReply(nil, c.sess.keys[r.suite], r.n, (*[16]byte)(rnd[:16]), a.body)
			c.answers = append(c.answers, a)
		}
		for _, reason := range []byte{RefuseNotAuthorized, RefuseStale, RefuseReplayed, RefuseUnsupportedFeature, RefuseInDoubt, 0x0a} {
			c.answers = append(c.answers, fzAnswer{name: fmt.Sprintf("%s-refusal-%d", r.name, reason), req: i, kind: KindRefusal,
				reason: reason, b: AppendRefusal(nil, &c.sess.prk0, r.sealed[:HeaderSize], reason)})
		}
	}
	return c
})

// fzReplyMutations are the failure classes of an answer, as seeds.
func fzReplyMutations(b []byte) map[string][]byte {
	set := func(i int, v byte) []byte { c := bytes.Clone(b); c[i] = v; return c }
	fl := func(i int) []byte { c := bytes.Clone(b); c[i] ^= 0x01; return c }
	m := map[string][]byte{
		"empty": {}, "one-byte": b[:1], "two-bytes": b[:2], "three-bytes": b[:3],
		"version-1": set(0, 0x01), "version-3": set(0, 0x03), "kind-request": set(1, KindRequest),
		"kind-reply-ext": set(1, 0x14), "kind-refusal-ext": set(1, 0x15),
		"extended": append(bytes.Clone(b), 0), "truncated": b[:len(b)-1],
		"first-flip": fl(3), "last-flip": fl(len(b) - 1),
		"as-hint":       append(set(1, KindHint)[:2], HintCannotOpen),
		"as-v1-hint":    {0x01, KindHint, HintCannotOpen},
		"as-hint-long":  append(set(1, KindHint)[:3], 0),
		"as-reply":      set(1, KindReply),
		"as-refusal":    set(1, KindRefusal),
		"reason-change": set(2, b[2]^0x07),
	}
	if b[1] == KindReply {
		m["header-only"] = b[:ReplyHeader]
		m["min-length-minus-one"] = b[:ReplyOverhead-1]
	}
	return m
}

// fzLongTermSeeds are the keys of FuzzCheckLongTermKey by name: every
// encoding of the shared equivalent keys, the points of small order, the
// edges of canonical encodings, the base point and a twist point.
func fzLongTermSeeds() map[string][]byte {
	m := map[string][]byte{}
	for i, e := range fzEquivalents() {
		m[fmt.Sprintf("equivalent-%d-public", i)] = bytes.Clone(e.public[:])
		for j, o := range e.others {
			m[fmt.Sprintf("equivalent-%d-other-%02d", i, j)] = bytes.Clone(o[:])
		}
	}
	h := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			panic(err)
		}
		return b
	}
	le := func(v *big.Int) []byte {
		b := make([]byte, 32)
		v.FillBytes(b)
		for i := 0; i < 16; i++ {
			b[i], b[31-i] = b[31-i], b[i]
		}
		return b
	}
	p := fzP
	for name, v := range map[string]*big.Int{
		"u-0": big.NewInt(0), "u-1": big.NewInt(1), "u-2": big.NewInt(2), "u-9-base-point": big.NewInt(9),
		"u-p-minus-1": new(big.Int).Sub(p, big.NewInt(1)), "u-p-minus-2": new(big.Int).Sub(p, big.NewInt(2)),
	} {
		m[name] = le(v)
	}
	for name, s := range map[string]string{
		"u-p":            "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"u-p-plus-1":     "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"u-2^255-1":      "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"all-ones":       "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
		"order-8-a":      "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
		"order-8-b":      "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
		"order-8-a-high": "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b880",
	} {
		m[name] = h(s)
	}
	for _, l := range []string{"server", "client"} {
		k := fzPublic(l)
		m["public-"+l] = k[:]
		k[31] |= 0x80
		m["public-"+l+"-bit255"] = bytes.Clone(k[:])
	}
	m["derive-short"] = []byte("a secret seed of another length")
	m["derive-empty"] = []byte{}
	return m
}

// fzVouchCase is a vouch made by a genuine client.
type fzVouchCase struct {
	name               string
	eph, client, serve [32]byte
	expiry             uint64
	v                  [32]byte
}

var fzVouches = sync.OnceValue(func() []fzVouchCase {
	eq := fzEquivalents()
	var out []fzVouchCase
	for _, c := range []struct {
		name        string
		eph, client [32]byte
		expiry      uint64
	}{
		{"client", fzPublic("fuzz vouch eph"), fzPublic("client"), fzTime + 3600000},
		{"client-2", fzPublic("fuzz vouch eph 2"), fzPublic("client-2"), fzTime + 1},
		// Keys whose other encodings are in the shared data, so the
		// seeds below can try each of them in C' and C.
		{"equivalent", eq[0].public, eq[1].public, fzTime},
	} {
		id := newFzSession(c.eph).vouch(c.client, c.expiry)
		out = append(out, fzVouchCase{name: c.name, eph: c.eph, client: c.client, serve: fzPublic("server"), expiry: c.expiry, v: id.Vouch})
	}
	return out
})

// fuzzSeeds returns the seed inputs of each target, by target and seed
// name. f.Add and the committed files both come from here.
func fuzzSeeds() fuzzcorpus.Seeds {
	out := map[string]map[string][]any{"FuzzParseRequest": {}, "FuzzClientOpen": {}, "FuzzCheckLongTermKey": {}, "FuzzVouch": {}}
	pr := out["FuzzParseRequest"]
	cl := fzClientState()
	vouched := cl.reqs[2]
	for _, r := range cl.reqs {
		pr["valid-"+r.name] = []any{bytes.Clone(r.sealed)}
	}
	ping := cl.sess.request(KindPingVouched, SuiteBox, 11, fzTime, cl.sess.vouch(fzPublic("client"), fzTime+1), nil)
	pr["valid-ping-vouched-box"] = []any{ping}
	for _, base := range []struct {
		name string
		b    []byte
	}{{"box", cl.reqs[0].sealed}, {"vouched-box", vouched.sealed}, {"ping-gcm", cl.reqs[3].sealed}, {"ping-vouched-box", ping}} {
		for mn, mb := range fzRequestMutations(base.b) {
			pr[base.name+"-"+mn] = []any{mb}
		}
	}
	// Flags with an extension field: parses (step 4 refuses it later).
	ext := append([]byte{}, cl.reqs[0].sealed[:52]...)
	ext[3] = 0x01
	ext = append(ext, 0, 3, 0, 0, 0)
	full := append(ext, cl.reqs[0].sealed[54:]...)
	pr["flags-with-ext"] = []any{full}
	pr["flags-with-ext-too-short"] = []any{bytes.Clone(full[:54+3+15])}
	// The edges of canonical C' (u < p): p - 1 parses, p and above do not.
	for name, k := range fzLongTermSeeds() {
		if strings.HasPrefix(name, "u-") || name == "all-ones" {
			b := bytes.Clone(cl.reqs[0].sealed)
			copy(b[4:36], k)
			pr["eph-"+name] = []any{b}
		}
	}
	// The equivalent encodings of a C': only the canonical ones parse.
	for i, e := range fzEquivalents() {
		req := newFzSession(e.public).request(KindRequest, SuiteBox, 1, fzTime, nil, []byte("x"))
		pr[fmt.Sprintf("eph-equivalent-%d-public", i)] = []any{req}
		for j, o := range e.others {
			b := bytes.Clone(req)
			copy(b[4:36], o[:])
			pr[fmt.Sprintf("eph-equivalent-%d-other-%02d", i, j)] = []any{b}
		}
	}

	co := out["FuzzClientOpen"]
	for _, a := range cl.answers {
		co[a.name] = []any{uint8(a.req), cl.reqs[a.req].n, bytes.Clone(a.b)}
		co[a.name+"-other-counter"] = []any{uint8(a.req), cl.reqs[a.req].n + 1, bytes.Clone(a.b)}
		co[a.name+"-other-request"] = []any{uint8((a.req + 1) % len(cl.reqs)), cl.reqs[a.req].n, bytes.Clone(a.b)}
	}
	for _, ans := range cl.answers {
		switch ans.name {
		case "box-reply", "box-refusal-1", "gcm-reply", "ping-gcm-reply-empty":
			for mn, mb := range fzReplyMutations(ans.b) {
				co[ans.name+"-"+mn] = []any{uint8(ans.req), cl.reqs[ans.req].n, mb}
			}
		}
	}
	for _, h := range []struct {
		name string
		b    []byte
	}{{"hint-cannot-open", AppendHint(nil, HintCannotOpen)}, {"hint-version", AppendHint(nil, HintUnsupportedVersion)},
		{"hint-busy", AppendHint(nil, HintBusy)}, {"hint-unknown", AppendHint(nil, 0x7f)}, {"hint-v1", []byte{0x01, KindHint, HintCannotOpen}},
		{"hint-v1-two-bytes", []byte{0x01, KindHint}}, {"reflected-request", cl.reqs[0].sealed}} {
		co[h.name] = []any{uint8(0), uint64(7), h.b}
	}

	lt := out["FuzzCheckLongTermKey"]
	for name, k := range fzLongTermSeeds() {
		lt[name] = []any{k}
	}

	fv := out["FuzzVouch"]
	add := func(name string, c fzVouchCase, v []byte) {
		fv[name] = []any{bytes.Clone(c.eph[:]), bytes.Clone(c.client[:]), bytes.Clone(c.serve[:]), c.expiry, v}
	}
	for _, c := range fzVouches() {
		add("valid-"+c.name, c, c.v[:])
		m := c
		m.eph[0] ^= 1
		add(c.name+"-other-eph", m, c.v[:])
		m = c
		m.client[0] ^= 1
		add(c.name+"-other-client", m, c.v[:])
		m = c
		m.serve[0] ^= 1
		add(c.name+"-other-server", m, c.v[:])
		m = c
		m.serve[31] |= 0x80
		add(c.name+"-server-bit255", m, c.v[:])
		m = c
		m.client[31] |= 0x80
		add(c.name+"-client-bit255", m, c.v[:])
		m = c
		m.expiry++
		add(c.name+"-expiry-plus-1", m, c.v[:])
		m.expiry -= 2
		add(c.name+"-expiry-minus-1", m, c.v[:])
		add(c.name+"-vouch-flip", c, append(bytes.Clone(c.v[:31]), c.v[31]^1))
		add(c.name+"-vouch-short", c, bytes.Clone(c.v[:16]))
		add(c.name+"-vouch-long", c, append(bytes.Clone(c.v[:]), 0))
	}
	eq := fzEquivalents()
	c := fzVouches()[2]
	for j, o := range eq[0].others {
		m := c
		m.eph = o
		add(fmt.Sprintf("equivalent-eph-other-%02d", j), m, c.v[:])
	}
	for j, o := range eq[1].others {
		m := c
		m.client = o
		add(fmt.Sprintf("equivalent-client-other-%02d", j), m, c.v[:])
	}
	return out
}

func addSeeds(f *testing.F) {
	for _, args := range fuzzSeeds()[f.Name()] {
		f.Add(args...)
	}
}

// fzP is p = 2^255 - 19.
var fzP = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))

// fzLE reads 32 bytes as a little-endian integer.
func fzLE(b []byte) *big.Int {
	be := make([]byte, len(b))
	for i := range b {
		be[len(b)-1-i] = b[i]
	}
	return new(big.Int).SetBytes(be)
}

// specParse is SPEC.md §6 steps 1 and 2 with the layout of §5.1, read
// from the text: the error ParseRequest must return.
func specParse(b []byte) error {
	switch {
	case len(b) < 2:
		return ErrMalformed
	case b[0] != 0x02:
		return ErrVersion
	case b[1] < 0x01 || b[1] > 0x04:
		return ErrKind
	case len(b) < 54:
		return ErrMalformed
	}
	n := binary.BigEndian.Uint64(b[36:44])
	x := int(b[52])<<8 | int(b[53])
	need := 54 + x + 16
	if b[1] == 0x02 || b[1] == 0x04 {
		need += 88 // the identity box
	}
	switch {
	case fzLE(b[4:36]).Cmp(fzP) >= 0: // C' canonical: u < p, so bit 255 is 0
		return ErrMalformed
	case n < 1 || n >= 1<<32:
		return ErrMalformed
	case b[3] == 0 && x != 0: // "flags is not 0 or X is 0"
		return ErrMalformed
	case len(b) < need:
		return ErrMalformed
	case !specExtension(b[3], b[54:54+x]):
		return ErrMalformed
	case (b[1] == 0x03 || b[1] == 0x04) && len(b) != need: // a ping's body box is exactly 16 bytes
		return ErrMalformed
	}
	return nil
}

// specExtension is SPEC.md §10's element framing read from the text, with
// §14's value sizes: type ‖ u16 len ‖ value, types increasing (0 to 7),
// flags bit i set exactly when type i is present; EPOCH (0) has an 8-byte
// value and WANT_EPOCH (5) an empty one.
func specExtension(flags byte, ext []byte) bool {
	var bits byte
	prev := -1
	for i := 0; i < len(ext); {
		if len(ext)-i < 3 {
			return false
		}
		t, n := int(ext[i]), int(ext[i+1])<<8|int(ext[i+2])
		if t <= prev || t > 7 || len(ext)-i-3 < n || (t == 0 && n != 8) || (t == 5 && n != 0) {
			return false
		}
		prev = t
		bits |= 1 << t
		i += 3 + n
	}
	return bits == flags
}

// specSupported: the suites and element types this implementation has.
func specSupported(suite, flags byte) bool {
	return (suite == 0x01 || suite == 0x02) && flags&^(1<<0|1<<5) == 0
}

// FuzzParseRequest checks ParseRequest against specParse and, for what
// parses, that the fields are the bytes at the offsets of §5.1 and that
// header, identity box and body box are the whole input in order.
func FuzzParseRequest(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRequest(b)
		if want := specParse(b); err != want {
			t.Fatalf("ParseRequest(%x) = %v, SPEC §6 steps 1-2 say %v", b, err, want)
		}
		if err != nil {
			return
		}
		x := int(binary.BigEndian.Uint16(b[52:54]))
		switch {
		case r.Kind != b[1] || r.Suite != b[2] || r.Flags != b[3]:
			t.Fatalf("kind, suite, flags %x %x %x from %x", r.Kind, r.Suite, r.Flags, b[:4])
		case !bytes.Equal(r.Eph[:], b[4:36]):
			t.Fatalf("C' %x, wire %x", r.Eph, b[4:36])
		case r.Counter != binary.BigEndian.Uint64(b[36:44]) || r.Timestamp != binary.BigEndian.Uint64(b[44:52]):
			t.Fatalf("N %d, T %d from %x", r.Counter, r.Timestamp, b[36:52])
		case !bytes.Equal(r.Header, b[:54+x]) || !bytes.Equal(r.Ext, b[54:54+x]):
			t.Fatalf("header %x, extension %x for X = %d", r.Header, r.Ext, x)
		case IsVouched(r.Kind) != (len(r.Identity) == 88) || (!IsVouched(r.Kind) && len(r.Identity) != 0):
			t.Fatalf("kind %x with an identity box of %d bytes", r.Kind, len(r.Identity))
		case len(r.Sealed) < 16 || (IsPing(r.Kind) && len(r.Sealed) != 16):
			t.Fatalf("kind %x with a body box of %d bytes", r.Kind, len(r.Sealed))
		case r.Supported() != specSupported(b[2], b[3]):
			t.Fatalf("Supported() = %v for suite %x flags %x", r.Supported(), b[2], b[3])
		}
		if got := append(append(bytes.Clone(r.Header), r.Identity...), r.Sealed...); !bytes.Equal(got, b) {
			t.Fatalf("header ‖ identity ‖ body box is not the input:\n got %x\nwant %x", got, b)
		}
		// A request has one encoding of its header fields: sealing the
		// parsed fields gives the same header bytes.
		if r.Supported() {
			var prk Secret
			fields := RequestFields{Kind: r.Kind, Suite: r.Suite, Eph: r.Eph, Counter: r.Counter, Timestamp: r.Timestamp,
				Epoch: r.Epoch, WantEpoch: r.WantEpoch}
			if h := AppendRequest(nil, &fields, SessionKeys(&prk, r.Suite), nil, nil); !bytes.Equal(h[:len(r.Header)], r.Header) {
				t.Fatalf("fields encode to header %x, parsed from %x", h[:len(r.Header)], r.Header)
			}
		}
	})
}

// specClassify is SPEC.md §7 steps 1, 2 and 5 read from the text.
func specClassify(b []byte) (kind, hint byte, err error) {
	switch {
	case len(b) == 3 && b[1] == 0x13 && b[0] != 0x02:
		return 0x13, 0x02, nil // UNSUPPORTED_VERSION from a server of version b[0]
	case len(b) < 2 || b[0] != 0x02:
		return 0, 0, ErrVersion // not secsock
	case b[1] == 0x13 && len(b) != 3:
		return 0x13, 0, ErrMalformed
	case b[1] == 0x13:
		return 0x13, b[2], nil
	case b[1] == 0x11 || b[1] == 0x12 || b[1] == 0x14: // REPLY, REFUSAL, REPLY_EXT (§14)
		return b[1], 0, nil
	}
	return b[1], 0, ErrKind
}

// FuzzClientOpen plays the client of §7 waiting for the answer to request
// sel (of fzClientState) with expected counter n, on fuzzed answer bytes.
// Classify must agree with specClassify; a reply must open, and a refusal
// verify, exactly when the bytes are a genuine answer to that request (a
// reply also only for its own counter). The openers also run on every
// input, whatever its kind, and must not panic.
func FuzzClientOpen(f *testing.F) {
	addSeeds(f)
	cl := fzClientState()
	f.Fuzz(func(t *testing.T, sel uint8, n uint64, b []byte) {
		ri := int(sel) % len(cl.reqs)
		rq := &cl.reqs[ri]
		keys, h := cl.sess.keys[rq.suite], rq.sealed[:HeaderSize]
		// The genuine answer these bytes are, if any: a reply sealed for
		// counter n in this suite (the client expects n), or a refusal made
		// for this request's header.
		var genuine *fzAnswer
		for i := range cl.answers {
			a := &cl.answers[i]
			if !bytes.Equal(a.b, b) {
				continue
			}
			if a.kind == KindReply && cl.reqs[a.req].suite == rq.suite && cl.reqs[a.req].n == n ||
				a.kind == KindRefusal && a.req == ri {
				genuine = a
			}
		}

		kind, hint, err := Classify(b)
		wk, wh, werr := specClassify(b)
		if err != werr || kind != wk || hint != wh {
			t.Fatalf("Classify(%x) = %x, %x, %v; SPEC §7 says %x, %x, %v", b, kind, hint, err, wk, wh, werr)
		}
		if err == nil && kind == KindHint && len(b) != HintSize {
			t.Fatalf("hint of %d bytes", len(b))
		}

		body, rerr := OpenReply(nil, keys, n, b)
		reason, ferr := CheckRefusal(&cl.sess.prk0, h, b)
		if err != nil {
			return
		}
		switch kind {
		case KindReply:
			want := genuine != nil && genuine.kind == KindReply
			if (rerr == nil) != want {
				t.Fatalf("request %s, counter %d: reply %x opened = %v (%v), genuine = %v", rq.name, n, b, rerr == nil, rerr, want)
			}
			if want && !bytes.Equal(body, genuine.body) {
				t.Fatalf("reply opened to %x, sealed %x", body, genuine.body)
			}
		case KindRefusal:
			want := genuine != nil && genuine.kind == KindRefusal
			if (ferr == nil) != want {
				t.Fatalf("request %s: refusal %x verified = %v (%v), genuine = %v", rq.name, b, ferr == nil, ferr, want)
			}
			if want && reason != genuine.reason {
				t.Fatalf("refusal reason %x, sealed %x", reason, genuine.reason)
			}
		}
	})
}

// fzLadder returns X:Z of [k]P for the point with u-coordinate u, by the
// Montgomery ladder of RFC 7748 §5 on big integers with an unclamped k;
// Z = 0 means the point at infinity. It needs u ≠ 0 (the differential
// addition divides by it).
func fzLadder(u, k *big.Int) (x, z *big.Int) {
	p := fzP
	mod := func(v *big.Int) *big.Int { return v.Mod(v, p) }
	mul := func(a, b *big.Int) *big.Int { return mod(new(big.Int).Mul(a, b)) }
	add := func(a, b *big.Int) *big.Int { return mod(new(big.Int).Add(a, b)) }
	sub := func(a, b *big.Int) *big.Int { return mod(new(big.Int).Sub(a, b)) }
	a24 := big.NewInt(121665)
	x1 := new(big.Int).Set(u)
	x2, z2 := big.NewInt(1), big.NewInt(0)
	x3, z3 := new(big.Int).Set(u), big.NewInt(1)
	for i := k.BitLen() - 1; i >= 0; i-- {
		if k.Bit(i) == 1 {
			x2, x3, z2, z3 = x3, x2, z3, z2
		}
		a, b := add(x2, z2), sub(x2, z2)
		aa, bb := mul(a, a), mul(b, b)
		e := sub(aa, bb)
		c, d := add(x3, z3), sub(x3, z3)
		da, cb := mul(d, a), mul(c, b)
		s, df := add(da, cb), sub(da, cb)
		x3, z3 = mul(s, s), mul(x1, mul(df, df))
		x2, z2 = mul(aa, bb), mul(e, add(aa, mul(a24, e)))
		if k.Bit(i) == 1 {
			x2, x3, z2, z3 = x3, x2, z3, z2
		}
	}
	return x2, z2
}

// fzOrder is ℓ = 2^252 + 27742317777372353535851937790883648493.
var fzOrder, _ = new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)

// refLongTermMontgomery is §4.1's valid-key rule stated on the Montgomery
// curve v² = u³ + 486662u² + u, with math/big only: u < p, the point is
// on the curve (not the twist: the right side is a square), it is not of
// order dividing 8, and [ℓ]P is the point at infinity.
func refLongTermMontgomery(k []byte) bool {
	u := fzLE(k)
	if u.Cmp(fzP) >= 0 || u.Sign() == 0 { // not canonical; u = 0 is the point of order 2
		return false
	}
	if !fzOnCurve(u) {
		return false // on the twist (the right side is 0 only for u = 0)
	}
	if _, z := fzLadder(u, big.NewInt(8)); z.Sign() == 0 {
		return false // small order
	}
	_, z := fzLadder(u, fzOrder)
	return z.Sign() == 0
}

// refLongTermEdwards is §4.1's check as the SPEC words it for Go: u ≠ p-1,
// y = (u-1)/(u+1) mod p (math/big), decoded by filippo.io/edwards25519,
// [8]P not the identity and [ℓ]P the identity (as [ℓ-1]P + P with the
// constant-time ScalarMult, not the code's variable-time one).
func refLongTermEdwards(k []byte) bool {
	u := fzLE(k)
	pm1 := new(big.Int).Sub(fzP, big.NewInt(1))
	if u.Cmp(fzP) >= 0 || u.Cmp(pm1) == 0 {
		return false
	}
	den := new(big.Int).ModInverse(new(big.Int).Add(u, big.NewInt(1)), fzP)
	y := new(big.Int).Mul(new(big.Int).Sub(u, big.NewInt(1)), den)
	y.Mod(y, fzP)
	enc := make([]byte, 32)
	y.FillBytes(enc)
	for i := 0; i < 16; i++ {
		enc[i], enc[31-i] = enc[31-i], enc[i]
	}
	pt, err := new(edwards25519.Point).SetBytes(enc)
	if err != nil {
		return false
	}
	id := edwards25519.NewIdentityPoint()
	if new(edwards25519.Point).MultByCofactor(pt).Equal(id) == 1 {
		return false
	}
	lm1 := new(big.Int).Sub(fzOrder, big.NewInt(1)).FillBytes(make([]byte, 32))
	for i := 0; i < 16; i++ {
		lm1[i], lm1[31-i] = lm1[31-i], lm1[i]
	}
	s, err := edwards25519.NewScalar().SetCanonicalBytes(lm1)
	if err != nil {
		panic(err)
	}
	q := new(edwards25519.Point).ScalarMult(s, pt)
	return q.Add(q, pt).Equal(id) == 1
}

// FuzzCheckLongTermKey compares CheckLongTermKey on 32-byte inputs with
// two independent readings of §4.1, which must also agree with each other;
// accepted keys are canonical and agree in X25519; the errors name the
// failure (non-canonical exactly when u ≥ p, weak for points of small
// order on the curve). An input of another length is a seed for a secret
// key c: X25519(c, 9) must pass ("Every X25519(c, 9) passes").
func FuzzCheckLongTermKey(f *testing.F) {
	addSeeds(f)
	probe := fzSecret("fuzz probe")
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) != KeySize {
			c := sha256.Sum256(b)
			pub, err := Public(&c)
			if err != nil {
				t.Fatal(err)
			}
			if err := CheckLongTermKey(&pub); err != nil {
				t.Fatalf("X25519(%x, 9) = %x refused: %v", c, pub, err)
			}
			return
		}
		k := [32]byte(b)
		err := CheckLongTermKey(&k)
		mont, edw := refLongTermMontgomery(b), refLongTermEdwards(b)
		if mont != edw {
			t.Fatalf("the test's two readings of §4.1 disagree on %x: Montgomery %v, Edwards %v", b, mont, edw)
		}
		if (err == nil) != mont {
			t.Fatalf("CheckLongTermKey(%x) = %v, SPEC §4.1 says valid = %v", b, err, mont)
		}
		canonical := fzLE(b).Cmp(fzP) < 0
		if errors.Is(err, ErrNonCanonical) != !canonical || Canonical(&k) != canonical {
			t.Fatalf("%x: canonical %v, error %v, Canonical() %v", b, canonical, err, Canonical(&k))
		}
		if err == nil {
			if _, xerr := X25519(&probe, &k); xerr != nil {
				t.Fatalf("valid key %x gives an all-zero X25519", b)
			}
			return
		}
		// A canonical point of small order on the curve is weak, not
		// merely invalid (the root package reports ErrWeakKey for it).
		if u := fzLE(b); canonical && u.Sign() != 0 {
			if _, z := fzLadder(u, big.NewInt(8)); z.Sign() == 0 && fzOnCurve(u) && !errors.Is(err, ErrWeakKey) {
				t.Fatalf("%x is of small order, error %v", b, err)
			}
		}
	})
}

// fzOnCurve reports whether u³ + 486662u² + u is a non-zero square mod p.
func fzOnCurve(u *big.Int) bool {
	rhs := new(big.Int).Mul(u, u)
	rhs.Add(rhs, new(big.Int).Mul(big.NewInt(486662), u))
	rhs.Add(rhs, big.NewInt(1))
	rhs.Mul(rhs, u)
	return big.Jacobi(rhs.Mod(rhs, fzP), fzP) == 1
}

// FuzzVouch: a vouch verifies only for the exact C', C, S and E it was
// made for. The server side is played twice: as the server computes it
// (prkV from X25519(s, C) for the fuzzed C and S), and with the genuine
// clients' prkV fixed, so that the binding of each field in V itself is
// tested apart from the binding in prkV.
func FuzzVouch(f *testing.F) {
	addSeeds(f)
	s := fzSecret("server")
	cases := fzVouches()
	genuine := map[string]bool{}
	fixed := map[[32]byte]*Secret{}
	for _, c := range cases {
		genuine[string(c.eph[:])+string(c.client[:])+string(c.serve[:])+string(binary.BigEndian.AppendUint64(nil, c.expiry))+string(c.v[:])] = true
		dh2, _ := X25519(&s, &c.client)
		v := VouchSecret(&dh2, &c.client, &c.serve)
		fixed[c.client] = &v
	}
	f.Fuzz(func(t *testing.T, eph, client, server []byte, expiry uint64, v []byte) {
		if len(eph) != 32 || len(client) != 32 || len(server) != 32 {
			return
		}
		e, c, sv := [32]byte(eph), [32]byte(client), [32]byte(server)
		want := genuine[string(eph)+string(client)+string(server)+string(binary.BigEndian.AppendUint64(nil, expiry))+string(v)]
		for cl, prkV := range fixed {
			ok := CheckVouch(prkV, &e, &c, &sv, expiry, v)
			if ok && !(want && cl == c) {
				t.Fatalf("vouch %x verified with prkV of %x for C' %x, C %x, S %x, E %d", v, cl, e, c, sv, expiry)
			}
			if !ok && want && cl == c {
				t.Fatalf("genuine vouch %x does not verify", v)
			}
		}
		dh2, err := X25519(&s, &c)
		if err != nil {
			if want {
				t.Fatalf("genuine client key %x is weak", c)
			}
			return
		}
		prkV := VouchSecret(&dh2, &c, &sv)
		if ok := CheckVouch(&prkV, &e, &c, &sv, expiry, v); ok != want {
			t.Fatalf("CheckVouch(C' %x, C %x, S %x, E %d, V %x) = %v, genuine = %v", e, c, sv, expiry, v, ok, want)
		}
		if want && Vouch(&prkV, &e, &c, &sv, expiry) != [32]byte(v) {
			t.Fatal("Vouch does not make the genuine vouch again")
		}
	})
}

// TestFuzzCorpora fails when a fuzz target of this package has an empty
// or missing corpus directory, or when a seed of fuzzSeeds is not
// committed as it is generated.
func TestFuzzCorpora(t *testing.T) { fuzzcorpus.Check(t, fuzzSeeds(), *updateFuzz) }
