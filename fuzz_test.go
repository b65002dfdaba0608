//go:build v1tests

package secsock

// Fuzz targets for everything that reads untrusted bytes: the request
// parser, the server's whole check sequence (SPEC.md §6), the client's
// reply opener (§7), the vouch check, and key text (Z85, hex, base64).
//
// The seed corpus lives both in f.Add calls (fuzzSeeds) and as committed
// files under testdata/fuzz/<FuzzName>/; TestFuzzCorpora fails when a
// target's directory is empty or misses a seed, and `go test -run
// TestFuzzCorpora -update-fuzz` rewrites the files from fuzzSeeds.
//
// The central property ("nothing opens unless it was sealed with the
// right keys"): each target that opens starts from messages sealed by a
// real client or server with fixed keys (selected by the first argument)
// and lets the fuzzer mutate the wire bytes. Only the exact sealed bytes
// may get past the box checks; any other input must end as one of the
// pre-authentication failure classes (drop or unauthenticated hint).

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

var updateFuzz = flag.Bool("update-fuzz", false, "rewrite testdata/fuzz seed files from fuzzSeeds")

// fuzzRand is a deterministic, endless random source.
func fuzzRand(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	binary.BigEndian.PutUint64(s[:], seed)
	return rand.NewChaCha8(s)
}

// fuzzReqCase is one request a real client seals; the server fuzz target
// mutates its bytes.
type fuzzReqCase struct {
	name                        string
	vouched, ping, previous     bool
	policy, authorize, badVouch bool
	allowAnon                   bool
	suite                       byte
	age                         int64 // server clock minus timestamp, ms
	body                        []byte
	expect                      string // serverOutcome of the exact sealed bytes
	world                       *vectorWorld
	sealed                      []byte
}

var fuzzReqCases = []fuzzReqCase{
	{name: "anon-box", body: []byte("hello"), expect: "deliver"},
	{name: "anon-box-empty", body: []byte{}, expect: "deliver"},
	{name: "anon-gcm", suite: suiteAESGCM, body: []byte("hello gcm"), expect: "deliver"},
	{name: "vouched-box", vouched: true, policy: true, authorize: true, body: []byte("GET /balance"), expect: "deliver"},
	{name: "vouched-gcm", vouched: true, suite: suiteAESGCM, body: []byte("hello"), expect: "deliver"},
	{name: "ping", ping: true, expect: "reply"},
	{name: "ping-vouched", ping: true, vouched: true, policy: true, authorize: true, expect: "reply"},
	{name: "ping-gcm", ping: true, suite: suiteAESGCM, expect: "reply"},
	{name: "previous-key", previous: true, vouched: true, body: []byte("rotated"), expect: "deliver"},
	{name: "not-authorized", vouched: true, policy: true, body: []byte("x"), expect: "refuse:not-authorized"},
	{name: "anon-refused", policy: true, body: []byte("x"), expect: "refuse:not-authorized"},
	{name: "anon-allowed", policy: true, allowAnon: true, body: []byte("x"), expect: "deliver"},
	{name: "bad-vouch", vouched: true, badVouch: true, body: []byte("x"), expect: "refuse:bad-vouch"},
	{name: "stale", age: 120001, body: []byte("x"), expect: "refuse:stale"},
	{name: "future", age: -120001, suite: suiteAESGCM, body: []byte("x"), expect: "refuse:stale"},
}

var fuzzReqOnce sync.Once

