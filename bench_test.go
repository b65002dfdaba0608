package secsock

// Benchmarks of the seal/open primitives of each message kind (protocol
// v2, internal/wire), and tests that pin the performance properties the
// README promises: no curve25519 scalar multiplication per message in
// steady state, and at most two heap allocations per message over plain
// mangos. The side-by-side socket benchmark is cmd/secsock-bench.

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"go.nanomsg.org/mangos/v3"
	"go.nanomsg.org/mangos/v3/protocol/rep"
	"go.nanomsg.org/mangos/v3/protocol/req"

	"github.com/secsock/secsock/internal/wire"
)

var benchSizes = []int{64, 1 << 10, 64 << 10, 1 << 20}

var benchSuites = []struct {
	name  string
	suite byte
}{{"box", wire.SuiteBox}, {"aesgcm", wire.SuiteAESGCM}}

// benchWorld is a client short-term key agreed with a server key, and a
// client long-term identity vouching for it.
type benchWorld struct {
	server SecretKey
	sess   *atkSession
	id     *wire.Identity
}

func newBenchWorld(tb testing.TB) *benchWorld {
	tb.Helper()
	w := &benchWorld{server: mustKey(tb)}
	w.sess = newAtkSession(tb, atkRand("bench "+tb.Name()), w.server.Public())
	w.id = atkIdentity(tb, mustKey(tb), nil, w.sess.eph, w.sess.server, 2e12)
	return w
}

