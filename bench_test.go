//go:build v1tests

package secsock

// Benchmarks of the seal/open primitives of each message kind, and tests
// that pin the performance properties the README promises: no curve25519
// scalar multiplication per message in steady state, and at most two heap
// allocations per message over plain mangos. The side-by-side socket
// benchmark is cmd/secsock-bench.

import (
	"crypto/rand"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.nanomsg.org/mangos/v3"
	"go.nanomsg.org/mangos/v3/protocol/rep"
	"go.nanomsg.org/mangos/v3/protocol/req"
)

var benchSizes = []int{64, 1 << 10, 64 << 10, 1 << 20}

var benchSuites = []struct {
	name  string
	suite byte
}{{"box", suiteBox}, {"aesgcm", suiteAESGCM}}

// benchZeroReader supplies the per-reply random value R in benchmarks.
type benchZeroReader struct{}

func (benchZeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// benchWorld is a client short-term key agreed with a server key, and a
// client long-term identity vouching for it.
type benchWorld struct {
	server SecretKey
	eph    PublicKey
	k      *sharedKey
	id     *identity
}

func newBenchWorld(tb testing.TB) *benchWorld {
	tb.Helper()
	w := &benchWorld{server: mustKey(tb)}
	eph, client := mustKey(tb), mustKey(tb)
	w.eph = eph.Public()
	var err error
	if w.k, err = precompute(w.server.Public(), eph.bytes()); err != nil {
		tb.Fatal(err)
	}
	vk, err := precompute(w.server.Public(), client.bytes())
	if err != nil {
		tb.Fatal(err)
	}
	w.id = &identity{client: client.Public(), vouch: makeVouch(vk, w.eph)}
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

// BenchmarkSealRequest seals anonymous and vouched requests.
func BenchmarkSealRequest(b *testing.B) {
	w := newBenchWorld(b)
	for _, kind := range []string{"anonymous", "vouched"} {
		for _, s := range benchSuites {
			for _, n := range benchSizes {
				b.Run(fmt.Sprintf("%s/%s/%s", kind, s.name, sizeLabel(n)), func(b *testing.B) {
					k, id, over := kindRequest, (*identity)(nil), anonRequestOver
					if kind == "vouched" {
						k, id, over = kindRequestVouched, w.id, vouchRequestOver
					}
					body := make([]byte, n)
					dst := make([]byte, 0, n+over)
					w.k.gcm()
					b.SetBytes(int64(n))
					b.ReportAllocs()
					b.ResetTimer()
					for i := 0; b.Loop(); i++ {
						dst = appendRequest(dst[:0], k, s.suite, w.eph, uint64(i+1), 1e12, w.k, id, body)
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
					k, id := kindRequest, (*identity)(nil)
					if kind == "vouched" {
						k, id = kindRequestVouched, w.id
					}
					wire := appendRequest(nil, k, s.suite, w.eph, 7, 1e12, w.k, id, make([]byte, n))
					dst := make([]byte, 0, n)
					b.SetBytes(int64(n))
					b.ReportAllocs()
					b.ResetTimer()
					for b.Loop() {
						r, err := parseRequest(wire)
						if err != nil {
							b.Fatal(err)
						}
						if isVouched(r.kind) {
							if _, err := openIdentity(&r, w.k); err != nil {
								b.Fatal(err)
							}
						}
						if dst, err = openRequestBody(dst[:0], &r, w.k); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		}
	}
}

// BenchmarkSealReply seals replies and refusals.
func BenchmarkSealReply(b *testing.B) {
	w := newBenchWorld(b)
	for _, s := range benchSuites {
		for _, n := range append([]int{-1}, benchSizes...) {
			kind, label, body := kindReply, sizeLabel(n), make([]byte, max(n, 0))
			if n < 0 {
				kind, label, body = kindRefusal, "refusal", []byte{refuseStale}
			}
			b.Run(fmt.Sprintf("%s/%s", s.name, label), func(b *testing.B) {
				dst := make([]byte, 0, len(body)+replyHeaderBase+maxSuiteRandLen+tagSize)
				w.k.gcm()
				b.SetBytes(int64(len(body)))
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; b.Loop(); i++ {
					var err error
					if dst, err = appendReply(dst[:0], kind, s.suite, w.k, uint64(i), benchZeroReader{}, body); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkOpenReply opens replies and refusals as the client does.
func BenchmarkOpenReply(b *testing.B) {
	w := newBenchWorld(b)
	for _, s := range benchSuites {
		for _, n := range append([]int{-1}, benchSizes...) {
			kind, label, body := kindReply, sizeLabel(n), make([]byte, max(n, 0))
			if n < 0 {
				kind, label, body = kindRefusal, "refusal", []byte{refuseStale}
			}
			b.Run(fmt.Sprintf("%s/%s", s.name, label), func(b *testing.B) {
				wire, err := appendReply(nil, kind, s.suite, w.k, 7, benchZeroReader{}, body)
				if err != nil {
					b.Fatal(err)
				}
				dst := make([]byte, 0, len(body))
				b.SetBytes(int64(len(body)))
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					var got byte
					if got, dst, err = openReply(dst[:0], s.suite, w.k, 7, wire); err != nil || got != kind {
						b.Fatal(got, err)
					}
				}
			})
		}
	}
}

// BenchmarkPrecompute is the cost of one key agreement (X25519 and
// HSalsa20): once per new client short-term key on each side.
func BenchmarkPrecompute(b *testing.B) {
	a, c := mustKey(b), mustKey(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := precompute(c.Public(), a.bytes()); err != nil {
			b.Fatal(err)
		}
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

// TestSteadyStateNoScalarMults shows with the scalarMults counter that,
// once a client's short-term key is agreed, request/reply round trips do
// no curve25519 scalar multiplication on either side (both sides run in
// this process, so the counter sees both), for anonymous and vouched
// clients, both suites, on the socket and on concurrent contexts.
func TestSteadyStateNoScalarMults(t *testing.T) {
	for _, tc := range []struct {
		name    string
		vouched bool
		cipher  string
	}{{"anonymous/box", false, CipherBox}, {"vouched/box", true, CipherBox}, {"anonymous/aesgcm", false, CipherAESGCM}, {"vouched/aesgcm", true, CipherAESGCM}} {
		t.Run(tc.name, func(t *testing.T) {
			opts := []any{OptionCipher, tc.cipher}
			if tc.vouched {
				opts = append(opts, OptionSecretKey, mustKey(t))
			}
			before := scalarMults.Load()
			client := benchPair(t, true, 4, opts...)
			body := make([]byte, 64)
			benchRoundTrip(t, client, body) // agrees the keys
			setup := scalarMults.Load() - before
			// Client: the short-term key (and the vouch key); server: the
			// short-term key (and the vouch check).
			if want := uint64(2); setup < want {
				t.Fatalf("first round trip did %d scalar multiplications, want at least %d: is the counter wired?", setup, want)
			}
			start := scalarMults.Load()
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
			if got := scalarMults.Load() - start; got != 0 {
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

// TestShortTermKeyMatchesX25519 checks the fast short-term key generation
// (Ed25519 fixed-base and the birational map) against the X25519 ladder.
func TestShortTermKeyMatchesX25519(t *testing.T) {
	for i := 0; i < 500; i++ {
		k, err := generateShortTermKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		want, err := NewSecretKey(k.bytes()[:])
		if err != nil {
			t.Fatal(err)
		}
		if k.public != want.public {
			t.Fatalf("public key %x, want %x", k.public, want.public)
		}
	}
}

// BenchmarkShortTermKey compares the fast short-term key generation with
// GenerateKey (the X25519 ladder on the base point).
func BenchmarkShortTermKey(b *testing.B) {
	b.Run("fixed-base", func(b *testing.B) {
		for b.Loop() {
			if _, err := generateShortTermKey(rand.Reader); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ladder", func(b *testing.B) {
		for b.Loop() {
			if _, err := GenerateKeyFrom(rand.Reader); err != nil {
				b.Fatal(err)
			}
		}
	})
}