// fuzzRequests seals every case once (deterministically).
func fuzzRequests() []fuzzReqCase {
	fuzzReqOnce.Do(func() {
		server, prev := seeded("server"), seeded("server-previous")
		for i := range fuzzReqCases {
			c := &fuzzReqCases[i]
			w := &vectorWorld{
				servers: []SecretKey{server, prev}, client: seeded("client"), eph: seeded("fuzz eph " + c.name),
				anonymous: !c.vouched, suite: c.suite, counter: 5, ts: vectorTime, window: 120000, skew: 10000,
				policy: c.policy, allowAnon: c.allowAnon,
			}
			if w.suite == 0 {
				w.suite = suiteBox
			}
			w.now = uint64(int64(w.ts) + c.age)
			if c.authorize {
				w.authorized = append(w.authorized, w.client.public)
			}
			if c.policy {
				w.authorized = append(w.authorized, seeded("someone else").public)
			}
			to := server.public
			if c.previous {
				to = prev.public
			}
			if c.badVouch {
				w.forgeIdentity = func(w *vectorWorld, id *identity) {
					impostor := seeded("impostor")
					vk, _ := precompute(server.public, impostor.bytes())
					id.vouch = makeVouch(vk, w.eph.public)
				}
			}
			_, c.sealed = w.sealRequest(to, c.ping, c.body)
			c.world = w
		}
	})
	return fuzzReqCases
}

// fuzzServer is vectorWorld.serverState with an endless random source.
func fuzzServer(w *vectorWorld, seed uint64) *curveServer { return w.serverWith(fuzzRand(seed)) }

// preAuth are the outcomes a message may have without any box opening.
var preAuth = map[Reason]bool{
	ReasonMalformed: true, ReasonUnknownVersion: true, ReasonUnknownKind: true,
	ReasonUnsupported: true, ReasonWeakKey: true, ReasonForged: true,
}

// requestMutations are the failure classes of a request, as seeds.
func requestMutations(b []byte) map[string][]byte {
	set := func(i int, v byte) []byte { c := bytes.Clone(b); c[i] = v; return c }
	fl := func(i int) []byte { c := bytes.Clone(b); c[i] ^= 0x80; return c }
	m := map[string][]byte{
		"empty":         {},
		"one-byte":      b[:1],
		"two-bytes":     b[:2],
		"header-only":   b[:requestHeaderLen],
		"truncated":     b[:len(b)-1],
		"extended":      append(bytes.Clone(b), 0),
		"version-2":     set(0, 0x02),
		"version-0":     set(0, 0x00),
		"kind-reply":    set(1, kindReply),
		"kind-refusal":  set(1, kindRefusal),
		"kind-hint":     set(1, kindHint),
		"kind-unknown":  set(1, 0x7f),
		"suite-unknown": set(2, 0x7f),
		"eph-flip":      fl(10),
		"eph-zero":      func() []byte { c := bytes.Clone(b); copy(c[3:35], make([]byte, 32)); return c }(),
		"counter-flip":  fl(42),
		"time-flip":     fl(50),
		"body-flip":     fl(len(b) - 1),
		"tag-flip":      fl(len(b) - 16),
	}
	switch b[1] {
	case kindRequest:
		m["kind-vouched"] = set(1, kindRequestVouched)
		m["kind-ping"] = set(1, kindPing)
	case kindRequestVouched:
		m["kind-anon"] = set(1, kindRequest)
		m["identity-flip"] = fl(requestHeaderLen + 40)
		m["identity-cut"] = b[:vouchRequestOver-1]
	case kindPing:
		m["ping-with-body"] = append(bytes.Clone(b), 1, 2, 3)
	}
	if b[2] == suiteBox {
		m["suite-swap"] = set(2, suiteAESGCM)
	} else {
		m["suite-swap"] = set(2, suiteBox)
	}
	return m
}

// fuzzReplyCase is one answer a real server seals; the client fuzz target
// mutates it.
type fuzzReplyCase struct {
	name        string
	kind, suite byte
	body        []byte
	sealed      []byte
}

const fuzzReplyCounter = 7

var fuzzReplyCases = []fuzzReplyCase{
	{name: "reply-box", kind: kindReply, suite: suiteBox, body: []byte("world")},
	{name: "reply-box-empty", kind: kindReply, suite: suiteBox, body: []byte{}},
	{name: "reply-gcm", kind: kindReply, suite: suiteAESGCM, body: []byte("world gcm")},
	{name: "refusal-not-authorized", kind: kindRefusal, suite: suiteBox, body: []byte{refuseNotAuthorized}},
	{name: "refusal-stale", kind: kindRefusal, suite: suiteBox, body: []byte{refuseStale}},
	{name: "refusal-replayed-gcm", kind: kindRefusal, suite: suiteAESGCM, body: []byte{refuseReplayed}},
	{name: "refusal-unknown-reason", kind: kindRefusal, suite: suiteBox, body: []byte{0x7f}},
	{name: "hint-cannot-open", kind: kindHint, suite: suiteBox, body: []byte{hintCannotOpen}},
	{name: "hint-unsupported", kind: kindHint, suite: suiteAESGCM, body: []byte{hintUnsupported}},
}

