package secsock

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/secsock/secsock/internal/wire"
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
// No fmt verb and no logger prints the secret: SecretKey implements
// fmt.Formatter, so %v, %s, %x, %d, %#v and every other verb print
// "SecretKey(public=…)", and slog.LogValuer. The secret bytes live behind
// two pointers, so even printing that does not call methods (fmt on a
// struct that holds a SecretKey in an unexported field, with any verb)
// shows only an address. Reveal returns the text encoding on purpose.
//
// A SecretKey is a small comparable value: copies share the (never
// modified) secret bytes, and are Equal.
type SecretKey struct {
	// secret is nil for the zero value. Two pointers, not one: fmt cannot
	// call methods on unexported fields, and for verbs other than %v, %p,
	// %x, %X, %d, %o and %b it reports a pointer field as "%!s(*T=…)",
	// dereferencing a pointer to an array or struct once to print it; a
	// pointer to a pointer prints as an address only.
	secret **[KeySize]byte
	public PublicKey
}

// GenerateKey returns a new key pair read from crypto/rand.
func GenerateKey() (SecretKey, error) { return GenerateKeyFrom(rand.Reader) }

// GenerateKeyFrom returns a new key pair whose secret is read from r.
// It exists for deterministic tests and test vectors; use GenerateKey
// otherwise. A reader that yields 32 zero bytes gives ErrBadKey.
func GenerateKeyFrom(r io.Reader) (SecretKey, error) {
	var b [KeySize]byte
	defer clear(b[:])
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return SecretKey{}, fmt.Errorf("secsock: reading randomness: %w", err)
	}
	return NewSecretKey(b[:])
}

// errZeroSecret is ErrBadKey for an all-zero secret, which is what an
// unset or failed-to-fill buffer looks like.
var errZeroSecret = fmt.Errorf("secret key is all zeros (an unset buffer?): %w", ErrBadKey)

// NewSecretKey returns the SecretKey for 32 raw secret bytes (clamping is
// done by curve25519 and does not change the stored bytes). It copies b.
// An all-zero b is refused with ErrBadKey.
func NewSecretKey(b []byte) (SecretKey, error) {
	if len(b) != KeySize {
		return SecretKey{}, fmt.Errorf("secsock: secret key is %d bytes, want %d: %w", len(b), KeySize, ErrBadKey)
	}
	secret := new([KeySize]byte)
	copy(secret[:], b)
	pub, err := wire.Public(secret)
	if err != nil {
		clear(secret[:])
		if errors.Is(err, wire.ErrZeroSecret) {
			return SecretKey{}, fmt.Errorf("secsock: %w", errZeroSecret)
		}
		return SecretKey{}, fmt.Errorf("secsock: secret key: %w", ErrBadKey)
	}
	return SecretKey{secret: &secret, public: pub}, nil
}

// bytes returns the secret bytes, for the key agreements of this package.
// Callers must not modify them unless they own every copy of k (the
// bytes are shared by copies). The zero value gives 32 fresh zero bytes.
func (k SecretKey) bytes() *[KeySize]byte {
	if k.secret == nil {
		return new([KeySize]byte)
	}
	return *k.secret
}

// Public returns the public key of k.
func (k SecretKey) Public() PublicKey { return k.public }

// IsZero reports whether k is the zero value (no key).
func (k SecretKey) IsZero() bool { return k.secret == nil }

// String returns a description that names the public key only.
func (k SecretKey) String() string {
	if k.IsZero() {
		return "SecretKey(none)"
	}
	return "SecretKey(public=" + k.public.String() + ")"
}

// GoString is like String, so that %#v does not print the secret either.
func (k SecretKey) GoString() string { return k.String() }

// Format implements fmt.Formatter: every verb (%v, %s, %q, %x, %d, %#v,
// …) prints String, padded to the width if one is given (on the left, or
// on the right with the '-' flag). So no verb prints the secret.
func (k SecretKey) Format(f fmt.State, verb rune) {
	s := k.String()
	pad := ""
	if w, ok := f.Width(); ok && w > len(s) {
		pad = strings.Repeat(" ", w-len(s))
	}
	if f.Flag('-') {
		s, pad = pad, s
	}
	io.WriteString(f, pad)
	io.WriteString(f, s)
}

