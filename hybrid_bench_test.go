package secsock

// What the hybrid mode adds to one exchange (SPEC.md §16.7), measured at
// the mechanism (seal, open, reply, open; no sockets, no network), side by
// side with epoch keys alone in the same run: the first request of a
// session (a new short-term key: X25519 agreements, and in the mode the
// encapsulation, the decapsulation and the ticket) and a steady-state
// request. Bytes are reported per exchange. The socket-level comparison
// (fresh socket to first reply, throughput) is cmd/secsock-bench.

import (
	"crypto/rand"
	"testing"
	"time"
)

// mechPair is a REQ mechanism and a REP mechanism that talk directly.
type mechPair struct {
	cl  *curveClient
	srv *curveServer
}

func newMechPair(tb testing.TB, hybrid bool) *mechPair {
	tb.Helper()
	seed, err := newEpochSeed(rand.Reader, time.Now().Add(-time.Minute), time.Hour)
	if err != nil {
		tb.Fatal(err)
	}
	mode := HybridOff
	if hybrid {
		mode = HybridOn
	}
	sk := mustKey(tb)
	rep := newRep(tb, sk, OptionEpochSeed, seed, OptionHybrid, mode, OptionKeyAgreementBudget, 0)
	req := newReq(tb, sk.Public(), OptionHybrid, mode, OptionEpochs, EpochsRequire)
	p := &mechPair{cl: req.engine().client.(*curveClient), srv: rep.engine().server.(*curveServer)}
	// Learn the epoch keys (and the ML-KEM key) as a ping would.
	if _, _, err := p.exchange(nil, true); err != nil {
		tb.Fatal(err)
	}
	return p
}

// exchange seals body, opens it at the server, seals the echo and opens
// it at the client; it returns the request's and the answer's sizes.
func (p *mechPair) exchange(body []byte, ping bool) (reqLen, repLen int, err error) {
	wire, o, err := p.cl.sealRequest(make([]byte, 0, p.cl.sealedSize(len(body))), body, ping)
	if err != nil {
		return 0, 0, err
	}
	in := p.srv.openRequest(nil, wire)
	answer := in.respond
	if in.deliver {
		if answer, err = p.srv.sealReply(nil, in.ticket, in.body); err != nil {
			return 0, 0, err
		}
	}
	if _, err := p.cl.openReply(nil, o, answer); err != nil {
		return 0, 0, err
	}
	return len(wire), len(answer), nil
}

// BenchmarkHybridExchange: first and steady-state exchanges of 64 B with
// epoch keys alone ("epochs") and in the hybrid mode ("hybrid").
func BenchmarkHybridExchange(b *testing.B) {
	body := make([]byte, 64)
	for _, mode := range []struct {
		name   string
		hybrid bool
	}{{"epochs", false}, {"hybrid", true}} {
		for _, first := range []bool{true, false} {
			name := mode.name + "/steady"
			if first {
				name = mode.name + "/first"
			}
			b.Run(name, func(b *testing.B) {
				p := newMechPair(b, mode.hybrid)
				var reqLen, repLen int
				if !first {
					if _, _, err := p.exchange(body, false); err != nil { // the ciphertext, then tickets
						b.Fatal(err)
					}
				}
				b.ReportAllocs()
				for b.Loop() {
					if first {
						p.cl.cur.Store(nil) // a new short-term key for each request
					}
					var err error
					if reqLen, repLen, err = p.exchange(body, false); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(reqLen), "req-B")
				b.ReportMetric(float64(repLen), "reply-B")
			})
		}
	}
}

// TestHybridExchangeSizes pins the sizes the benchmark reports: the
// first request of a session adds the 1,091-byte ciphertext element and
// its reply the 69-byte ticket; steady state adds 67 bytes to the request
// and nothing to the reply.
func TestHybridExchangeSizes(t *testing.T) {
	body := make([]byte, 64)
	sizes := map[bool][4]int{}
	for _, hybrid := range []bool{false, true} {
		p := newMechPair(t, hybrid)
		p.cl.cur.Store(nil)
		q1, r1, err := p.exchange(body, false)
		if err != nil {
			t.Fatal(err)
		}
		q2, r2, err := p.exchange(body, false)
		if err != nil {
			t.Fatal(err)
		}
		sizes[hybrid] = [4]int{q1, r1, q2, r2}
	}
	e, h := sizes[false], sizes[true]
	if got, want := [4]int{h[0] - e[0], h[1] - e[1], h[2] - e[2], h[3] - e[3]}, [4]int{1091, 69, 67, 0}; got != want {
		t.Fatalf("bytes added (first request, its reply, steady request, its reply) = %v, want %v (epochs %v, hybrid %v)", got, want, e, h)
	}
}
