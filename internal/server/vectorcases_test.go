package server

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/secsock/secsock/internal/wire"
)

// One-step vector files.
func singleVectors() []vecFile {
	one := func(name, comment string, f vecFile, st vecStep) vecFile {
		f.name, f.comment, f.steps = name, comment, []vecStep{st}
		return f
	}
	anon, vouched := vecFile{}, vecFile{client: "client"}
	policy := vecFile{client: "client", policy: true, authorized: []string{"client", "someone else"}}
	noList := vecFile{client: "client", policy: true, authorized: []string{"someone else"}}
	ok := func(body, reply string) vecStep {
		return vecStep{body: []byte(body), reply: []byte(reply), expectServer: "deliver", expectClient: "ok"}
	}
	with := func(st vecStep, f func(*vecStep)) vecStep { f(&st); return st }
	stale := vecStep{body: []byte("x"), expectServer: "refuse:stale", expectClient: "error:stale"}
	cannotOpen := func(m func([]byte) []byte) vecStep {
		return vecStep{body: []byte("hello"), mutate: m, expectServer: "hint:cannot-open", expectClient: "error:server-key-mismatch"}
	}
	return []vecFile{
		one("anon-box", "anonymous request and reply, default suite", anon, ok("hello", "world")),
		one("anon-box-empty", "empty bodies are allowed", anon, ok("", "")),
		one("anon-aesgcm", "AES-256-GCM suite", anon, with(ok("hello gcm", "world gcm"), func(s *vecStep) { s.suite = wire.SuiteAESGCM })),
		one("vouched-box-authorized", "client with a long-term key in the authorized set", policy, ok("GET /balance", "42")),
		one("vouched-aesgcm", "AES-256-GCM suite with a vouched client", vouched, with(ok("hello", "world"), func(s *vecStep) { s.suite = wire.SuiteAESGCM })),
		one("vouched-no-policy", "a vouched client of a server without a client policy", vouched, ok("hi", "there")),
		one("ping-vouched", "Authenticate: the server answers an empty reply itself", policy, vecStep{ping: true, expectServer: "reply", expectClient: "ok"}),
		one("ping-aesgcm", "a ping in the AES-256-GCM suite", vouched, vecStep{ping: true, suite: wire.SuiteAESGCM, expectServer: "reply", expectClient: "ok"}),
		one("ping-anon-refused", "anonymous ping to a server with a policy", vecFile{policy: true, authorized: []string{"client"}}, vecStep{ping: true, expectServer: "refuse:not-authorized", expectClient: "error:not-authorized"}),
		one("ping-with-body", "a ping must have an empty body", anon, vecStep{ping: true, body: []byte("x"), expectServer: "drop:malformed"}),
		one("vouched-not-authorized", "client key not in the authorized set: authenticated refusal after its vouch verified", noList, vecStep{body: []byte("x"), expectServer: "refuse:not-authorized", expectClient: "error:not-authorized"}),
		one("anon-not-allowed", "anonymous client, policy without allow_anonymous", vecFile{policy: true, authorized: []string{"someone else"}}, vecStep{body: []byte("x"), expectServer: "refuse:not-authorized", expectClient: "error:not-authorized"}),
		one("anon-allowed-with-policy", "anonymous client, policy with allow_anonymous", vecFile{policy: true, authorized: []string{"someone else"}, allowAnon: true}, ok("x", "y")),
		one("policy-nobody", "a policy that authorizes nobody", vecFile{client: "client", policy: true}, vecStep{body: []byte("x"), expectServer: "refuse:not-authorized", expectClient: "error:not-authorized"}),
		one("stale-old", "timestamp older than the window", anon, with(stale, func(s *vecStep) { s.nowOffset = 120001 })),
		one("stale-future", "timestamp more than max_skew ahead", anon, with(stale, func(s *vecStep) { s.nowOffset = -10001 })),
		one("stale-aesgcm", "a refusal to an AES-256-GCM request (refusals have no suite)", anon, with(stale, func(s *vecStep) { s.nowOffset = 120001; s.suite = wire.SuiteAESGCM })),
		one("fresh-edge", "timestamp exactly at the window edge is accepted", anon, with(ok("x", "y"), func(s *vecStep) { s.nowOffset = 120000 })),
		one("skew-edge", "timestamp exactly max_skew ahead is accepted", anon, with(ok("x", "y"), func(s *vecStep) { s.nowOffset = -10000 })),
		one("vouch-expired", "the request's T is after the vouch's expiry E", vouched, with(stale, func(s *vecStep) { s.expiry = -3600001 })),
		one("vouch-too-long", "the vouch's expiry is more than 24 hours after T", vouched, with(stale, func(s *vecStep) { s.expiry = 86400000 - 3600000 + 1 })),
		one("vouch-24-hours", "an expiry exactly 24 hours after T is accepted", vouched, with(ok("x", "y"), func(s *vecStep) { s.expiry = 86400000 - 3600000 })),
		one("wrong-server-key", "sealed to another server key: unauthenticated hint", vecFile{sealToOther: "other"}, vecStep{body: []byte("x"), expectServer: "hint:cannot-open", expectClient: "error:server-key-mismatch"}),
		one("previous-server-key", "sealed to the server's previous key during a rotation", vecFile{servers: []string{"server-next", "server"}, sealTo: 1, client: "client"}, ok("x", "y")),
		one("body-bit-flip", "last byte of the body box flipped", anon, cannotOpen(flip(-1))),
		one("counter-bit-flip", "counter changed: the nonce no longer matches", anon, cannotOpen(flip(42))),
		one("timestamp-bit-flip", "timestamp changed: the nonce no longer matches", anon, cannotOpen(flip(51))),
		one("gcm-timestamp-bit-flip", "AES-GCM: the header is additional data", anon, with(cannotOpen(flip(51)), func(s *vecStep) { s.suite = wire.SuiteAESGCM })),
		one("gcm-kind-flip", "AES-GCM: kind relabelled from request to ping-sized", anon, with(cannotOpen(setByte(1, wire.KindPing)), func(s *vecStep) { s.suite = wire.SuiteAESGCM; s.body = nil })),
		one("kind-downgrade", "vouched request relabelled anonymous", vouched, cannotOpen(setByte(1, wire.KindRequest))),
		one("identity-bit-flip", "identity box corrupted", vouched, cannotOpen(flip(60))),
		one("truncated", "shorter than any request", anon, vecStep{body: []byte("hello"), mutate: func(b []byte) []byte { return b[:69] }, expectServer: "drop:malformed"}),
		one("truncated-vouched", "vouched kind without room for the identity box", vouched, vecStep{mutate: func(b []byte) []byte { return b[:157] }, expectServer: "drop:malformed"}),
		one("short-header", "53 bytes: shorter than the header", anon, vecStep{mutate: func(b []byte) []byte { return b[:53] }, expectServer: "drop:malformed"}),
		one("version-1-request", "a version 1 request gets the UNSUPPORTED_VERSION hint", anon, vecStep{body: []byte("x"), mutate: setByte(0, 0x01), expectServer: "hint:unsupported-version", expectClient: "error:unsupported-version"}),
		one("unknown-version", "version 3 is not known", anon, vecStep{body: []byte("x"), mutate: setByte(0, 0x03), expectServer: "hint:unsupported-version", expectClient: "error:unsupported-version"}),
		one("plain-body", "a plain SP body is not secsock: dropped unanswered (a permissive server delivers it as plain)", anon, vecStep{mutate: func([]byte) []byte { return []byte("GET /balance") }, expectServer: "drop:not-secsock"}),
		one("other-version-short", "version 3, but shorter than any request: not secsock", anon, vecStep{body: []byte("x"), mutate: func(b []byte) []byte { b[0] = 0x03; return b[:69] }, expectServer: "drop:not-secsock"}),
		one("unknown-suite", "a client asking for suite 0x7f gets an authenticated refusal", anon, vecStep{body: []byte("x"), clientSent: setByte(2, 0x7f), expectServer: "refuse:unsupported-feature", expectClient: "error:unsupported-feature"}),
		one("unknown-suite-in-transit", "suite changed on the way: the refusal is for another header and does not verify for the client", anon, vecStep{body: []byte("x"), mutate: setByte(2, 0x7f), expectServer: "refuse:unsupported-feature", expectClient: "error:auth-failed"}),
		one("flags-set", "a request with an extension element type no one implements", anon, vecStep{body: []byte("x"), clientSent: withExtension, expectServer: "refuse:unsupported-feature", expectClient: "error:unsupported-feature"}),
		one("extension-without-flag", "X is not 0 but flags is 0", anon, vecStep{body: []byte("x"), mutate: func(b []byte) []byte { b = bytes.Clone(b); b[53] = 1; return b }, expectServer: "drop:malformed"}),
		one("reflected-reply-kind", "a request relabelled as a reply is not a request", anon, vecStep{body: []byte("x"), mutate: setByte(1, wire.KindReply), expectServer: "drop:unknown-kind"}),
		one("weak-eph", "short-term key of small order (zero)", anon, vecStep{body: []byte("x"), mutate: setEph([32]byte{}), expectServer: "drop:weak-key"}),
		one("counter-zero", "counters start at 1", anon, vecStep{body: []byte("x"), counter: 1, mutate: setCounter(0), expectServer: "drop:malformed"}),
		one("counter-2-32", "counters stay below 2^32", anon, vecStep{body: []byte("x"), mutate: setCounter(1 << 32), expectServer: "drop:malformed"}),
		one("counter-max", "counter 2^32 - 1 is accepted", anon, with(ok("x", "y"), func(s *vecStep) { s.counter = 1<<32 - 1 })),
		one("bad-vouch", "identity box names the client key, but the vouch is from another key: dropped as a forgery, never refused", vouched,
			vecStep{body: []byte("x"), identity: func(id *wire.Identity) { id.Vouch = vouchBy("impostor", id.Client, "eph bad-vouch", id.Expiry) }, expectServer: "drop:bad-vouch"}),
		one("vouch-for-other-eph", "a valid vouch, but for another short-term key", vouched,
			vecStep{body: []byte("x"), identity: func(id *wire.Identity) { id.Vouch = vouchBy("client", id.Client, "other eph", id.Expiry) }, expectServer: "drop:bad-vouch"}),
		one("vouch-expiry-changed", "the expiry in the identity box is not the one vouched for", vouched,
			vecStep{body: []byte("x"), identity: func(id *wire.Identity) { id.Expiry++ }, expectServer: "drop:bad-vouch"}),
		one("bad-vouch-with-policy", "with a policy too, a bad vouch for a listed key is dropped, not refused", policy,
			vecStep{body: []byte("x"), identity: func(id *wire.Identity) {
				id.Vouch = vouchBy("impostor", id.Client, "eph bad-vouch-with-policy", id.Expiry)
			}, expectServer: "drop:bad-vouch"}),
		one("bad-vouch-unlisted", "a bad vouch for an unlisted key is dropped too: the answer does not tell who is authorized", noList,
			vecStep{body: []byte("x"), identity: func(id *wire.Identity) {
				id.Vouch = vouchBy("impostor", id.Client, "eph bad-vouch-unlisted", id.Expiry)
			}, expectServer: "drop:bad-vouch"}),
		one("weak-client-key", "identity box carries a long-term key of small order", vouched,
			vecStep{body: []byte("x"), identity: func(id *wire.Identity) { id.Client = [32]byte{} }, expectServer: "drop:weak-key"}),
		one("reply-bit-flip", "reply corrupted in transit", anon, with(ok("x", "y"), func(s *vecStep) { s.mutateReply = flip(-1); s.expectClient = "error:auth-failed" })),
		one("reply-random-flip", "reply R changed", anon, with(ok("x", "y"), func(s *vecStep) { s.mutateReply = flip(4); s.expectClient = "error:auth-failed" })),
		one("gcm-reply-random-tail-flip", "AES-GCM: the last 4 bytes of R are additional data", anon, with(ok("x", "y"), func(s *vecStep) {
			s.suite = wire.SuiteAESGCM
			s.mutateReply = flip(17)
			s.expectClient = "error:auth-failed"
		})),
		one("reply-to-other-request", "reply to counter 1 given to a client waiting for counter 2", anon, with(ok("x", "y"), func(s *vecStep) { s.clientCounter = 2; s.expectClient = "error:auth-failed" })),
		one("reply-as-refusal", "reply relabelled as a refusal", anon, with(ok("x", "y"), func(s *vecStep) { s.mutateReply = setByte(1, wire.KindRefusal); s.expectClient = "error:malformed" })),
		one("reply-unknown-kind", "kind 0x16 is not known", anon, with(ok("x", "y"), func(s *vecStep) { s.mutateReply = setByte(1, 0x16); s.expectClient = "error:unknown-kind" })),
		one("reply-truncated", "reply shorter than its box", anon, with(ok("x", "y"), func(s *vecStep) {
			s.mutateReply = func(b []byte) []byte { return b[:34] }
			s.expectClient = "error:malformed"
		})),
		one("reply-suite-mismatch", "reply in another suite than the request", anon, with(ok("x", "y"), func(s *vecStep) { s.mutateReply = setByte(2, wire.SuiteAESGCM); s.expectClient = "error:malformed" })),
		one("refusal-bit-flip", "refusal tag corrupted", anon, with(stale, func(s *vecStep) { s.nowOffset = 120001; s.mutateReply = flip(-1); s.expectClient = "error:auth-failed" })),
		one("refusal-reason-changed", "a STALE refusal relabelled NOT_AUTHORIZED", anon, with(stale, func(s *vecStep) {
			s.nowOffset = 120001
			s.mutateReply = setByte(2, wire.RefuseNotAuthorized)
			s.expectClient = "error:auth-failed"
		})),
		one("refusal-unknown-reason", "a verified refusal with a reason the client does not know", anon, with(stale, func(s *vecStep) {
			s.nowOffset = 120001
			s.answer = func(c *client, h []byte) []byte { return wire.AppendRefusal(nil, &c.prk0, h, 0xf0) } // outside the reasons and the reserved 0x07-0x0f
			s.expectClient = "error:refused"
		})),
		one("refusal-store-unavailable", "a worker whose shared replay store did not answer refuses STORE_UNAVAILABLE (§17.3) instead of delivering", anon, with(ok("x", "y"), func(s *vecStep) {
			s.answer = func(c *client, h []byte) []byte {
				return wire.AppendRefusal(nil, &c.prk0, h, wire.RefuseStoreUnavailable)
			}
			s.expectClient = "error:store-unavailable"
		})),
		one("answer-v1-hint", "a version 1 server's hint", anon, with(stale, func(s *vecStep) {
			s.nowOffset = 120001
			s.answer = func(*client, []byte) []byte { return []byte{0x01, 0x13, 0x02} }
			s.expectClient = "error:unsupported-version"
		})),
		one("answer-not-secsock", "a plain server echoing the request", anon, with(ok("x", "y"), func(s *vecStep) {
			s.answer = func(*client, []byte) []byte { return []byte("echo") }
			s.expectClient = "error:not-secsock"
		})),
		one("answer-reflected-request", "a plain server echoing the request header back", anon, with(ok("x", "y"), func(s *vecStep) {
			s.answer = func(_ *client, h []byte) []byte { return append([]byte(nil), h...) }
			s.expectClient = "error:not-secsock"
		})),
		one("refusal-too-large", "a verified TOO_LARGE refusal", anon, with(stale, func(s *vecStep) {
			s.nowOffset = 120001
			s.answer = func(c *client, h []byte) []byte { return wire.AppendRefusal(nil, &c.prk0, h, wire.RefuseTooLarge) }
			s.expectClient = "error:too-large"
		})),
		one("answer-busy-hint", "the BUSY hint", anon, with(ok("x", "y"), func(s *vecStep) {
			s.answer = func(*client, []byte) []byte { return []byte{0x02, 0x13, 0x03} }
			s.expectClient = "error:busy"
		})),
	}
}

