package wire

import (
	"bytes"
	"crypto/ed25519"
	"testing"
)

func pubTestMessage(t testing.TB, blinded bool) ([]byte, *[KeySize]byte) {
	seed := bytes.Repeat([]byte{1}, 32)
	sk := ed25519.NewKeyFromSeed(seed)
	pub := sk.Public().(ed25519.PublicKey)
	var k, tk [KeySize]byte
	k[0], tk[0] = 2, 3
	f := PubFields{Blinded: blinded, Publisher: pub, Gen: 9, Counter: 4, Timestamp: 5}
	if blinded {
		f.Tag = TopicTag(&tk, []byte("topic"))
	}
	ik := InstanceKey(&k, pub, f.Gen, &f.Instance)
	b, err := AppendPub(nil, &f, &ik, sk, []byte("topic"), []byte("body"))
	if err != nil {
		t.Fatal(err)
	}
	return b, &ik
}

// Every truncation and every extension by one byte of a valid message is
// refused before or at the signature; the layout is exact.
func TestPubExactLength(t *testing.T) {
	for _, blinded := range []bool{true, false} {
		b, ik := pubTestMessage(t, blinded)
		m, err := ParsePub(b)
		if err != nil || m.Verify() != nil {
			t.Fatalf("valid message refused: %v", err)
		}
		if _, body, err := m.Open(ik); err != nil || string(body) != "body" {
			t.Fatalf("open: %v %q", err, body)
		}
		if got := len(b) - len("body"); got != PubOverhead(blinded, len("topic")) {
			t.Fatalf("overhead %d, PubOverhead %d", got, PubOverhead(blinded, 5))
		}
		for n := 0; n < len(b); n++ {
			if m, err := ParsePub(b[:n]); err == nil && m.Verify() == nil {
				t.Fatalf("truncated to %d accepted", n)
			}
		}
		if m, err := ParsePub(append(append([]byte(nil), b...), 0)); err == nil && m.Verify() == nil {
			t.Fatal("extended message accepted")
		}
	}
}

func TestPublisherKeyChecks(t *testing.T) {
	pub := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32)).Public().(ed25519.PublicKey)
	if err := CheckPublisherKey(pub); err != nil {
		t.Fatal(err)
	}
	// The 8-torsion points (encodings from RFC 8032 / libsodium's blocklist).
	for _, h := range []string{
		"0100000000000000000000000000000000000000000000000000000000000000",
		"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"0000000000000000000000000000000000000000000000000000000000000000",
		"0000000000000000000000000000000000000000000000000000000000000080",
		"26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
		"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
	} {
		if CheckPublisherKey(mustHex(t, h)) == nil {
			t.Errorf("small-order point %s accepted", h)
		}
	}
}

func mustHex(t *testing.T, h string) []byte {
	b := make([]byte, len(h)/2)
	for i := range b {
		var v byte
		for _, c := range h[2*i : 2*i+2] {
			v <<= 4
			switch {
			case c >= '0' && c <= '9':
				v |= byte(c - '0')
			default:
				v |= byte(c-'a') + 10
			}
		}
		b[i] = v
	}
	return b
}

// FuzzParsePub: no input panics the parsers, and a bundle that parses
// re-encodes to the same bytes (one encoding per bundle).
func FuzzParsePub(f *testing.F) {
	b, _ := pubTestMessage(f, true)
	f.Add(b)
	c, _ := pubTestMessage(f, false)
	f.Add(c)
	pub := b[26 : 26+32]
	bundle := AppendBundle(nil, &Bundle{Publisher: pub, Senders: []BundleKey{{ID: 1}}, Tags: []BundleKey{{ID: 2}, {ID: 3}}})
	f.Add(bundle)
	f.Fuzz(func(t *testing.T, in []byte) {
		if m, err := ParsePub(in); err == nil {
			_ = m.Verify()
			var k [KeySize]byte
			_, _, _ = m.Open(&k)
		}
		if len(in) >= 2+PubKeySize {
			if bd, err := ParseBundle(in, in[2:2+PubKeySize]); err == nil {
				if again := AppendBundle(nil, &bd); !bytes.Equal(again, in) {
					t.Fatalf("bundle re-encodes differently")
				}
			}
		}
		_, _ = ParseKeyRequest(in)
	})
}
