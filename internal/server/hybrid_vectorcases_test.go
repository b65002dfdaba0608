package server

import (
	"bytes"
	"encoding/binary"

	"github.com/secsock/secsock/internal/wire"
)

// ticketBy returns a ticket made by hand: under the hybrid key of seed
// label's epoch k (the service's own seed, another service's), for the
// short-term key eph, the server key S, and suite.
func ticketBy(seedLabel string, k uint32, server [32]byte, suite byte, name string) func(*hyFile, *wire.HybridKey, [32]byte) ([]byte, [32]byte) {
	return func(v *hyFile, _ *wire.HybridKey, eph [32]byte) ([]byte, [32]byte) {
		chain := newEpochChain(secret(seedLabel), 0, 0, 1)
		h, ep := chain.hybridKey(k), chain.key(k)
		var r [wire.TicketRandSize]byte
		copy(r[:], name)
		q := secret("ticket secret " + name)
		return h.SealTicket(&r, &q, &eph, &server, &ep.ID, suite), q
	}
}

// forEph is ticketBy for another short-term key than the sender's.
func forEph(label string, f func(*hyFile, *wire.HybridKey, [32]byte) ([]byte, [32]byte)) func(*hyFile, *wire.HybridKey, [32]byte) ([]byte, [32]byte) {
	return func(v *hyFile, h *wire.HybridKey, _ [32]byte) ([]byte, [32]byte) { return f(v, h, public(label)) }
}

// shortTicket makes the client send a ticket one byte short (its length
// field says so too).
func shortTicket(b []byte) []byte {
	x := int(binary.BigEndian.Uint16(b[52:54]))
	ext := b[54 : 54+x]
	i := bytes.Index(ext, []byte{wire.ElemKEMTicket, 0, wire.TicketSize})
	out := bytes.Clone(b[:54+i])
	out = append(out, wire.ElemKEMTicket, 0, wire.TicketSize-1)
	out = append(out, ext[i+3:i+3+wire.TicketSize-1]...)
	out = append(out, b[54+i+3+wire.TicketSize:]...)
	binary.BigEndian.PutUint16(out[52:54], uint16(x-1))
	return out
}

// kemOffset is where the ciphertext of a request with EPOCH and
// KEM_CIPHERTEXT elements starts.
const kemOffset = wire.HeaderSize + 11 + 3

