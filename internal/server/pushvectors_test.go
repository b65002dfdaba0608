package server

import (
	"testing"

	"github.com/secsock/secsock/internal/wire"
)

// Pipeline vectors (SPEC.md §15): a pusher and a PULL server. Nothing is
// ever answered, so the steps have no reply fields; every outcome but
// deliver is a drop. The cross-pattern cases (a PUSH message to a REP, a
// request to a PULL) are here too.
func pushVectors() []vecFile {
	pipe, vouched := vecFile{pipeline: true}, vecFile{pipeline: true, client: "client"}
	policy := vecFile{pipeline: true, client: "client", policy: true, authorized: []string{"client", "someone else"}}
	one := func(name, comment string, f vecFile, st vecStep) vecFile {
		f.name, f.comment, f.steps = name, comment, []vecStep{st}
		return f
	}
	deliver := func(body string) vecStep { return vecStep{body: []byte(body), expectServer: "deliver"} }
	dropped := func(reason string, f func(*vecStep)) vecStep {
		st := vecStep{body: []byte("x"), expectServer: "drop:" + reason}
		if f != nil {
			f(&st)
		}
		return st
	}
	ep := vecFile{pipeline: true, epochSeed: "epoch chain"}
	return []vecFile{
		one("push-anon", "an anonymous PUSH message, delivered", pipe, deliver("job 1")),
		one("push-anon-empty", "an empty body", pipe, deliver("")),
		one("push-aesgcm", "the AES-256-GCM suite", pipe, vecStep{suite: wire.SuiteAESGCM, body: []byte("x"), expectServer: "deliver"}),
		one("push-vouched-authorized", "a vouched pusher in the authorized set", policy, deliver("job 2")),
		one("push-vouched-no-policy", "a vouched pusher, no client policy", vouched, deliver("job 3")),
		one("push-not-authorized", "a vouched pusher not in the authorized set: dropped, never refused", vecFile{pipeline: true, client: "client", policy: true, authorized: []string{"someone else"}}, dropped("not-authorized", nil)),
		one("push-anon-not-allowed", "an anonymous pusher, policy without allow_anonymous", vecFile{pipeline: true, policy: true, authorized: []string{"client"}}, dropped("not-authorized", nil)),
		one("push-anon-allowed", "an anonymous pusher, policy with allow_anonymous", vecFile{pipeline: true, policy: true, authorized: []string{"client"}, allowAnon: true}, deliver("ok")),
		one("push-bad-vouch", "a vouch made by another key: dropped as a forgery", vouched, dropped("bad-vouch", func(s *vecStep) {
			s.identity = func(id *wire.Identity) { id.Vouch = vouchBy("impostor", id.Client, "eph push-bad-vouch", id.Expiry) }
		})),
		one("push-vouch-expired", "T after the vouch's expiry", vouched, dropped("stale", func(s *vecStep) { s.expiry = -3600001 })),
		one("push-stale-old", "timestamp older than the window", pipe, dropped("stale", func(s *vecStep) { s.nowOffset = 120001 })),
		one("push-stale-future", "timestamp more than max_skew ahead", pipe, dropped("stale", func(s *vecStep) { s.nowOffset = -10001 })),
		one("push-body-bit-flip", "a forged body: dropped", pipe, dropped("forged", func(s *vecStep) { s.mutate = flip(-1) })),
		one("push-kind-downgrade", "a vouched PUSH relabelled anonymous", vouched, dropped("forged", func(s *vecStep) { s.mutate = setByte(1, wire.KindPush) })),
		one("push-wrong-server-key", "sealed to another server key", vecFile{pipeline: true, sealToOther: "other"}, dropped("forged", nil)),
		one("push-previous-server-key", "sealed to the previous key during a rotation", vecFile{pipeline: true, servers: []string{"server-next", "server"}, sealTo: 1}, deliver("ok")),
		one("push-weak-eph", "a short-term key of small order", pipe, dropped("weak-key", func(s *vecStep) { s.mutate = setEph([32]byte{}) })),
		one("push-unknown-version", "version 3", pipe, dropped("unknown-version", func(s *vecStep) { s.mutate = setByte(0, 0x03) })),
		one("push-unknown-suite", "suite 0x7f: dropped, no refusal to make", pipe, dropped("unsupported-feature", func(s *vecStep) { s.clientSent = setByte(2, 0x7f) })),
		one("push-unknown-element", "an extension element type no one implements", pipe, dropped("unsupported-feature", func(s *vecStep) { s.clientSent = withExtension })),
		one("push-want-epoch", "WANT_EPOCH in a PUSH message: a pusher cannot be answered", ep, dropped("unsupported-feature", func(s *vecStep) { s.want = true })),
		one("push-epoch", "a PUSH message sealed with the current epoch's key", ep, vecStep{sealEpoch: true, body: []byte("x"), expectServer: "deliver"}),
		one("push-epoch-vouched-gcm", "vouched, AES-256-GCM, epoch key", vecFile{pipeline: true, epochSeed: "epoch chain", client: "client"}, vecStep{sealEpoch: true, suite: wire.SuiteAESGCM, body: []byte("x"), expectServer: "deliver"}),
		one("push-epoch-too-old", "in epoch 2, the key of epoch 0: dropped", ep, dropped("unknown-epoch", func(s *vecStep) { s.sealEpoch = true; s.dt = 600000 })),
		one("push-epoch-no-seed", "a PULL server without an epoch seed", pipe, dropped("unknown-epoch", func(s *vecStep) { s.sealEpoch = true })),
		one("push-request-to-pull", "a REQ request sent to a PULL server: not a PUSH kind", pipe, dropped("unknown-kind", func(s *vecStep) { s.sealAs = "request" })),
		one("push-request-relabelled", "a REQ request relabelled PUSH: Kq is not Kp, it does not open", pipe, dropped("forged", func(s *vecStep) {
			s.sealAs, s.mutate = "request", setByte(1, wire.KindPush)
		})),
		one("push-to-rep", "a PUSH message sent to a REP server: not a request kind", vecFile{}, dropped("unknown-kind", func(s *vecStep) { s.sealAs = "push" })),
		one("push-relabelled-to-rep", "a PUSH message relabelled REQUEST: Kp is not Kq, it does not open", vecFile{}, vecStep{body: []byte("x"), sealAs: "push",
			mutate: setByte(1, wire.KindRequest), expectServer: "hint:cannot-open", expectClient: "error:server-key-mismatch"}),
		{name: "push-replayed", comment: "a captured PUSH message sent again: dropped, however often", pipeline: true, steps: []vecStep{
			deliver("once"), {again: true, expectServer: "drop:replayed"}, {again: true, expectServer: "drop:replayed"},
		}},
		{name: "push-replay-window", comment: "the window is the highest accepted counter and the 8127 below it", pipeline: true, steps: []vecStep{
			{counter: 8200, body: []byte("a"), expectServer: "deliver"},
			{counter: 73, body: []byte("b"), expectServer: "deliver"},
			{counter: 72, body: []byte("c"), expectServer: "drop:in-doubt"},
			{counter: 8200, body: []byte("a"), expectServer: "drop:replayed"},
		}},
		{name: "push-tombstone", comment: "peer_cache 1: an evicted pusher's old messages are in doubt, its new ones delivered", pipeline: true, peerCache: 1, steps: []vecStep{
			{eph: "eph A", body: []byte("a1"), expectServer: "deliver"},
			{eph: "eph B", body: []byte("b1"), expectServer: "deliver"},
			{eph: "eph A", body: []byte("a1"), expectServer: "drop:in-doubt"},
			{eph: "eph A", counter: 2, dt: 1, body: []byte("a2"), expectServer: "deliver"},
		}},
		{name: "push-budget-busy", comment: "a budget of 1: the second new C' is dropped as busy, the cached one still delivered", pipeline: true, budget: 1, steps: []vecStep{
			{eph: "eph A", body: []byte("a"), expectServer: "deliver"},
			{eph: "eph B", body: []byte("b"), expectServer: "drop:busy"},
			{eph: "eph A", counter: 2, body: []byte("a"), expectServer: "deliver"},
		}},
		{name: "push-one-client-per-eph", comment: "a short-term key that vouched for one pusher cannot speak for another", pipeline: true, client: "client", steps: []vecStep{
			deliver("x"),
			{counter: 2, body: []byte("x"), identity: func(id *wire.Identity) {
				id.Client = public("other client")
				id.Vouch = vouchBy("other client", id.Client, "eph push-one-client-per-eph", id.Expiry)
			}, expectServer: "drop:forged"},
		}},
		{name: "push-vouch-after-anon-busy", comment: "budget 1: an anonymous message caches C' and spends the budget; vouches from that cached C' (fresh valid keys, wrong V) are charged the valid-key check and dh2 (§6 step 3) and dropped as busy", pipeline: true, client: "client", budget: 1, steps: []vecStep{
			{anonymous: true, body: []byte("a"), expectServer: "deliver"},
			{counter: 2, body: []byte("x"), identity: forgedVouch("other client", "eph push-vouch-after-anon-busy"), expectServer: "drop:busy"},
			{counter: 3, body: []byte("x"), identity: forgedVouch("third client", "eph push-vouch-after-anon-busy"), expectServer: "drop:busy"},
		}},
		{name: "vouch-after-anon-busy", comment: "REP: the same; the cached C' does not make step 6c free", client: "client", budget: 1, steps: []vecStep{
			{anonymous: true, body: []byte("a"), reply: []byte("r"), expectServer: "deliver", expectClient: "ok"},
			{counter: 2, body: []byte("x"), identity: forgedVouch("other client", "eph vouch-after-anon-busy"), expectServer: "hint:busy", expectClient: "error:busy"},
		}},
		pushEphEquivalents(),
		pushClientKeyEquivalents(),
	}
}

