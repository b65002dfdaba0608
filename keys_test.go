package secsock

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.nanomsg.org/mangos/v3"
	"golang.org/x/crypto/curve25519"

	"github.com/secsock/secsock/internal/equivalent"
)

// equivalentKey is one entry of testdata/x25519-equivalent: a public key
// and all 16 byte strings (itself first) that X25519 treats as that key.
type equivalentKey struct {
	comment string
	public  PublicKey
	all     []PublicKey
}

func loadEquivalentKeys(t *testing.T) []equivalentKey {
	t.Helper()
	entries, err := equivalent.Load("testdata/x25519-equivalent/equivalent.json")
	if err != nil {
		t.Fatal(err)
	}
	var out []equivalentKey
	for _, e := range entries {
		k := equivalentKey{comment: e.Comment, public: PublicKey(e.Public)}
		seen := map[PublicKey]bool{}
		for _, p := range e.All {
			// The data means what it says: every encoding agrees with
			// the peer, so a test that accepted two would accept two
			// names for one key.
			if got, err := curve25519.X25519(e.PeerSecret[:], p[:]); err != nil || !bytes.Equal(got, e.SharedSecret[:]) {
				t.Fatalf("%s: %x does not give the shared secret", e.Comment, p)
			}
			if seen[p] {
				t.Fatalf("%s: %x listed twice", e.Comment, p)
			}
			seen[p] = true
			k.all = append(k.all, p)
		}
		if len(k.all) != 16 {
			t.Fatalf("%s: %d encodings, want 16", e.Comment, len(k.all))
		}
		out = append(out, k)
	}
	if len(out) != 3 {
		t.Fatalf("%d keys in equivalent.json, want 3", len(out))
	}
	return out
}