var (
	fuzzReplyOnce sync.Once
	fuzzReplyKey  *sharedKey
)

func fuzzReplies() ([]fuzzReplyCase, *sharedKey) {
	fuzzReplyOnce.Do(func() {
		eph := seeded("fuzz reply eph")
		k, err := precompute(seeded("server").public, eph.bytes())
		if err != nil {
			panic(err)
		}
		fuzzReplyKey = k
		rnd := fuzzRand(99)
		for i := range fuzzReplyCases {
			c := &fuzzReplyCases[i]
			if c.kind == kindHint {
				c.sealed = appendHint(nil, c.body[0])
				continue
			}
			if c.sealed, err = appendReply(nil, c.kind, c.suite, k, fuzzReplyCounter, rnd, c.body); err != nil {
				panic(err)
			}
		}
	})
	return fuzzReplyCases, fuzzReplyKey
}

func replyMutations(b []byte) map[string][]byte {
	set := func(i int, v byte) []byte { c := bytes.Clone(b); c[i] = v; return c }
	m := map[string][]byte{"empty": {}, "one-byte": b[:1], "version-2": set(0, 2), "kind-unknown": set(1, 0x14),
		"kind-request": set(1, kindRequest), "extended": append(bytes.Clone(b), 0)}
	if b[1] == kindHint {
		m["hint-reason-unknown"] = set(2, 0x7f)
		return m
	}
	fl := func(i int) []byte { c := bytes.Clone(b); c[i] ^= 0x01; return c }
	m["two-bytes"] = b[:2]
	m["truncated"] = b[:len(b)-1]
	m["header-only"] = b[:3+replyRandLen(b[2])]
	m["random-flip"] = fl(4)
	m["body-flip"] = fl(len(b) - 1)
	m["suite-swap"] = set(2, b[2]^3) // box <-> gcm
	if b[1] == kindReply {
		m["as-refusal"] = set(1, kindRefusal)
	} else {
		m["as-reply"] = set(1, kindReply)
	}
	m["as-hint"] = append(set(1, kindHint)[:2], 1)
	return m
}