// LogValue implements slog.LogValuer: loggers record String.
func (k SecretKey) LogValue() slog.Value { return slog.StringValue(k.String()) }

// Reveal returns the 40-character Z85 text of the secret key. ParseSecretKey
// reads it back. Handle the result as a secret.
func (k SecretKey) Reveal() string { return z85Encode(k.bytes()[:]) }

// Equal reports whether k and o are the same key, in constant time.
func (k SecretKey) Equal(o SecretKey) bool {
	return subtle.ConstantTimeCompare(k.bytes()[:], o.bytes()[:]) == 1
}

// String returns the 40-character Z85 encoding of k. ParsePublicKey reads
// it back.
func (k PublicKey) String() string { return z85Encode(k[:]) }

// IsZero reports whether k is the zero value (no key).
func (k PublicKey) IsZero() bool { return k == PublicKey{} }

// ParsePublicKey parses a public key from its 40-character Z85 form, 64
// hex digits, or base64 (standard or URL alphabet, padded or not).
// Surrounding white space is ignored. Only valid long-term keys are
// accepted (SPEC.md §4.1), so each key has one byte string: keys of small
// order, which would give a predictable shared secret, are refused with
// ErrWeakKey; other encodings of a key (non-canonical, or with a torsion
// component) and points that are not keys with ErrBadKey. Error messages
// never include the input.
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
// An all-zero secret is refused with ErrBadKey. Error messages depend only
// on the input's length, so they never include (part of) a secret: an
// all-zero secret gives the same message as a bad encoding.
func ParseSecretKey(s string) (SecretKey, error) {
	b, err := decodeKeyText(s)
	defer clear(b)
	if err == nil {
		var k SecretKey
		if k, err = NewSecretKey(b); err == nil {
			return k, nil
		}
		err = errBadEncoding
	}
	if errors.Is(err, errBadEncoding) {
		return SecretKey{}, fmt.Errorf("secsock: secret key: not a key (bad encoding, or all zeros): %w", ErrBadKey)
	}
	return SecretKey{}, fmt.Errorf("secsock: secret key: %w", err)
}

// errNotCanonical is ErrBadKey for a public key that is not a valid
// long-term key but not of small order either: bit 255 set, u ≥ 2^255-19,
// a torsion component, a point on the twist, or u = -1. The first three
// are other encodings of a key that X25519 would treat alike, refused so
// that allow and deny lists see one byte string per key.
var errNotCanonical = fmt.Errorf(notCanonicalText+": %w", ErrBadKey)

const notCanonicalText = "not the canonical encoding of a curve25519 public key (another encoding of the same key, or not a key)"

// checkPublicKey accepts exactly the valid long-term public keys of
// SPEC.md §4.1: canonical, in the prime-order subgroup, not the identity.
// Every X25519(c, 9) passes. Keys of small order (including zero) give
// ErrWeakKey: for those the curve25519 output is all zeros whatever the
// secret, so a box made with them would be forgeable by anyone. The
// errors do not include the key (the text may be a secret pasted in the
// wrong place).
func checkPublicKey(k PublicKey) error {
	err := wire.CheckLongTermKey((*[KeySize]byte)(&k))
	switch {
	case err == nil:
		return nil
	case errors.Is(err, wire.ErrWeakKey), smallOrder(&k):
		return fmt.Errorf("secsock: public key: %w", ErrWeakKey)
	}
	return fmt.Errorf("secsock: public key: %w", errNotCanonical)
}

// smallOrder reports whether k, read as X25519 reads it (bit 255 masked,
// reduced mod p), is a point of small order: then X25519 with any clamped
// scalar, a multiple of the cofactor, gives all zeros. It lets a
// non-canonical encoding of a small-order point be reported as weak.
func smallOrder(k *PublicKey) bool {
	_, err := curve25519.X25519(probeScalar[:], k[:])
	return err != nil
}

var probeScalar = [KeySize]byte{1: 1}

// errBadEncoding is ErrBadKey for key text of a valid length that does
// not decode to 32 bytes.
var errBadEncoding = fmt.Errorf("bad key encoding: %w", ErrBadKey)

// decodeKeyText decodes key text in any of the forms of ParsePublicKey.
// Its errors depend only on the length of s.
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
		clear(b)
		return nil, errBadEncoding
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