// TestOneEncodingPerKey: of the 16 byte strings X25519 treats as one
// key, exactly one (the canonical, prime-order one) is accepted wherever a
// public key is parsed or configured; the others are refused with
// ErrBadKey, saying why.
func TestOneEncodingPerKey(t *testing.T) {
	keys := loadEquivalentKeys(t)
	dir := t.TempDir()
	req, err := NewReqSocket()
	if err != nil {
		t.Fatal(err)
	}
	defer req.Close()
	rep, err := NewRepSocket()
	if err != nil {
		t.Fatal(err)
	}
	defer rep.Close()
	zmqServer, err := ParseSecretKey(zmqServerSecret)
	if err != nil || zmqServer.Public() != keys[0].public {
		t.Fatalf("the first entry is not libzmq's server key: %v", err)
	}

	text := func(enc func([]byte) string) func(PublicKey) (PublicKey, error) {
		return func(p PublicKey) (PublicKey, error) { return ParsePublicKey(enc(p[:])) }
	}
	n := 0
	file := func(content func(PublicKey) string) func(PublicKey) (PublicKey, error) {
		return func(p PublicKey) (PublicKey, error) {
			n++
			path := filepath.Join(dir, strings.Repeat("k", n%3+1)+hex.EncodeToString([]byte{byte(n)})+".pub")
			if err := os.WriteFile(path, []byte(content(p)), 0o644); err != nil {
				t.Fatal(err)
			}
			return LoadPublicKeyFile(path)
		}
	}
	surfaces := []struct {
		name  string
		parse func(PublicKey) (PublicKey, error)
	}{
		{"ParsePublicKey Z85", text(z85Encode)},
		{"ParsePublicKey hex", text(hex.EncodeToString)},
		{"ParsePublicKey HEX", text(func(b []byte) string { return strings.ToUpper(hex.EncodeToString(b)) })},
		{"ParsePublicKey base64", text(base64.StdEncoding.EncodeToString)},
		{"ParsePublicKey base64 raw", text(base64.RawStdEncoding.EncodeToString)},
		{"ParsePublicKey base64url", text(base64.URLEncoding.EncodeToString)},
		{"ParsePublicKey base64url raw", text(base64.RawURLEncoding.EncodeToString)},
		{"ParseAuthorizedKeys", func(p PublicKey) (PublicKey, error) {
			aks, err := ParseAuthorizedKeys(strings.NewReader(authorizedKeyHeader + "\n\n" + p.String() + " alice\n"))
			if err != nil {
				return PublicKey{}, err
			}
			return aks[0].Key, nil
		}},
		{"ParsePublicKeyFile", func(p PublicKey) (PublicKey, error) {
			ak, err := ParsePublicKeyFile([]byte(publicKeyHeader + "\n" + hex.EncodeToString(p[:]) + " alice\n"))
			return ak.Key, err
		}},
		{"LoadPublicKeyFile", file(func(p PublicKey) string { return string(FormatPublicKeyFile(p, "bob")) })},
		{"LoadPublicKeyFile, bare base64", file(func(p PublicKey) string { return base64.StdEncoding.EncodeToString(p[:]) + "\n" })},
		{"WritePublicKeyFile", func(p PublicKey) (PublicKey, error) {
			n++
			path := filepath.Join(dir, "written"+hex.EncodeToString([]byte{byte(n)})+".pub")
			if err := WritePublicKeyFile(path, p, "carol"); err != nil {
				if _, serr := os.Stat(path); serr == nil {
					t.Errorf("WritePublicKeyFile refused %x but wrote the file", p[:])
				}
				return PublicKey{}, err
			}
			return LoadPublicKeyFile(path)
		}},
		{"OptionServerKey", func(p PublicKey) (PublicKey, error) {
			if err := req.SetOption(OptionServerKey, p); err != nil {
				return PublicKey{}, err
			}
			v, err := req.GetOption(OptionServerKey)
			return v.(PublicKey), err
		}},
		{"OptionServerKey text", func(p PublicKey) (PublicKey, error) {
			if err := req.SetOption(OptionServerKey, p.String()); err != nil {
				return PublicKey{}, err
			}
			v, err := req.GetOption(OptionServerKey)
			return v.(PublicKey), err
		}},
		{"OptionAuthorizedKeys", func(p PublicKey) (PublicKey, error) {
			if err := rep.SetOption(OptionAuthorizedKeys, []PublicKey{p}); err != nil {
				return PublicKey{}, err
			}
			v, err := rep.GetOption(OptionAuthorizedKeys)
			return v.([]PublicKey)[0], err
		}},
	}
	for _, s := range surfaces {
		for _, k := range keys {
			var accepted []PublicKey
			for _, p := range k.all {
				got, err := s.parse(p)
				if err == nil {
					if got != p {
						t.Errorf("%s: %x parsed as %x", s.name, p[:], got[:])
					}
					accepted = append(accepted, p)
					continue
				}
				if !errors.Is(err, ErrBadKey) || errors.Is(err, ErrWeakKey) {
					t.Errorf("%s: %x: got %v, want ErrBadKey", s.name, p[:], err)
				}
				if !strings.Contains(err.Error(), "not the canonical encoding of a curve25519 public key") {
					t.Errorf("%s: %x: message %q does not say why", s.name, p[:], err)
				}
			}
			if len(accepted) != 1 || accepted[0] != k.public {
				t.Errorf("%s, %s: accepted %d of the 16 encodings (%v), want only the canonical %v", s.name, k.comment, len(accepted), accepted, k.public)
			}
		}
	}

	// A secret key file's public-key line: only the canonical encoding
	// of the secret's public key matches it.
	accepted := 0
	for _, p := range keys[0].all {
		data := secretKeyHeader + "\npublic-key: " + p.String() + "\nsecret-key: " + zmqServerSecret + "\n"
		k, err := ParseSecretKeyFile([]byte(data))
		if err != nil {
			var fe *FileError
			if !errors.As(err, &fe) || fe.Line != 2 || !errors.Is(err, ErrBadKey) || !strings.Contains(err.Error(), "not the canonical encoding") {
				t.Errorf("secret key file with public-key %x: %v", p[:], err)
			}
			continue
		}
		if p != keys[0].public || k.Public() != p {
			t.Errorf("secret key file accepted public-key %x", p[:])
		}
		accepted++
	}
	if accepted != 1 {
		t.Errorf("secret key file: %d public-key encodings accepted, want 1", accepted)
	}
}

