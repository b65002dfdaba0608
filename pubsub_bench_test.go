package secsock

import (
	"fmt"
	"testing"
	"time"

	"github.com/secsock/secsock/internal/subreplay"
	"github.com/secsock/secsock/internal/wire"
)

// BenchmarkPubSubSealOpen: the per-message cost of sealing (one HMAC,
// one ChaCha20-Poly1305, one Ed25519 signature over a SHA-256 digest)
// and of a subscriber's checks (one verification, one HMAC, the AEAD,
// the tag), without sockets.
func BenchmarkPubSubSealOpen(b *testing.B) {
	sign, _ := GenerateSigningKey()
	ks, err := NewKeyService(KeyServiceConfig{Publisher: sign.Public(), RotateAfter: 1 << 62})
	if err != nil {
		b.Fatal(err)
	}
	p, err := NewPublisher(PublisherConfig{Signing: sign, Keys: ks})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	for _, size := range []int{64, 64 << 10} {
		body := make([]byte, size)
		b.Run(fmt.Sprintf("seal/%dB", size), func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				if _, err := p.Seal("bench", body); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("open/%dB", size), func(b *testing.B) {
			s := psBenchSubscriber(b, ks, sign.Public())
			msgs := make([][]byte, 0, 4096)
			for range cap(msgs) {
				m, _ := p.Seal("bench", body)
				msgs = append(msgs, m)
			}
			b.SetBytes(int64(size))
			i := 0
			for b.Loop() {
				if i == len(msgs) { // fresh counters: reseal (outside the timer would skew little)
					b.StopTimer()
					for j := range msgs {
						msgs[j], _ = p.Seal("bench", body)
					}
					i = 0
					b.StartTimer()
				}
				if s.Open(msgs[i]) == nil {
					b.Fatalf("dropped: %+v", s.Stats())
				}
				i++
			}
		})
	}
}

// psBenchSubscriber holds ks's keys directly (no key service socket).
func psBenchSubscriber(b *testing.B, ks *KeyService, pub PublisherKey) *Subscriber {
	pk := &pubKeys{fetched: true}
	bundle := ks.bundle()
	pk.senders, pk.tags = map[uint64]wire.BundleKey{}, map[uint64]wire.BundleKey{}
	for _, k := range bundle.Senders {
		pk.senders[k.ID] = k
	}
	for _, k := range bundle.Tags {
		pk.tags[k.ID] = k
	}
	s := &Subscriber{cfg: SubscriberConfig{Clock: time.Now}, pubs: map[PublisherKey]**pubKeys{pub: &pk},
		topics: map[string]bool{"bench": true}}
	s.replay = newBenchReplay()
	return s
}

func newBenchReplay() *subreplay.State {
	return subreplay.New(uint64(time.Now().UnixMilli()), uint64(time.Hour.Milliseconds()), 10_000)
}