func hybridVectorFiles() []hyFile {
	fetch := hyStep{comment: "the anonymous key-fetch ping: epoch keys and the encapsulation key (SPEC.md §16.6 step 1)",
		epoch: -1, ping: true, anonymous: true, wantEpoch: true, wantKEM: true, expectServer: "reply", expectClient: "ok"}
	first := hyStep{comment: "the first request of (C', k) carries a ciphertext; the reply a ticket", kem: true, counter: 2,
		body: []byte("first"), reply: []byte("one"), expectServer: "deliver", expectClient: "ok"}
	second := hyStep{comment: "steady state: the ticket instead of the ciphertext", ticketFrom: 2, counter: 3, dt: 1,
		body: []byte("second"), reply: []byte("two"), expectServer: "deliver", expectClient: "ok"}
	srv := public("server")
	own := func(name string) func(*hyFile, *wire.HybridKey, [32]byte) ([]byte, [32]byte) {
		return ticketBy(hybridSeed, 0, srv, wire.SuiteBox, name)
	}
	refusedTicket := func(comment string, f func(*hyFile, *wire.HybridKey, [32]byte) ([]byte, [32]byte)) hyStep {
		return hyStep{comment: comment, ticket: f, body: []byte("x"), expectServer: "refuse:unknown-ticket", expectClient: "error:unknown-ticket"}
	}
	files := []hyFile{
		{name: "hybrid-session", comment: "key fetch, a ciphertext request, then a ticket request (anonymous, BOX)", steps: []hyStep{fetch, first, second}},
		{name: "hybrid-session-vouched-gcm", comment: "a vouched client in AES-256-GCM: the identity boxes are under the hybrid keys", client: "client", policy: true,
			steps: []hyStep{fetch, hyWith(first, func(s *hyStep) { s.suite = wire.SuiteAESGCM }), hyWith(second, func(s *hyStep) { s.suite = wire.SuiteAESGCM })}},
		{name: "hybrid-ping-carries-ciphertext", comment: "Authenticate's ping carries the ciphertext and gets the ticket", client: "client",
			steps: []hyStep{fetch, {ping: true, kem: true, counter: 2, expectServer: "reply", expectClient: "ok"},
				{ticketFrom: 2, counter: 3, dt: 1, body: []byte("a"), reply: []byte("b"), expectServer: "deliver", expectClient: "ok"}}},
		{name: "hybrid-concurrent-same-ciphertext", comment: "requests sent before the ticket arrives carry the same ciphertext; each gets a ticket (the second from the cached peer, without a decapsulation)",
			steps: []hyStep{first, {reuseKEM: 1, counter: 3, body: []byte("b"), reply: []byte("c"), expectServer: "deliver", expectClient: "ok"}}},
		{name: "hybrid-ticket-other-worker", comment: "a ticket issued by another worker with the same seed opens here (no shared state)",
			steps: []hyStep{{ticket: own("other worker"), body: []byte("x"), reply: []byte("y"), expectServer: "deliver", expectClient: "ok"}}},
		{name: "hybrid-ticket-forged", comment: "a ticket not made with the seed", steps: []hyStep{refusedTicket("random bytes as a ticket",
			func(*hyFile, *wire.HybridKey, [32]byte) ([]byte, [32]byte) {
				t := secret("forged ticket")
				return append(t[:], t[:]...), secret("forged q")
			})}},
		{name: "hybrid-ticket-bit-flip", comment: "a ticket of this service with one bit flipped",
			steps: []hyStep{refusedTicket("flipped after sealing", func(v *hyFile, h *wire.HybridKey, eph [32]byte) ([]byte, [32]byte) {
				t, q := own("flip")(v, h, eph)
				t[20] ^= 1
				return t, q
			})}},
		{name: "hybrid-ticket-truncated", comment: "a ticket one byte short is malformed", steps: []hyStep{
			{ticket: own("short"), clientSent: shortTicket, body: []byte("x"), expectServer: "drop:malformed"}}},
		{name: "hybrid-ticket-other-service", comment: "a ticket from another service's seed",
			steps: []hyStep{refusedTicket("", ticketBy("another service's seed", 0, srv, wire.SuiteBox, "other service"))}},
		{name: "hybrid-ticket-other-server-key", comment: "a ticket of this seed made for another server key S",
			steps: []hyStep{refusedTicket("", ticketBy(hybridSeed, 0, public("other server"), wire.SuiteBox, "other S"))}},
		{name: "hybrid-ticket-other-eph", comment: "a ticket made for another short-term key",
			steps: []hyStep{refusedTicket("", forEph("someone else", own("other eph")))}},
		{name: "hybrid-ticket-other-suite", comment: "a ticket made for AES-256-GCM used in BOX",
			steps: []hyStep{refusedTicket("", ticketBy(hybridSeed, 0, srv, wire.SuiteAESGCM, "other suite"))}},
		{name: "hybrid-ticket-other-suite-cached", comment: "a ticket used in its suite, then in the other one on the same worker: refused as on any other worker",
			steps: []hyStep{first, hyWith(second, func(s *hyStep) { s.ticketFrom, s.counter = 1, 3 }),
				{ticketFrom: 1, counter: 4, dt: 2, suite: wire.SuiteAESGCM, body: []byte("x"), expectServer: "refuse:unknown-ticket", expectClient: "error:unknown-ticket"}}},
		{name: "hybrid-ticket-other-epoch", comment: "a ticket of epoch 1 sent under epoch 0",
			steps: []hyStep{refusedTicket("", ticketBy(hybridSeed, 1, srv, wire.SuiteBox, "other epoch"))}},
		{name: "hybrid-ticket-after-epoch", comment: "a ticket replayed after its epoch left the accepted set: UNKNOWN_EPOCH",
			steps: []hyStep{first, {ticketFrom: 1, counter: 3, dt: 3 * 300000, body: []byte("late"), expectServer: "refuse:unknown-epoch", expectClient: "error:unknown-epoch"}}},
		{name: "hybrid-ciphertext-bit-flip", comment: "a ciphertext changed in transit: implicit rejection, nothing opens",
			steps: []hyStep{hyWith(first, func(s *hyStep) {
				s.mutate, s.expectServer, s.expectClient = flip(kemOffset+100), "hint:cannot-open", "error:server-key-mismatch"
			})}},
		{name: "hybrid-ciphertext-short", comment: "a ciphertext one byte short is malformed",
			steps: []hyStep{hyWith(first, func(s *hyStep) {
				s.clientSent = func(b []byte) []byte {
					out := bytes.Clone(b[:kemOffset-3])
					out = append(out, wire.ElemKEMCiphertext, byte((wire.KEMCiphertextSize-1)>>8), byte((wire.KEMCiphertextSize-1)&0xff))
					out = append(out, b[kemOffset:kemOffset+wire.KEMCiphertextSize-1]...)
					out = append(out, b[kemOffset+wire.KEMCiphertextSize:]...)
					binary.BigEndian.PutUint16(out[52:54], uint16(binary.BigEndian.Uint16(b[52:54])-1))
					return out
				}
				s.expectServer, s.expectClient = "drop:malformed", ""
			})}},
		{name: "hybrid-ciphertext-without-epoch", comment: "a ciphertext names its epoch's key: without an EPOCH element it is malformed",
			steps: []hyStep{hyWith(first, func(s *hyStep) {
				s.clientSent = func(b []byte) []byte {
					out := append(bytes.Clone(b[:54]), b[54+11:]...)
					out[3] &^= 1 << wire.ElemEpoch
					binary.BigEndian.PutUint16(out[52:54], uint16(binary.BigEndian.Uint16(b[52:54])-11))
					return out
				}
				s.expectServer, s.expectClient = "drop:malformed", ""
			})}},
		{name: "hybrid-server-off", comment: "a server without the mode refuses the elements UNSUPPORTED_FEATURE (the client reports it, never falls back)", hybrid: "off",
			steps: []hyStep{hyWith(fetch, func(s *hyStep) {
				s.expectServer, s.expectClient = "refuse:unsupported-feature", "error:unsupported-feature"
			}),
				hyWith(first, func(s *hyStep) {
					s.expectServer, s.expectClient = "refuse:unsupported-feature", "error:unsupported-feature"
				})}},
		{name: "hybrid-required", comment: "a server that requires the mode refuses every message without it but the anonymous key-fetch ping", hybrid: "require",
			client: "client",
			steps: []hyStep{{body: []byte("plain"), expectServer: "refuse:hybrid-required", expectClient: "error:hybrid-required"},
				{comment: "a vouched ping without the mode: its identity box would travel under X25519 alone", ping: true, counter: 2, expectServer: "refuse:hybrid-required", expectClient: "error:hybrid-required"},
				{comment: "an anonymous ping without WANT_KEM", ping: true, anonymous: true, counter: 3, expectServer: "refuse:hybrid-required", expectClient: "error:hybrid-required"},
				hyWith(fetch, func(s *hyStep) { s.counter = 4 }),
				hyWith(first, func(s *hyStep) { s.counter = 5 })}},
		{name: "hybrid-key-fetch-with-policy", comment: "the anonymous key-fetch ping is answered where anonymous clients are not served; anonymous data is not",
			client: "client", policy: true,
			steps: []hyStep{fetch, {anonymous: true, counter: 2, kem: true, body: []byte("x"), expectServer: "refuse:not-authorized", expectClient: "error:not-authorized"}}},
		{name: "hybrid-want-next-key", comment: "WANT_KEM on a request with a ticket fetches the next epoch's key",
			steps: []hyStep{first, hyWith(second, func(s *hyStep) { s.ticketFrom, s.wantKEM = 1, true })}},
		{name: "hybrid-budget", comment: "a decapsulation is charged: one server key, dhE and the decapsulation are 3 of a budget of 4", budget: 4,
			steps: []hyStep{first, {eph: "another", kem: true, body: []byte("x"), expectServer: "hint:busy", expectClient: "error:busy"}}},
	}
	for i := range files {
		if files[i].hybrid == "" {
			files[i].hybrid = "on"
		}
	}
	return files
}

func hyWith(s hyStep, f func(*hyStep)) hyStep {
	f(&s)
	return s
}