// TestAuthorizedKeysOneLinePerKey: an authorized-keys file cannot list
// one key twice under two encodings; the other encoding is refused with
// FILE:LINE, whichever comes first, and the file is not loaded.
func TestAuthorizedKeysOneLinePerKey(t *testing.T) {
	keys := loadEquivalentKeys(t)
	alice, bob := keys[1], keys[2]
	dir := t.TempDir()
	for i, other := range alice.all[1:] {
		for _, otherFirst := range []bool{false, true} {
			first, second := alice.public, other
			if otherFirst {
				first, second = other, alice.public
			}
			lines := []string{"# secsock authorized keys v1", first.String() + " alice", bob.public.String() + " bob", second.String() + " alice again"}
			path := filepath.Join(dir, "authorized_keys")
			os.Remove(path)
			if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			wantLine := 4
			if otherFirst {
				wantLine = 2
			}
			aks, err := LoadAuthorizedKeysFile(path)
			var fe *FileError
			if err == nil || !errors.As(err, &fe) || fe.Line != wantLine || !errors.Is(err, ErrBadKey) ||
				!strings.Contains(err.Error(), path+":"+string(rune('0'+wantLine))+": ") ||
				!strings.Contains(err.Error(), "not the canonical encoding") {
				t.Fatalf("encoding %d (first=%v): got %v, %v; want %s:%d, not canonical", i+1, otherFirst, aks, err, path, wantLine)
			}
			if strings.Contains(err.Error(), other.String()) || strings.Contains(err.Error(), hex.EncodeToString(other[:])) {
				t.Fatalf("the error quotes the line: %v", err)
			}
		}
	}
	// The same file with each key once loads, in order.
	good := authorizedKeyHeader + "\n" + alice.public.String() + " alice\n" + bob.public.String() + " bob\n"
	aks, err := ParseAuthorizedKeys(strings.NewReader(good))
	if err != nil || len(aks) != 2 || aks[0].Key != alice.public || aks[1].Key != bob.public {
		t.Fatalf("good file: %v %v", aks, err)
	}
	// So a deny list loaded from a file, or parsed key by key, holds the
	// one encoding every parser returns: no other encoding of a denied
	// key gets past a lookup by bytes, because none parses.
	deny := map[PublicKey]bool{}
	for _, ak := range aks {
		deny[ak.Key] = true
	}
	for _, k := range []equivalentKey{alice, bob} {
		for _, p := range k.all {
			if got, err := ParsePublicKey(p.String()); err == nil && !deny[got] {
				t.Errorf("%x parses and is not in the deny list", p[:])
			}
		}
	}
}

// zeroReader yields zero bytes forever.
type zeroReader struct{}

func (zeroReader) Read(b []byte) (int, error) { clear(b); return len(b), nil }

// TestZeroSecretRefused: an all-zero secret, what an unset buffer looks
// like, is refused with ErrBadKey wherever a secret key is made, parsed
// or set; one set bit is enough to make it a key.
func TestZeroSecretRefused(t *testing.T) {
	zero := make([]byte, KeySize)
	var fails []error
	_, err := NewSecretKey(zero)
	fails = append(fails, err)
	_, err = GenerateKeyFrom(zeroReader{})
	fails = append(fails, err)
	_, err = GenerateKeyFrom(bytes.NewReader(zero))
	fails = append(fails, err)
	texts := []string{z85Encode(zero), hex.EncodeToString(zero), base64.StdEncoding.EncodeToString(zero),
		base64.RawURLEncoding.EncodeToString(zero), " " + z85Encode(zero) + "\n"}
	rep, err := NewRepSocket()
	if err != nil {
		t.Fatal(err)
	}
	defer rep.Close()
	mustSet(t, rep, OptionMechanism, MechanismCurve)
	for _, s := range texts {
		_, err = ParseSecretKey(s)
		fails = append(fails, err)
		fails = append(fails, rep.SetOption(OptionSecretKey, s))
		_, err = ParseSecretKeyFile([]byte(secretKeyHeader + "\nsecret-key: " + s + "\n"))
		fails = append(fails, err)
	}
	path := filepath.Join(t.TempDir(), "zero.key")
	if err := os.WriteFile(path, []byte(secretKeyHeader+"\nsecret-key: "+z85Encode(zero)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = LoadSecretKeyFile(path)
	if err == nil || !strings.Contains(err.Error(), path+":2: ") {
		t.Errorf("LoadSecretKeyFile: %v, want %s:2", err, path)
	}
	fails = append(fails, err)
	for i, err := range fails {
		if !errors.Is(err, ErrBadKey) {
			t.Errorf("case %d: got %v, want ErrBadKey", i, err)
		}
	}
	if err := rep.SetOption(OptionSecretKey, SecretKey{}); !errors.Is(err, mangos.ErrBadValue) {
		t.Errorf("SetOption(zero SecretKey): %v, want ErrBadValue", err)
	}
	if _, err := rep.GetOption(OptionPublicKey); !errors.Is(err, ErrNoKey) {
		t.Errorf("a refused secret was set: %v", err)
	}

	// Not all zeros: a key (clamping makes any 32 bytes a scalar).
	for _, i := range []int{0, 31} {
		b := make([]byte, KeySize)
		b[i] = 1
		k, err := NewSecretKey(b)
		if err != nil || k.IsZero() || checkPublicKey(k.Public()) != nil {
			t.Errorf("secret with byte %d = 1: %v", i, err)
		}
		if _, err := ParseSecretKey(k.Reveal()); err != nil {
			t.Errorf("Reveal of a one-bit secret: %v", err)
		}
	}
}