// fuzzSeeds returns the seed inputs of each target, by target and seed
// name. f.Add and the committed files both come from here.
func fuzzSeeds() map[string]map[string][]any {
	reqs := fuzzRequests()
	replies, _ := fuzzReplies()
	out := map[string]map[string][]any{
		"FuzzParseRequest": {}, "FuzzServerOpenRequest": {}, "FuzzClientOpenReply": {},
		"FuzzCheckVouch": {}, "FuzzParsePublicKey": {}, "FuzzParseSecretKey": {}, "FuzzZ85": {},
	}
	for i, c := range reqs {
		out["FuzzServerOpenRequest"][c.name] = []any{uint8(i), bytes.Clone(c.sealed)}
		out["FuzzParseRequest"][c.name] = []any{bytes.Clone(c.sealed)}
		if c.expect != "deliver" && c.expect != "reply" && !strings.HasPrefix(c.name, "vouched") {
			continue // mutate the delivering cases only, to keep the corpus small
		}
		for mn, mb := range requestMutations(c.sealed) {
			out["FuzzServerOpenRequest"][c.name+"-"+mn] = []any{uint8(i), mb}
			out["FuzzParseRequest"][c.name+"-"+mn] = []any{mb}
		}
	}
	// A reply reflected back to the server as a request.
	out["FuzzServerOpenRequest"]["reflected-reply"] = []any{uint8(0), bytes.Clone(replies[0].sealed)}
	for i, c := range replies {
		out["FuzzClientOpenReply"][c.name] = []any{uint8(i), uint64(fuzzReplyCounter), bytes.Clone(c.sealed)}
		out["FuzzClientOpenReply"][c.name+"-other-request"] = []any{uint8(i), uint64(fuzzReplyCounter + 1), bytes.Clone(c.sealed)}
		for mn, mb := range replyMutations(c.sealed) {
			out["FuzzClientOpenReply"][c.name+"-"+mn] = []any{uint8(i), uint64(fuzzReplyCounter), mb}
		}
	}
	// A request reflected back to the client as a reply.
	out["FuzzClientOpenReply"]["reflected-request"] = []any{uint8(0), uint64(fuzzReplyCounter), bytes.Clone(reqs[0].sealed)}

	eph, vouch := fuzzVouch()
	out["FuzzCheckVouch"]["valid"] = []any{eph[:], vouch[:]}
	other := seeded("other eph").public
	out["FuzzCheckVouch"]["other-eph"] = []any{other[:], vouch[:]}
	out["FuzzCheckVouch"]["flipped"] = []any{eph[:], append(bytes.Clone(vouch[:len(vouch)-1]), vouch[len(vouch)-1]^1)}
	out["FuzzCheckVouch"]["short"] = []any{eph[:], vouch[:20]}

	pub, sec := seeded("server").public, seeded("server")
	keyTexts := map[string]string{
		"z85":            pub.String(),
		"zmq-rfc32":      "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7", // ZeroMQ RFC 32 example public key
		"hex":            hex.EncodeToString(pub[:]),
		"hex-upper":      strings.ToUpper(hex.EncodeToString(pub[:])),
		"base64":         "ABEiM0RVZneImaq7zN3u/wARIjNEVWZ3iJmqu8zd7v8=",
		"base64-raw-url": "ABEiM0RVZneImaq7zN3u_wARIjNEVWZ3iJmqu8zd7v8",
		"spaces":         "  \t" + pub.String() + "\n",
		"empty":          "",
		"short":          "abc",
		"z85-bad-char":   strings.Repeat("~", 40),
		"z85-overflow":   strings.Repeat("#", 40),
		"hex-bad":        strings.Repeat("zz", 32),
		"zero-hex":       strings.Repeat("00", 32),
		"weak-z85":       PublicKey{}.String(),
		"order-8":        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
	}
	for n, s := range keyTexts {
		out["FuzzParsePublicKey"][n] = []any{s}
		out["FuzzParseSecretKey"][n] = []any{s}
	}
	out["FuzzParseSecretKey"]["secret-z85"] = []any{sec.Reveal()}
	for n, s := range map[string]string{"key": pub.String(), "zeros": "00000", "max": "%nSc0", "over": "%nSc1", "bad": "~~~~~", "partial": "abcd", "empty": ""} {
		out["FuzzZ85"][n] = []any{[]byte(s)}
	}
	return out
}

func addSeeds(f *testing.F) {
	for _, args := range fuzzSeeds()[f.Name()] {
		f.Add(args...)
	}
}

// FuzzParseRequest checks parseRequest against a reference reading of
// SPEC.md §6 step 1, and that the fields it returns encode back to the
// same bytes (a request has exactly one encoding of its fields).
func FuzzParseRequest(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseRequest(b)
		if want := specParse(b); !errors.Is(err, want) && !(err == nil && want == nil) {
			t.Fatalf("parseRequest(%x) = %v, SPEC §6 says %v", b, err, want)
		}
		if err != nil {
			return
		}
		enc := []byte{version1, r.kind, r.suite}
		enc = append(enc, r.eph[:]...)
		enc = binary.BigEndian.AppendUint64(enc, r.counter)
		enc = binary.BigEndian.AppendUint64(enc, r.timestamp)
		if !bytes.Equal(enc, r.header) {
			t.Fatalf("header fields do not encode back")
		}
		enc = append(append(enc, r.identity...), r.sealed...)
		if !bytes.Equal(enc, b) {
			t.Fatalf("parse then encode differs:\n got %x\nwant %x", enc, b)
		}
		if isVouched(r.kind) != (len(r.identity) == identityLen) || len(r.sealed) < tagSize {
			t.Fatalf("bad layout: kind %x identity %d sealed %d", r.kind, len(r.identity), len(r.sealed))
		}
	})
}

