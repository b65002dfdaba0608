package secsock

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"strings"

	"golang.org/x/crypto/curve25519"
)

// KeySize is the size in bytes of public and secret keys (curve25519).
const KeySize = 32

// PublicKey is a curve25519 public key. Its text form (String) is the
// 40-character Z85 encoding used by ZeroMQ CURVE, so keys made by
// zmq_curve_keypair or curve_keygen can be used as they are.
type PublicKey [KeySize]byte

// SecretKey is a curve25519 secret key together with its public key.
// The zero value is not a valid key: use GenerateKey or ParseSecretKey.
//
// String and the fmt verbs never print the secret (they print
// "SecretKey(public=…)"), so a key that ends up in a log message does not
// leak; Reveal returns the text encoding on purpose.
type SecretKey struct {
	secret [KeySize]byte
	public PublicKey
}

// GenerateKey returns a new key pair read from crypto/rand.
func GenerateKey() (SecretKey, error) { return GenerateKeyFrom(rand.Reader) }

// GenerateKeyFrom returns a new key pair whose secret is read from r.
// It exists for deterministic tests and test vectors; use GenerateKey
// otherwise.
func GenerateKeyFrom(r io.Reader) (SecretKey, error) {
	var b [KeySize]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return SecretKey{}, fmt.Errorf("secsock: reading randomness: %w", err)
	}
	return NewSecretKey(b[:])
}

// NewSecretKey returns the SecretKey for 32 raw secret bytes (clamping is
// done by curve25519 and does not change the stored bytes).
func NewSecretKey(b []byte) (SecretKey, error) {
	if len(b) != KeySize {
		return SecretKey{}, fmt.Errorf("secsock: secret key is %d bytes, want %d: %w", len(b), KeySize, ErrBadKey)
	}
	var k SecretKey
	copy(k.secret[:], b)
	pub, err := curve25519.X25519(k.secret[:], curve25519.Basepoint)
	if err != nil {
		return SecretKey{}, fmt.Errorf("secsock: secret key: %w", ErrBadKey)
	}
	copy(k.public[:], pub)
	return k, nil
}

// Public returns the public key of k.
func (k SecretKey) Public() PublicKey { return k.public }

// IsZero reports whether k is the zero value (no key).
func (k SecretKey) IsZero() bool { return k.public == PublicKey{} }

// String returns a description that names the public key only.
func (k SecretKey) String() string {
	if k.IsZero() {
		return "SecretKey(none)"
	}
	return "SecretKey(public=" + k.public.String() + ")"
}

// GoString is like String, so that %#v does not print the secret either.
func (k SecretKey) GoString() string { return k.String() }

// Reveal returns the 40-character Z85 text of the secret key. ParseSecretKey
// reads it back. Handle the result as a secret.
func (k SecretKey) Reveal() string { return z85Encode(k.secret[:]) }

// Equal reports whether k and o are the same key, in constant time.
func (k SecretKey) Equal(o SecretKey) bool {
	return subtle.ConstantTimeCompare(k.secret[:], o.secret[:]) == 1
}

// String returns the 40-character Z85 encoding of k. ParsePublicKey reads
// it back.
func (k PublicKey) String() string { return z85Encode(k[:]) }

// IsZero reports whether k is the zero value (no key).
func (k PublicKey) IsZero() bool { return k == PublicKey{} }

// ParsePublicKey parses a public key from its 40-character Z85 form, 64
// hex digits, or base64 (standard or URL alphabet, padded or not).
// Surrounding white space is ignored. Keys of small order, which would give
// a predictable shared secret, are refused with ErrWeakKey.
func ParsePublicKey(s string) (PublicKey, error) {
	b, err := decodeKeyText(s)
	if err != nil {
		return PublicKey{}, fmt.Errorf("secsock: public key: %w", err)
	}
	var k PublicKey
	copy(k[:], b)
	if err := checkPublicKey(k); err != nil {
		return PublicKey{}, err
	}
	return k, nil
}

// ParseSecretKey parses a secret key in the same forms as ParsePublicKey.
// Error messages never include the input.
func ParseSecretKey(s string) (SecretKey, error) {
	b, err := decodeKeyText(s)
	if err != nil {
		return SecretKey{}, fmt.Errorf("secsock: secret key: %w", err)
	}
	return NewSecretKey(b)
}

// checkPublicKey refuses keys of small order (including zero): for those
// the curve25519 output is all zeros whatever the secret, so a box made
// with them would be forgeable by anyone. A clamped scalar is a multiple of
// the cofactor, so any fixed scalar detects them.
func checkPublicKey(k PublicKey) error {
	if _, err := curve25519.X25519(probeScalar[:], k[:]); err != nil {
		return fmt.Errorf("secsock: public key %s: %w", k, ErrWeakKey)
	}
	return nil
}

var probeScalar = [KeySize]byte{1: 1}

func decodeKeyText(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	var (
		b   []byte
		err error
	)
	switch len(s) {
	case 40:
		b, err = z85Decode(s)
	case 64:
		b, err = hex.DecodeString(s)
	case 43:
		b, err = base64.RawStdEncoding.DecodeString(strings.NewReplacer("-", "+", "_", "/").Replace(s))
	case 44:
		b, err = base64.StdEncoding.DecodeString(strings.NewReplacer("-", "+", "_", "/").Replace(s))
	default:
		return nil, fmt.Errorf("text of length %d is not a key (want 40 Z85, 64 hex or 44 base64 characters): %w", len(s), ErrBadKey)
	}
	if err != nil || len(b) != KeySize {
		return nil, fmt.Errorf("bad key encoding: %w", ErrBadKey)
	}
	return b, nil
}

// Z85 as specified by ZeroMQ RFC 32, for inputs whose length is a multiple
// of 4.
const z85Alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"

var z85Value = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i := 0; i < len(z85Alphabet); i++ {
		t[z85Alphabet[i]] = byte(i)
	}
	return t
}()

func z85Encode(b []byte) string {
	out := make([]byte, 0, len(b)*5/4)
	for i := 0; i+4 <= len(b); i += 4 {
		v := uint32(b[i])<<24 | uint32(b[i+1])<<16 | uint32(b[i+2])<<8 | uint32(b[i+3])
		var chunk [5]byte
		for j := 4; j >= 0; j-- {
			chunk[j] = z85Alphabet[v%85]
			v /= 85
		}
		out = append(out, chunk[:]...)
	}
	return string(out)
}

func z85Decode(s string) ([]byte, error) {
	if len(s)%5 != 0 {
		return nil, ErrBadKey
	}
	out := make([]byte, 0, len(s)*4/5)
	for i := 0; i < len(s); i += 5 {
		var v uint64
		for j := 0; j < 5; j++ {
			d := z85Value[s[i+j]]
			if d == 0xff {
				return nil, ErrBadKey
			}
			v = v*85 + uint64(d)
		}
		if v > 0xffffffff {
			return nil, ErrBadKey
		}
		out = append(out, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	}
	return out, nil
}
