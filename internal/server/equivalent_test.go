package server

import (
	"bytes"
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

// equivalentData is the shared data of ../../testdata/x25519-equivalent,
// computed without this project's code.
func equivalentData(t *testing.T) []equivalent.Entry {
	t.Helper()
	entries, err := equivalent.Load("../../testdata/x25519-equivalent/equivalent.json")
	if err != nil || len(entries) != 3 {
		t.Fatalf("equivalent.json: %d entries, %v", len(entries), err)
	}
	return entries
}

// TestEquivalentsMatchIndependentData checks the helper above against
// shared data computed without this project's code.
func TestEquivalentsMatchIndependentData(t *testing.T) {
	for _, e := range equivalentData(t) {
		got := equivalents(t, e.Public)
		want := slices.Clone(e.All)
		cmp := func(a, b [32]byte) int { return bytes.Compare(a[:], b[:]) }
		slices.SortFunc(got, cmp)
		slices.SortFunc(want, cmp)
		if !slices.Equal(got, want) {
			t.Fatalf("equivalents of %x differ from the shared data", e.Public)
		}
	}
}

// TestOneValidEncodingPerKey: of the 16 encodings of each key, exactly
// the one X25519(c, 9) gives is a valid long-term key (SPEC.md §4.1), and
// all of them agree in X25519, which is why the rule is needed.
func TestOneValidEncodingPerKey(t *testing.T) {
	for _, e := range equivalentData(t) {
		valid := 0
		for _, k := range e.All {
			dh, err := wire.X25519(&e.PeerSecret, &k)
			if err != nil || dh != e.SharedSecret {
				t.Fatalf("%x: X25519 does not give the shared secret", k)
			}
			if wire.CheckLongTermKey(&k) == nil {
				valid++
				if k != e.Public {
					t.Fatalf("%x accepted; only %x should be", k, e.Public)
				}
			}
		}
		if valid != 1 {
			t.Fatalf("%x: %d valid encodings, want 1", e.Public, valid)
		}
	}
}