// Multi-step vector files: state across messages.
func multiVectors() []vecFile {
	again := func(expect, client string) vecStep {
		return vecStep{again: true, expectServer: expect, expectClient: client}
	}
	return []vecFile{
		{name: "retry-resend-limit", comment: "a retry gets the kept reply 4 times, then REPLAYED, always the same bytes", steps: []vecStep{
			{body: []byte("once"), reply: []byte("done"), expectServer: "deliver", expectClient: "ok"},
			again("resend", "ok"), again("resend", "ok"), again("resend", "ok"), again("resend", "ok"),
			again("refuse:replayed", "error:replayed"), again("refuse:replayed", "error:replayed"),
		}},
		{name: "replay-window-edges", comment: "the window is the highest accepted counter and the 8127 below it", replySlots: 1, steps: []vecStep{
			{counter: 8200, body: []byte("a"), reply: []byte("1"), expectServer: "deliver", expectClient: "ok"},
			{counter: 73, body: []byte("b"), reply: []byte("2"), expectServer: "deliver", expectClient: "ok"},
			{comment: "8128 below the highest: in doubt", counter: 72, body: []byte("c"), expectServer: "refuse:in-doubt", expectClient: "error:in-doubt"},
			{comment: "accepted before and no longer in the reply cache", counter: 8200, body: []byte("a"), expectServer: "refuse:replayed", expectClient: "error:replayed"},
		}},
		{name: "tombstone-after-eviction", comment: "peer_cache 1: an evicted C' leaves a tombstone, and its old requests are refused", peerCache: 1, replySlots: 1, steps: []vecStep{
			{eph: "eph A", body: []byte("a1"), reply: []byte("r"), expectServer: "deliver", expectClient: "ok"},
			{eph: "eph B", body: []byte("b1"), reply: []byte("r"), expectServer: "deliver", expectClient: "ok"},
			{comment: "A was evicted and its reply dropped: its replay is in doubt, not delivered", eph: "eph A", body: []byte("a1"), expectServer: "refuse:in-doubt", expectClient: "error:in-doubt"},
			{comment: "a newer request of A is served again", eph: "eph A", counter: 2, dt: 1, body: []byte("a2"), reply: []byte("r"), expectServer: "deliver", expectClient: "ok"},
			{comment: "re-admitted, A keeps its floor", eph: "eph A", body: []byte("a1"), expectServer: "refuse:in-doubt", expectClient: "error:in-doubt"},
		}},
		{name: "tombstone-fresh-same-ms", comment: "after an eviction, the client's next counter in the same millisecond is served: the tombstone refuses only what is at or below both its T and its N", peerCache: 1, replySlots: 1, steps: []vecStep{
			{eph: "eph A", body: []byte("a1"), reply: []byte("r"), expectServer: "deliver", expectClient: "ok"},
			{eph: "eph B", body: []byte("b1"), reply: []byte("r"), expectServer: "deliver", expectClient: "ok"},
			{eph: "eph A", counter: 2, body: []byte("a2"), reply: []byte("r"), expectServer: "deliver", expectClient: "ok"},
			{comment: "B, evicted in turn, replayed: at or below both of its tombstone's T and N", eph: "eph B", body: []byte("b1"), expectServer: "refuse:in-doubt", expectClient: "error:in-doubt"},
		}},
		{name: "one-client-per-eph", comment: "a short-term key that vouched for one client cannot speak for another", client: "client", steps: []vecStep{
			{body: []byte("x"), reply: []byte("y"), expectServer: "deliver", expectClient: "ok"},
			{counter: 2, body: []byte("x"), identity: func(id *wire.Identity) {
				id.Client = public("other client")
				id.Vouch = vouchBy("other client", id.Client, "eph one-client-per-eph", id.Expiry)
			}, expectServer: "drop:forged"},
		}},
		{name: "budget-busy", comment: "a budget of 1 scalar multiplication per second: the second new C' gets BUSY, the cached one is still served", budget: 1, steps: []vecStep{
			{eph: "eph A", body: []byte("a"), reply: []byte("r"), expectServer: "deliver", expectClient: "ok"},
			{eph: "eph B", body: []byte("b"), expectServer: "hint:busy", expectClient: "error:busy"},
			{eph: "eph A", counter: 2, body: []byte("a"), reply: []byte("r"), expectServer: "deliver", expectClient: "ok"},
		}},
		ephEquivalents(),
		clientKeyEquivalents("client-key-equivalents", "every other encoding of C, each with a vouch its owner made for it: dropped", vecFile{client: "client"}),
		clientKeyEquivalents("client-key-equivalents-listed", "the same with C in the authorized set: no other encoding gets in", vecFile{client: "client", policy: true, authorized: []string{"client"}}),
	}
}

