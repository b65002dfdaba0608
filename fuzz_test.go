package secsock

// Fuzz targets for key text (Z85, hex, base64). The protocol's fuzz
// targets live next to the code they test: internal/wire (parser, client
// side opening, key checks, vouch) and internal/server (the REP side's
// whole check sequence).
//
// The seed corpus lives both in f.Add calls (fuzzSeeds) and as committed
// files under testdata/fuzz/<FuzzName>/; TestFuzzCorpora fails when a
// target's directory is empty or misses a seed, and `go test -run
// TestFuzzCorpora -update-fuzz` rewrites the files from fuzzSeeds.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"strings"
	"testing"

	"github.com/secsock/secsock/internal/fuzzcorpus"
)

var updateFuzz = flag.Bool("update-fuzz", false, "rewrite testdata/fuzz seed files from fuzzSeeds")

// fuzzKey is the secret key named label; the derivation is the one of the
// test vectors, so the seeds name the same keys.
func fuzzKey(label string) SecretKey {
	h := sha256.Sum256([]byte("secsock test vector key " + label))
	k, err := NewSecretKey(h[:])
	if err != nil {
		panic(err)
	}
	return k
}

// fuzzSeeds returns the seed inputs of each key text target, by target
// and seed name. f.Add and the committed files both come from here. The
// key file targets of keyfile_test.go keep their own seeds.
func fuzzSeeds() fuzzcorpus.Seeds {
	out := map[string]map[string][]any{"FuzzParsePublicKey": {}, "FuzzParseSecretKey": {}, "FuzzZ85": {}}
	sec := fuzzKey("server")
	pub := sec.Public()
	keyTexts := map[string]string{
		"z85":            pub.String(),
		"zmq-rfc32":      "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7", // ZeroMQ RFC 32 example public key
		"hex":            hex.EncodeToString(pub[:]),
		"hex-upper":      strings.ToUpper(hex.EncodeToString(pub[:])),
		"base64":         "ABEiM0RVZneImaq7zN3u/wARIjNEVWZ3iJmqu8zd7v8=",
		"base64-raw-url": "ABEiM0RVZneImaq7zN3u_wARIjNEVWZ3iJmqu8zd7v8",
		"spaces":         "  \t" + pub.String() + "\n",
		"empty":          "",
		"short":          "abc",
		"z85-bad-char":   strings.Repeat("~", 40),
		"z85-overflow":   strings.Repeat("#", 40),
		"hex-bad":        strings.Repeat("zz", 32),
		"zero-hex":       strings.Repeat("00", 32),
		"weak-z85":       PublicKey{}.String(),
		"order-8":        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
	}
	for n, s := range keyTexts {
		out["FuzzParsePublicKey"][n] = []any{s}
		out["FuzzParseSecretKey"][n] = []any{s}
	}
	out["FuzzParseSecretKey"]["secret-z85"] = []any{sec.Reveal()}
	for n, s := range map[string]string{"key": pub.String(), "zeros": "00000", "max": "%nSc0", "over": "%nSc1", "bad": "~~~~~", "partial": "abcd", "empty": ""} {
		out["FuzzZ85"][n] = []any{[]byte(s)}
	}
	return out
}

func addSeeds(f *testing.F) {
	for _, args := range fuzzSeeds()[f.Name()] {
		f.Add(args...)
	}
}

// FuzzParsePublicKey: no panic; a parsed key is a valid long-term key and
// prints back to text that parses to it; Z85 and hex have one encoding
// per key, so parse then encode gives the input back.
func FuzzParsePublicKey(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParsePublicKey(s)
		if err != nil {
			if !errors.Is(err, ErrBadKey) && !errors.Is(err, ErrWeakKey) {
				t.Fatalf("error %v is neither ErrBadKey nor ErrWeakKey", err)
			}
			return
		}
		if checkPublicKey(k) != nil {
			t.Fatalf("invalid key %x accepted", k[:])
		}
		back, err := ParsePublicKey(k.String())
		if err != nil || back != k {
			t.Fatalf("String() %q does not parse back: %v", k.String(), err)
		}
		trimmed := strings.TrimSpace(s)
		switch len(trimmed) {
		case 40:
			if k.String() != trimmed {
				t.Fatalf("Z85 %q parses then encodes as %q", trimmed, k.String())
			}
		case 64:
			if hex.EncodeToString(k[:]) != strings.ToLower(trimmed) {
				t.Fatalf("hex %q parses then encodes differently", trimmed)
			}
		}
	})
}

// FuzzParseSecretKey: no panic; Reveal parses back to the same key; an
// error message depends only on the input's length, so it can never
// contain (part of) a secret.
func FuzzParseSecretKey(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseSecretKey(s)
		trimmed := strings.TrimSpace(s)
		if err != nil {
			if !errors.Is(err, ErrBadKey) {
				t.Fatalf("error %v is not ErrBadKey", err)
			}
			_, ref := ParseSecretKey(strings.Repeat("~", len(trimmed))) // never a key
			if ref == nil || ref.Error() != err.Error() {
				t.Fatalf("error message depends on the input: %q vs %v", err.Error(), ref)
			}
			return
		}
		back, err := ParseSecretKey(k.Reveal())
		if err != nil || !back.Equal(k) || back.Public() != k.Public() {
			t.Fatalf("Reveal does not parse back: %v", err)
		}
		if len(trimmed) == 40 && k.Reveal() != trimmed {
			t.Fatalf("Z85 secret does not encode back")
		}
		if strings.Contains(fmt.Sprint(k), k.Reveal()) || strings.Contains(fmt.Sprintf("%#v", k), k.Reveal()) {
			t.Fatal("secret printed")
		}
	})
}

// FuzzZ85: encode then decode is the identity on whole 4-byte groups, and
// decode then encode is the identity on every text that decodes (ZeroMQ
// RFC 32 has one encoding per value).
func FuzzZ85(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		whole := b[:len(b)/4*4]
		enc := z85Encode(whole)
		if len(enc) != len(whole)*5/4 {
			t.Fatalf("encoded %d bytes to %d characters", len(whole), len(enc))
		}
		dec, err := z85Decode(enc)
		if err != nil || !bytes.Equal(dec, whole) {
			t.Fatalf("z85 round trip of %x: %x, %v", whole, dec, err)
		}
		if dec, err := z85Decode(string(b)); err == nil {
			if got := z85Encode(dec); got != string(b) {
				t.Fatalf("z85 %q decodes then encodes as %q", b, got)
			}
		}
	})
}

// TestFuzzCorpora fails when a fuzz target of this package has an empty
// or missing corpus directory, or when a seed of fuzzSeeds is not
// committed as it is generated.
func TestFuzzCorpora(t *testing.T) { fuzzcorpus.Check(t, fuzzSeeds(), *updateFuzz) }