func sizeLabel(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

func benchKind(kind string) (byte, bool) {
	if kind == "vouched" {
		return wire.KindRequestVouched, true
	}
	return wire.KindRequest, false
}

// BenchmarkSealRequest seals anonymous and vouched requests.
func BenchmarkSealRequest(b *testing.B) {
	w := newBenchWorld(b)
	for _, kind := range []string{"anonymous", "vouched"} {
		for _, s := range benchSuites {
			for _, n := range benchSizes {
				b.Run(fmt.Sprintf("%s/%s/%s", kind, s.name, sizeLabel(n)), func(b *testing.B) {
					k, vouched := benchKind(kind)
					id, over := (*wire.Identity)(nil), wire.AnonOverhead
					if vouched {
						id, over = w.id, wire.VouchOverhead
					}
					keys := w.sess.suiteKeys(s.suite)
					body := make([]byte, n)
					dst := make([]byte, 0, n+over)
					b.SetBytes(int64(n))
					b.ReportAllocs()
					for i := 0; b.Loop(); i++ {
						f := wire.RequestFields{Kind: k, Suite: s.suite, Eph: w.sess.eph, Counter: uint64(i + 1), Timestamp: 1e12}
						dst = wire.AppendRequest(dst[:0], &f, keys, id, body)
					}
				})
			}
		}
	}
}

// BenchmarkOpenRequest parses and opens requests as a server with a
// cached key does (the identity box too for vouched requests).
func BenchmarkOpenRequest(b *testing.B) {
	w := newBenchWorld(b)
	for _, kind := range []string{"anonymous", "vouched"} {
		for _, s := range benchSuites {
			for _, n := range benchSizes {
				b.Run(fmt.Sprintf("%s/%s/%s", kind, s.name, sizeLabel(n)), func(b *testing.B) {
					k, vouched := benchKind(kind)
					id := (*wire.Identity)(nil)
					if vouched {
						id = w.id
					}
					keys := w.sess.suiteKeys(s.suite)
					msg := w.sess.seal(k, s.suite, 7, 1e12, id, make([]byte, n))
					dst := make([]byte, 0, n)
					b.SetBytes(int64(n))
					b.ReportAllocs()
					for b.Loop() {
						r, err := wire.ParseRequest(msg)
						if err != nil {
							b.Fatal(err)
						}
						if wire.IsVouched(r.Kind) {
							if _, err := wire.OpenIdentity(&r, keys); err != nil {
								b.Fatal(err)
							}
						}
						if dst, err = wire.OpenBody(dst[:0], &r, keys); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		}
	}
}

// BenchmarkSealReply seals replies, and refusals (an HMAC over the
// request header).
func BenchmarkSealReply(b *testing.B) {
	w := newBenchWorld(b)
	h := w.sess.seal(wire.KindRequest, wire.SuiteBox, 7, 1e12, nil, nil)[:wire.HeaderSize]
	b.Run("refusal", func(b *testing.B) {
		dst := make([]byte, 0, wire.RefusalSize)
		b.ReportAllocs()
		for b.Loop() {
			dst = wire.AppendRefusal(dst[:0], &w.sess.prk0, h, wire.RefuseStale)
		}
	})
	for _, s := range benchSuites {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("%s/%s", s.name, sizeLabel(n)), func(b *testing.B) {
				keys := w.sess.suiteKeys(s.suite)
				body := make([]byte, n)
				dst := make([]byte, 0, n+wire.ReplyOverhead)
				var r [wire.ReplyRandSize]byte
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					r[0] = byte(i)
					dst = wire.AppendReply(dst[:0], keys, uint64(i+1), &r, body)
				}
			})
		}
	}
}

// BenchmarkOpenReply opens replies and checks refusals as the client does.
func BenchmarkOpenReply(b *testing.B) {
	w := newBenchWorld(b)
	h := w.sess.seal(wire.KindRequest, wire.SuiteBox, 7, 1e12, nil, nil)[:wire.HeaderSize]
	b.Run("refusal", func(b *testing.B) {
		ref := wire.AppendRefusal(nil, &w.sess.prk0, h, wire.RefuseStale)
		b.ReportAllocs()
		for b.Loop() {
			if r, err := wire.CheckRefusal(&w.sess.prk0, h, ref); err != nil || r != wire.RefuseStale {
				b.Fatal(r, err)
			}
		}
	})
	for _, s := range benchSuites {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("%s/%s", s.name, sizeLabel(n)), func(b *testing.B) {
				keys := w.sess.suiteKeys(s.suite)
				var r [wire.ReplyRandSize]byte
				msg := wire.AppendReply(nil, keys, 7, &r, make([]byte, n))
				dst := make([]byte, 0, n)
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for b.Loop() {
					if _, _, err := wire.Classify(msg); err != nil {
						b.Fatal(err)
					}
					var err error
					if dst, err = wire.OpenReply(dst[:0], keys, 7, msg); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkKeyAgreement is the cost of one new short-term key on the
// server: X25519 and the key schedule (prk0, Kq, Kr). Once per new client
// short-term key on each side, and what a forged message with a fresh C'
// costs per server key tried.
func BenchmarkKeyAgreement(b *testing.B) {
	a, c := mustKey(b), mustKey(b)
	peer := [wire.KeySize]byte(c.Public())
	self := [wire.KeySize]byte(a.Public())
	b.ReportAllocs()
	for b.Loop() {
		dh, err := wire.X25519(a.bytes(), &peer)
		if err != nil {
			b.Fatal(err)
		}
		prk := wire.RequestSecret(&dh, &peer, &self)
		wire.SessionKeys(&prk, wire.SuiteBox)
	}
}

// benchEcho serves ctx until its socket closes.
func benchEcho(c mangos.Context) {
	for {
		b, err := c.Recv()
		if errors.Is(err, mangos.ErrClosed) {
			return
		}
		if err == nil {
			if err := c.Send(b); errors.Is(err, mangos.ErrClosed) {
				return
			}
		}
	}
}

// benchPair returns a REQ socket connected over inproc to a REP socket
// with an echo server on each of its contexts: plain mangos when curve is
// false, secsock otherwise. clientOpts go to the secsock client.
func benchPair(tb testing.TB, curve bool, contexts int, clientOpts ...any) mangos.Socket {
	tb.Helper()
	addr := inprocAddr(tb)
	var server, client mangos.Socket
	var err error
	if curve {
		sk := mustKey(tb)
		var s, c *Socket
		if s, err = NewRepSocket(); err != nil {
			tb.Fatal(err)
		}
		mustSet(tb, s, OptionMechanism, MechanismCurve, OptionSecretKey, sk)
		if c, err = NewReqSocket(); err != nil {
			tb.Fatal(err)
		}
		mustSet(tb, c, OptionMechanism, MechanismCurve, OptionServerKey, sk.Public())
		mustSet(tb, c, clientOpts...)
		server, client = s, c
	} else {
		if server, err = rep.NewSocket(); err != nil {
			tb.Fatal(err)
		}
		if client, err = req.NewSocket(); err != nil {
			tb.Fatal(err)
		}
	}
	tb.Cleanup(func() { client.Close(); server.Close() })
	for _, s := range []mangos.Socket{server, client} {
		mustSet(tb, s, mangos.OptionRecvDeadline, 10*time.Second, mangos.OptionSendDeadline, 10*time.Second,
			mangos.OptionMaxRecvSize, 4<<20)
	}
	if err := server.Listen(addr); err != nil {
		tb.Fatal(err)
	}
	for i := 0; i < contexts; i++ {
		c, err := server.OpenContext()
		if err != nil {
			tb.Fatal(err)
		}
		go benchEcho(c)
	}
	if err := client.Dial(addr); err != nil {
		tb.Fatal(err)
	}
	return client
}

func benchRoundTrip(tb testing.TB, c interface {
	Send([]byte) error
	Recv() ([]byte, error)
}, body []byte) {
	if err := c.Send(body); err != nil {
		tb.Fatal(err)
	}
	got, err := c.Recv()
	if err != nil {
		tb.Fatal(err)
	}
	if len(got) != len(body) {
		tb.Fatalf("reply of %d bytes, want %d", len(got), len(body))
	}
}

// TestSteadyStateNoScalarMults shows with wire.ScalarMults that, once a
// client's short-term key is agreed, request/reply round trips do no
// curve25519 scalar multiplication on either side (both sides run in this
// process, so the counter sees both), for anonymous and vouched clients,
// both suites, on the socket and on concurrent contexts. The first round
// trip does exactly what SPEC.md §6.1 and §4 say: dh1 on each side, and
// for a vouched client dh2 on each side too.
func TestSteadyStateNoScalarMults(t *testing.T) {
	for _, tc := range []struct {
		name    string
		vouched bool
		cipher  string
	}{{"anonymous/box", false, CipherBox}, {"vouched/box", true, CipherBox}, {"anonymous/aesgcm", false, CipherAESGCM}, {"vouched/aesgcm", true, CipherAESGCM}} {
		t.Run(tc.name, func(t *testing.T) {
			opts := []any{OptionCipher, tc.cipher}
			want := uint64(2) // dh1 on the client and on the server
			if tc.vouched {
				opts = append(opts, OptionSecretKey, mustKey(t))
				want = 4 // and dh2 on each side
			}
			// From before Dial: Dial builds the client's state, which
			// may agree its vouch key (dh2) already.
			before := wire.ScalarMults.Load()
			client := benchPair(t, true, 4, opts...)
			body := make([]byte, 64)
			benchRoundTrip(t, client, body) // agrees the keys
			if setup := wire.ScalarMults.Load() - before; setup != want {
				t.Fatalf("setup and first round trip did %d scalar multiplications, want %d", setup, want)
			}
			start := wire.ScalarMults.Load()
			for i := 0; i < 200; i++ {
				benchRoundTrip(t, client, body)
			}
			ctxs := make([]mangos.Context, 4)
			for i := range ctxs {
				c, err := client.OpenContext()
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				ctxs[i] = c
			}
			done := make(chan struct{}, len(ctxs))
			for _, c := range ctxs {
				go func() {
					defer func() { done <- struct{}{} }()
					for i := 0; i < 100; i++ {
						if err := c.Send(body); err != nil {
							t.Error(err)
							return
						}
						if _, err := c.Recv(); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			for range ctxs {
				<-done
			}
			if got := wire.ScalarMults.Load() - start; got != 0 {
				t.Fatalf("600 steady-state round trips did %d scalar multiplications, want 0", got)
			}
		})
	}
}

// TestAllocsPerRoundTrip compares the heap allocations of a 64 B round
// trip over inproc (client and server together) for plain mangos and
// secsock. secsock may add at most two allocations per message, four per
// round trip.
func TestAllocsPerRoundTrip(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts need a quiet process")
	}
	if atkRace {
		t.Skip("the race detector makes sync.Pool drop items: allocation counts are not meaningful")
	}
	body := make([]byte, 64)
	measure := func(curve bool, opts ...any) float64 {
		client := benchPair(t, curve, 1, opts...)
		for i := 0; i < 20; i++ {
			benchRoundTrip(t, client, body)
		}
		return testing.AllocsPerRun(500, func() { benchRoundTrip(t, client, body) })
	}
	plain := measure(false)
	for _, tc := range []struct {
		name string
		opts []any
	}{{"box", nil}, {"aesgcm", []any{OptionCipher, CipherAESGCM}}, {"vouched", []any{OptionSecretKey, mustKey(t)}}} {
		sec := measure(true, tc.opts...)
		t.Logf("%s: plain mangos %.0f allocs per round trip, secsock %.0f (%+.1f per message)", tc.name, plain, sec, (sec-plain)/2)
		if sec-plain > 4 {
			t.Errorf("%s: secsock adds %.0f allocations per round trip over plain mangos (%.0f vs %.0f), want at most 4 (2 per message)", tc.name, sec-plain, sec, plain)
		}
	}
}

// BenchmarkRoundTrip is one sequential 64 B or 1 MiB round trip over
// inproc, plain mangos against secsock: a profiling entry point
// (go test -bench RoundTrip -cpuprofile).
func BenchmarkRoundTrip(b *testing.B) {
	for _, n := range []int{64, 1 << 20} {
		for _, v := range []struct {
			name  string
			curve bool
			opts  []any
		}{{"plain", false, nil}, {"secsock", true, nil}, {"secsock-aesgcm", true, []any{OptionCipher, CipherAESGCM}}} {
			b.Run(fmt.Sprintf("%s/%s", sizeLabel(n), v.name), func(b *testing.B) {
				client := benchPair(b, v.curve, 1, v.opts...)
				body := make([]byte, n)
				benchRoundTrip(b, client, body)
				b.SetBytes(int64(n))
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					benchRoundTrip(b, client, body)
				}
			})
		}
	}
}

// BenchmarkRoundTripParallel is 16 concurrent contexts doing 64 B round
// trips over inproc against 16 REP contexts.
func BenchmarkRoundTripParallel(b *testing.B) {
	for _, v := range []struct {
		name  string
		curve bool
		opts  []any
	}{{"plain", false, nil}, {"secsock", true, nil}, {"secsock-aesgcm", true, []any{OptionCipher, CipherAESGCM}}} {
		b.Run(v.name, func(b *testing.B) {
			client := benchPair(b, v.curve, 16, v.opts...)
			benchRoundTrip(b, client, make([]byte, 64))
			b.ReportAllocs()
			b.SetParallelism(8) // 16 goroutines on 2 CPUs
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				c, err := client.OpenContext()
				if err != nil {
					b.Error(err)
					return
				}
				defer c.Close()
				body := make([]byte, 64)
				for pb.Next() {
					if err := c.Send(body); err != nil {
						b.Error(err)
						return
					}
					if _, err := c.Recv(); err != nil && !errors.Is(err, ErrReplayed) {
						// ErrReplayed: on a loaded machine a request can
						// be delayed past the replay window (8,128
						// counters) while the other contexts go on.
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