// ephEquivalents replays one captured request under each of the 15 other
// encodings of its C'.
func ephEquivalents() vecFile {
	v := vecFile{name: "eph-equivalents", comment: "a captured request replayed under the 15 other encodings of its C': none opens",
		steps: []vecStep{{body: []byte("pay 10"), reply: []byte("paid"), expectServer: "deliver", expectClient: "ok"}}}
	eqs := equivalents(&testing.T{}, public("eph eph-equivalents"))
	for _, e := range eqs[1:] {
		st := vecStep{again: true, mutate: setEph(e), expectServer: "hint:cannot-open", expectClient: "error:server-key-mismatch"}
		if !wire.Canonical(&e) {
			st.expectServer, st.expectClient = "drop:malformed", ""
		}
		v.steps = append(v.steps, st)
	}
	return v
}

// clientKeyEquivalents presents each other encoding of the client's key,
// vouched by the owner of its secret, from a fresh C' each.
func clientKeyEquivalents(name, comment string, f vecFile) vecFile {
	f.name, f.comment = name, comment
	eqs := equivalents(&testing.T{}, public("client"))
	f.steps = append(f.steps, vecStep{eph: "eph " + name + " 0", body: []byte("x"), reply: []byte("y"), expectServer: "deliver", expectClient: "ok"})
	for i, e := range eqs[1:] {
		eph := "eph " + name + " " + string(rune('a'+i))
		f.steps = append(f.steps, vecStep{eph: eph, body: []byte("x"), identity: func(id *wire.Identity) {
			id.Client = e
			id.Vouch = vouchBy("client", e, eph, id.Expiry)
		}, expectServer: "drop:weak-key"})
	}
	return f
}