// specParse is SPEC.md §6 step 1, written independently of parseRequest.
func specParse(b []byte) error {
	switch {
	case len(b) == 0:
		return ErrMalformed
	case b[0] != 0x01:
		return ErrUnknownVersion
	case len(b) < 3:
		return ErrMalformed
	case b[1] < 0x01 || b[1] > 0x04:
		return ErrUnknownKind
	case b[2] != 0x01 && b[2] != 0x02:
		return ErrUnsupported
	}
	min := 67
	if b[1] == 0x02 || b[1] == 0x04 {
		min = 163
	}
	if len(b) < min || (b[1] >= 0x03 && len(b) != min) {
		return ErrMalformed
	}
	return nil
}

// FuzzServerOpenRequest runs the server's full check sequence on fuzzed
// bytes derived from a request sealed by a real client (case sel). Only
// the exact sealed bytes may be delivered, answered as a ping or refused
// (a refusal is sealed, so the box opened); anything else must end in a
// pre-authentication class. Delivering twice is never allowed.
func FuzzServerOpenRequest(f *testing.F) {
	addSeeds(f)
	cases := fuzzRequests()
	f.Fuzz(func(t *testing.T, sel uint8, wire []byte) {
		c := &cases[int(sel)%len(cases)]
		srv := fuzzServer(c.world, uint64(sel))
		in := srv.openRequest(nil, wire)
		exact := bytes.Equal(wire, c.sealed)
		// Every case's request is sealed to the same server keys, so the
		// sealed bytes of another case may open too (under this case's
		// policy and clock); nothing else may.
		sealed := exact
		for i := range cases {
			sealed = sealed || bytes.Equal(wire, cases[i].sealed)
		}
		opened := in.deliver || (in.respond != nil && in.respond[1] != kindHint)
		switch {
		case exact && serverOutcome(in) != c.expect:
			t.Fatalf("case %s: sealed request gave %s, want %s", c.name, serverOutcome(in), c.expect)
		case !sealed && opened:
			t.Fatalf("case %s: mutated request %x passed the box checks: %s", c.name, wire, serverOutcome(in))
		case !sealed && !preAuth[in.reason]:
			t.Fatalf("case %s: mutated request rejected as %s, not a pre-authentication class", c.name, in.reason)
		case exact && in.deliver && !bytes.Equal(in.body, c.body):
			t.Fatalf("case %s: delivered %x, sealed %x", c.name, in.body, c.body)
		}
		if in.respond != nil && in.respond[1] == kindHint && len(in.respond) != hintLen {
			t.Fatalf("hint of %d bytes", len(in.respond))
		}
		if in.deliver {
			if _, err := srv.sealReply(nil, in.ticket, []byte("r")); err != nil {
				t.Fatal(err)
			}
		}
		// The same bytes again: never a second delivery.
		if again := srv.openRequest(nil, wire); again.deliver {
			t.Fatalf("case %s: delivered twice", c.name)
		} else if in.deliver && again.reason != ReasonRetry {
			t.Fatalf("case %s: replay of a delivered request gave %s, want retry", c.name, again.reason)
		}
	})
}

