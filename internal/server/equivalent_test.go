package server

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"slices"
	"testing"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
	"github.com/secsock/secsock/internal/wire"
)

// order8 is the edwards25519 encoding of a point of order 8; its
// multiples are the 8 points of order dividing 8.
const order8 = "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"

// equivalents returns the 16 byte strings that X25519 treats as pub: u(P+T)
// for each T of order dividing 8, with bit 255 clear and set. pub itself
// is the first.
func equivalents(t testing.TB, pub [32]byte) [][32]byte {
	t.Helper()
	var u, one, y field.Element
	u.SetBytes(pub[:])
	one.One()
	y.Multiply(new(field.Element).Subtract(&u, &one), new(field.Element).Invert(new(field.Element).Add(&u, &one)))
	p, err := new(edwards25519.Point).SetBytes(y.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	tb, _ := hex.DecodeString(order8)
	t8, err := new(edwards25519.Point).SetBytes(tb)
	if err != nil {
		t.Fatal(err)
	}
	tor := edwards25519.NewIdentityPoint()
	var out [][32]byte
	for range 8 {
		q := new(edwards25519.Point).Add(p, tor)
		tor.Add(tor, t8)
		// u = (1 + y) / (1 - y) from the encoded y.
		enc := q.Bytes()
		enc[31] &= 0x7f
		var qy field.Element
		qy.SetBytes(enc)
		var e [32]byte
		copy(e[:], new(field.Element).Multiply(new(field.Element).Add(&one, &qy), new(field.Element).Invert(new(field.Element).Subtract(&one, &qy))).Bytes())
		hi := e
		hi[31] |= 0x80
		out = append(out, e, hi)
	}
	return out
}

// TestEquivalentsMatchIndependentData checks the helper above against
// shared data computed without this project's code.
func TestEquivalentsMatchIndependentData(t *testing.T) {
	raw, err := os.ReadFile("../../testdata/x25519-equivalent/equivalent.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Entries []struct {
			Public, Peer_secret, Shared_secret string
			Equivalent                         []string
		}
	}
	if err := json.Unmarshal(raw, &doc); err != nil || len(doc.Entries) != 3 {
		t.Fatalf("equivalent.json: %v", err)
	}
	for _, e := range doc.Entries {
		var pub [32]byte
		b, _ := hex.DecodeString(e.Public)
		copy(pub[:], b)
		var got []string
		for _, q := range equivalents(t, pub) {
			got = append(got, hex.EncodeToString(q[:]))
		}
		want := append([]string{e.Public}, e.Equivalent...)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("equivalents of %s differ from the shared data", e.Public)
		}
	}
}

// TestOneValidEncodingPerKey: of the 16 encodings of each key, exactly
// the one X25519(c, 9) gives is a valid long-term key (SPEC.md §4.1), and
// all of them agree in X25519, which is why the rule is needed.
func TestOneValidEncodingPerKey(t *testing.T) {
	raw, err := os.ReadFile("../../testdata/x25519-equivalent/equivalent.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Entries []struct {
			Public     string
			PeerSecret string `json:"peer_secret"`
			Shared     string `json:"shared_secret"`
			Equivalent []string
		}
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	for _, e := range doc.Entries {
		ps, _ := hex.DecodeString(e.PeerSecret)
		var peer [32]byte
		copy(peer[:], ps)
		valid := 0
		for _, h := range append([]string{e.Public}, e.Equivalent...) {
			b, _ := hex.DecodeString(h)
			var k [32]byte
			copy(k[:], b)
			dh, err := wire.X25519(&peer, &k)
			if err != nil || hex.EncodeToString(dh[:]) != e.Shared {
				t.Fatalf("%s: X25519 does not give the shared secret", h)
			}
			if wire.CheckLongTermKey(&k) == nil {
				valid++
				if h != e.Public {
					t.Fatalf("%s accepted; only %s should be", h, e.Public)
				}
			}
		}
		if valid != 1 {
			t.Fatalf("%s: %d valid encodings, want 1", e.Public, valid)
		}
	}
}