// Epoch vectors (SPEC.md §14): a chain whose origin is a minute before
// vectorTime, epochs of 5 minutes, the server holding seed_0.
func epochVectors() []vecFile {
	ep := vecFile{epochSeed: "epoch chain"}
	const L = 300000
	ok := func(f func(*vecStep)) vecStep {
		st := vecStep{body: []byte("fs"), reply: []byte("ok"), expectServer: "deliver", expectClient: "ok"}
		f(&st)
		return st
	}
	unknown := func(f func(*vecStep)) vecStep {
		st := vecStep{body: []byte("fs"), expectServer: "refuse:unknown-epoch", expectClient: "error:unknown-epoch"}
		f(&st)
		return st
	}
	one := func(name, comment string, f vecFile, st vecStep) vecFile {
		f.name, f.comment, f.steps = name, comment, []vecStep{st}
		return f
	}
	return []vecFile{
		one("epoch-announce", "WANT_EPOCH: the reply is a REPLY_EXT announcing epochs 0 and 1", ep, ok(func(s *vecStep) { s.want = true })),
		one("epoch-announce-ping", "a ping with WANT_EPOCH (Authenticate)", ep, vecStep{ping: true, want: true, expectServer: "reply", expectClient: "ok"}),
		one("epoch-announce-gcm", "an announcement in the AES-256-GCM suite", ep, ok(func(s *vecStep) { s.want = true; s.suite = wire.SuiteAESGCM })),
		one("epoch-request", "a request sealed with the current epoch's key", ep, ok(func(s *vecStep) { s.sealEpoch = true })),
		one("epoch-request-vouched-gcm", "a vouched AES-GCM request with an epoch key", vecFile{epochSeed: "epoch chain", client: "client"}, ok(func(s *vecStep) { s.sealEpoch = true; s.suite = wire.SuiteAESGCM })),
		one("epoch-request-want", "an epoch request that also asks for the next keys", ep, ok(func(s *vecStep) { s.sealEpoch = true; s.want = true })),
		one("epoch-previous", "in epoch 1, the key of epoch 0 is still accepted", ep, ok(func(s *vecStep) { s.sealEpoch = true; s.dt = L })),
		one("epoch-too-old", "in epoch 2, the key of epoch 0 is refused", ep, unknown(func(s *vecStep) { s.sealEpoch = true; s.dt = 2 * L })),
		one("epoch-next-early", "the next epoch's key within the clock skew before it starts", ep, ok(func(s *vecStep) { s.sealEpoch = true; s.epochKey = 1; s.dt = L - 60000 - 10000 })),
		one("epoch-next-too-early", "the next epoch's key earlier than the skew before it starts", ep, unknown(func(s *vecStep) { s.sealEpoch = true; s.epochKey = 1; s.dt = L - 60000 - 10001 })),
		one("epoch-no-seed", "a server without an epoch seed refuses an epoch request", vecFile{}, unknown(func(s *vecStep) { s.sealEpoch = true })),
		one("epoch-want-no-seed", "a server without an epoch seed answers WANT_EPOCH with a plain REPLY", vecFile{}, ok(func(s *vecStep) { s.want = true })),
		one("epoch-unknown-id", "an id no accepted epoch has", ep, unknown(func(s *vecStep) { s.sealEpoch = true; s.epochID = bytes.Repeat([]byte{0xee}, 8) })),
		one("epoch-id-in-transit", "the id changed on the way: the refusal is for another header", ep, vecStep{body: []byte("fs"), sealEpoch: true,
			mutate: func(b []byte) []byte { b = bytes.Clone(b); b[57] ^= 1; return b }, expectServer: "refuse:unknown-epoch", expectClient: "error:auth-failed"}),
		one("epoch-element-short", "an EPOCH element of 7 bytes", ep, vecStep{body: []byte("fs"), sealEpoch: true,
			mutate: func(b []byte) []byte {
				out := append(bytes.Clone(b[:56]), 7) // length 7
				out = append(out, b[57:64]...)
				binary.BigEndian.PutUint16(out[52:54], 10)
				return append(out, b[65:]...)
			}, expectServer: "drop:malformed"}),
		one("epoch-wrong-dh", "a body sealed without the epoch agreement but naming the epoch", ep, vecStep{body: []byte("fs"), sealEpoch: true,
			mutate: func(b []byte) []byte { b = bytes.Clone(b); b[len(b)-1] ^= 1; return b }, expectServer: "hint:cannot-open", expectClient: "error:server-key-mismatch"}),
		{name: "epoch-transition", comment: "one C' across epochs: epoch 0, then epoch 1 with the key of 1, then epoch 2 where 0 is refused", epochSeed: "epoch chain", steps: []vecStep{
			ok(func(s *vecStep) { s.sealEpoch = true; s.want = true }),
			ok(func(s *vecStep) { s.sealEpoch = true; s.epochKey = 1; s.counter = 2; s.dt = L }),
			unknown(func(s *vecStep) { s.sealEpoch = true; s.counter = 3; s.dt = 2 * L }),
			ok(func(s *vecStep) { s.counter = 4; s.dt = 2 * L }), // long-term only still works
		}},
		{name: "epoch-server-behind", comment: "the server's seed is at epoch 3: epochs before 2 are gone", epochSeed: "epoch chain", epochIndex: 3, steps: []vecStep{
			unknown(func(s *vecStep) { s.sealEpoch = true; s.epochKey = 0; s.dt = 4 * L }),
			ok(func(s *vecStep) { s.sealEpoch = true; s.epochKey = 3; s.counter = 2; s.dt = 4 * L }),
		}},
	}
}

// vouchBy is the vouch that the holder of the secret named signer makes,
// presenting the public key bytes as, for the short-term key named eph.
func vouchBy(signer string, as [32]byte, eph string, expiry uint64) [32]byte {
	s, srv, e := secret(signer), public("server"), public(eph)
	dh, _ := wire.X25519(&s, &srv)
	v := wire.VouchSecret(&dh, &as, &srv)
	return wire.Vouch(&v, &e, &as, &srv, expiry)
}

func setCounter(n uint64) func([]byte) []byte {
	return func(b []byte) []byte { b = bytes.Clone(b); binary.BigEndian.PutUint64(b[36:44], n); return b }
}

// withExtension sets flags bit 6 and inserts an extension element of type
// 6, which no one implements (its contents do not matter).
func withExtension(b []byte) []byte {
	ext := []byte{0x06, 0x00, 0x01, 0xee}
	out := append(bytes.Clone(b[:wire.HeaderSize]), ext...)
	out[3] = 1 << 6
	binary.BigEndian.PutUint16(out[52:54], uint16(len(ext)))
	return append(out, b[wire.HeaderSize:]...)
}