// FuzzClientOpenReply opens fuzzed bytes derived from a reply, refusal or
// hint sealed by a real server for request counter 7 (case sel), as the
// client waiting for request counter `counter`. An authenticated kind
// opens only for the exact sealed bytes and the right counter; a hint is
// exactly 3 bytes.
func FuzzClientOpenReply(f *testing.F) {
	addSeeds(f)
	cases, k := fuzzReplies()
	f.Fuzz(func(t *testing.T, sel uint8, counter uint64, wire []byte) {
		c := &cases[int(sel)%len(cases)]
		kind, body, err := openReply(nil, c.suite, k, counter, wire)
		exact := bytes.Equal(wire, c.sealed) && counter == fuzzReplyCounter
		// All cases answer the same request (same key, counter 7), so
		// another case's sealed answer in the same suite opens too.
		var other *fuzzReplyCase
		for i := range cases {
			if counter == fuzzReplyCounter && cases[i].kind != kindHint && bytes.Equal(wire, cases[i].sealed) {
				other = &cases[i]
			}
		}
		authed := err == nil && (kind == kindReply || kind == kindRefusal)
		switch {
		case authed && other == nil:
			t.Fatalf("case %s: mutated answer %x (counter %d) opened as kind %x", c.name, wire, counter, kind)
		case exact && err != nil:
			t.Fatalf("case %s: sealed answer failed: %v", c.name, err)
		case authed && (!bytes.Equal(body, other.body) || kind != other.kind):
			t.Fatalf("case %s: opened %x, sealed %x", c.name, body, other.body)
		case err == nil && kind == kindHint && !bytes.Equal(appendHint(nil, wire[2]), wire):
			t.Fatalf("hint %x does not encode back", wire)
		case err == nil && kind != kindHint && kind != kindReply && kind != kindRefusal:
			t.Fatalf("opened unknown kind %x", kind)
		}
		// The session-level opener (typed errors) must not panic either,
		// and succeeds only for an exact reply.
		cl := &curveClient{}
		got, err := cl.openReply(nil, outstanding{sess: &clientSession{key: k}, counter: counter, suite: c.suite}, wire)
		if err == nil && !(other != nil && other.kind == kindReply && bytes.Equal(got, other.body)) {
			t.Fatalf("case %s: client accepted %x as a reply", c.name, wire)
		}
	})
}

func fuzzVouch() (PublicKey, [vouchLen]byte) {
	client := seeded("client")
	vk, err := precompute(seeded("server").public, client.bytes())
	if err != nil {
		panic(err)
	}
	eph := seeded("fuzz eph vouched-box").public
	return eph, makeVouch(vk, eph)
}

// FuzzCheckVouch: a vouch holds only for the short-term key it was made
// for, and only as sealed.
func FuzzCheckVouch(f *testing.F) {
	addSeeds(f)
	eph, vouch := fuzzVouch()
	client, server := seeded("client"), seeded("server")
	vk, _ := precompute(client.public, server.bytes()) // the server's side
	f.Fuzz(func(t *testing.T, e, v []byte) {
		if len(e) != KeySize {
			return
		}
		ok := checkVouch(vk, PublicKey(e), v)
		exact := bytes.Equal(e, eph[:]) && bytes.Equal(v, vouch[:])
		if ok != exact {
			t.Fatalf("checkVouch(%x, %x) = %v, exact = %v", e, v, ok, exact)
		}
	})
}

// FuzzParsePublicKey: no panic; a parsed key is not weak and prints back
// to text that parses to it; Z85 and hex have one encoding per key, so
// parse then encode gives the input back.
func FuzzParsePublicKey(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParsePublicKey(s)
		if err != nil {
			if !errors.Is(err, ErrBadKey) && !errors.Is(err, ErrWeakKey) {
				t.Fatalf("error %v is neither ErrBadKey nor ErrWeakKey", err)
			}
			return
		}
		if checkPublicKey(k) != nil {
			t.Fatalf("weak key %x accepted", k[:])
		}
		back, err := ParsePublicKey(k.String())
		if err != nil || back != k {
			t.Fatalf("String() %q does not parse back: %v", k.String(), err)
		}
		trimmed := strings.TrimSpace(s)
		switch len(trimmed) {
		case 40:
			if k.String() != trimmed {
				t.Fatalf("Z85 %q parses then encodes as %q", trimmed, k.String())
			}
		case 64:
			if hex.EncodeToString(k[:]) != strings.ToLower(trimmed) {
				t.Fatalf("hex %q parses then encodes differently", trimmed)
			}
		}
	})
}