// pushEphEquivalents replays one captured PUSH message under each of the
// 15 other encodings of its C'.
func pushEphEquivalents() vecFile {
	v := vecFile{name: "push-eph-equivalents", comment: "a captured PUSH message replayed under the 15 other encodings of its C': none opens", pipeline: true,
		steps: []vecStep{{body: []byte("pay 10"), expectServer: "deliver"}}}
	for _, e := range equivalents(&testing.T{}, public("eph push-eph-equivalents"))[1:] {
		st := vecStep{again: true, mutate: setEph(e), expectServer: "drop:forged"}
		if !wire.Canonical(&e) {
			st.expectServer = "drop:malformed"
		}
		v.steps = append(v.steps, st)
	}
	return v
}

// pushClientKeyEquivalents presents each other encoding of the pusher's
// long-term key, vouched by the owner of its secret, with it authorized.
func pushClientKeyEquivalents() vecFile {
	f := clientKeyEquivalents("push-client-key-equivalents", "every other encoding of a pusher's C, each vouched for by its owner: dropped",
		vecFile{pipeline: true, client: "client", policy: true, authorized: []string{"client"}})
	for i := range f.steps {
		f.steps[i].reply, f.steps[i].expectClient = nil, ""
	}
	return f
}

// TestPushVectorsCoverEveryDrop checks that the pipeline vectors reach
// every reason a PULL server drops for, so that another implementation
// replaying them meets each one.
func TestPushVectorsCoverEveryDrop(t *testing.T) {
	seen := map[string]bool{}
	for _, v := range pushVectors() {
		for _, st := range v.steps {
			seen[st.expectServer] = true
		}
	}
	for _, want := range []string{"deliver", "drop:malformed", "drop:unknown-version", "drop:unknown-kind", "drop:unsupported-feature",
		"drop:unknown-epoch", "drop:busy", "drop:weak-key", "drop:forged", "drop:bad-vouch", "drop:not-authorized", "drop:stale",
		"drop:in-doubt", "drop:replayed"} {
		if !seen[want] {
			t.Errorf("no pipeline vector expects %s", want)
		}
	}
}

// forgedVouch presents the valid key of client with a vouch made by
// another key (so it never verifies), for the short-term key named eph.
func forgedVouch(client, eph string) func(*wire.Identity) {
	return func(id *wire.Identity) {
		id.Client = public(client)
		id.Vouch = vouchBy("impostor", id.Client, eph, id.Expiry)
	}
}
