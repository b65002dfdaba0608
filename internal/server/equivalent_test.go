package server

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"slices"
	"testing"

	"github.com/secsock/secsock/internal/equivalent"

	"github.com/secsock/secsock/internal/wire"
)

// equivalents returns the 16 byte strings that X25519 treats as pub,
// pub itself first (internal/equivalent).
func equivalents(t testing.TB, pub [32]byte) [][32]byte {
	t.Helper()
	out, err := equivalent.Encodings(pub)
	if err != nil {
		t.Fatal(err)
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