// FuzzParseSecretKey: no panic; Reveal parses back to the same key; an
// error message depends only on the input's length, so it can never
// contain (part of) a secret.
func FuzzParseSecretKey(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseSecretKey(s)
		trimmed := strings.TrimSpace(s)
		if err != nil {
			if !errors.Is(err, ErrBadKey) {
				t.Fatalf("error %v is not ErrBadKey", err)
			}
			_, ref := ParseSecretKey(strings.Repeat("~", len(trimmed))) // never a key
			if ref == nil || ref.Error() != err.Error() {
				t.Fatalf("error message depends on the input: %q vs %v", err.Error(), ref)
			}
			return
		}
		back, err := ParseSecretKey(k.Reveal())
		if err != nil || !back.Equal(k) || back.Public() != k.Public() {
			t.Fatalf("Reveal does not parse back: %v", err)
		}
		if len(trimmed) == 40 && k.Reveal() != trimmed {
			t.Fatalf("Z85 secret does not encode back")
		}
		if strings.Contains(fmt.Sprint(k), k.Reveal()) || strings.Contains(fmt.Sprintf("%#v", k), k.Reveal()) {
			t.Fatal("secret printed")
		}
	})
}

// FuzzZ85: encode then decode is the identity on whole 4-byte groups, and
// decode then encode is the identity on every text that decodes (ZeroMQ
// RFC 32 has one encoding per value).
func FuzzZ85(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		whole := b[:len(b)/4*4]
		enc := z85Encode(whole)
		if len(enc) != len(whole)*5/4 {
			t.Fatalf("encoded %d bytes to %d characters", len(whole), len(enc))
		}
		dec, err := z85Decode(enc)
		if err != nil || !bytes.Equal(dec, whole) {
			t.Fatalf("z85 round trip of %x: %x, %v", whole, dec, err)
		}
		if dec, err := z85Decode(string(b)); err == nil {
			if got := z85Encode(dec); got != string(b) {
				t.Fatalf("z85 %q decodes then encodes as %q", b, got)
			}
		}
	})
}

// fuzzTargets lists the Fuzz functions declared in this package's test
// files.
func fuzzTargets(t *testing.T, dir string) []string {
	files, err := filepath.Glob(filepath.Join(dir, "*_test.go"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^func (Fuzz\w+)\(\w+ \*testing\.F\)`)
	var names []string
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllSubmatch(src, -1) {
			names = append(names, string(m[1]))
		}
	}
	return names
}

// writeCorpusFile writes one seed in Go's corpus file format.
func writeCorpusFile(path string, args []any) error {
	var b strings.Builder
	b.WriteString("go test fuzz v1\n")
	for _, a := range args {
		switch v := a.(type) {
		case []byte:
			fmt.Fprintf(&b, "[]byte(%q)\n", v)
		case string:
			fmt.Fprintf(&b, "string(%q)\n", v)
		case PublicKey:
			fmt.Fprintf(&b, "[]byte(%q)\n", v[:])
		default:
			fmt.Fprintf(&b, "%T(%v)\n", v, v)
		}
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// TestFuzzCorpora fails when a fuzz target of this package has no
// committed seed files, or misses a seed of fuzzSeeds.
func TestFuzzCorpora(t *testing.T) {
	seeds := fuzzSeeds()
	if *updateFuzz {
		for target, byName := range seeds {
			dir := filepath.Join("testdata", "fuzz", target)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for name, args := range byName {
				if err := writeCorpusFile(filepath.Join(dir, "seed-"+name), args); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	targets := fuzzTargets(t, ".")
	if len(targets) == 0 {
		t.Fatal("no fuzz targets found")
	}
	for _, target := range targets {
		files, _ := filepath.Glob(filepath.Join("testdata", "fuzz", target, "*"))
		if len(files) == 0 {
			t.Errorf("%s: corpus testdata/fuzz/%s is empty", target, target)
		}
		for name := range seeds[target] {
			if _, err := os.Stat(filepath.Join("testdata", "fuzz", target, "seed-"+name)); err != nil {
				t.Errorf("%s: seed %s not committed (run go test -run TestFuzzCorpora -update-fuzz)", target, name)
			}
		}
	}
}
