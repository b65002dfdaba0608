package secsock

// Publisher identities for sealed PUB/SUB (SPEC.md §18.1): Ed25519 keys.
// A PublisherKey is accepted only in its canonical encoding of a
// prime-order point, so each publisher has one identity.

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/secsock/secsock/internal/wire"
)

// PublisherKey is a publisher's Ed25519 public key (32 bytes). Its text
// form (String) is Z85, as for PublicKey.
type PublisherKey [wire.PubKeySize]byte

// String returns the 40-character Z85 text of k.
func (k PublisherKey) String() string { return z85Encode(k[:]) }

// NewPublisherKey returns the PublisherKey of 32 raw bytes: the
// canonical encoding of an Ed25519 point of prime order. Small-order,
// mixed-order and non-canonical encodings give ErrBadKey.
func NewPublisherKey(b []byte) (PublisherKey, error) {
	var k PublisherKey
	if err := wire.CheckPublisherKey(b); err != nil {
		return k, fmt.Errorf("secsock: publisher key: %w", ErrBadKey)
	}
	copy(k[:], b)
	return k, nil
}

// ParsePublisherKey parses a PublisherKey from Z85, hex or base64 text,
// with the checks of NewPublisherKey.
func ParsePublisherKey(s string) (PublisherKey, error) {
	b, err := decodeKeyText(s)
	if err != nil {
		return PublisherKey{}, fmt.Errorf("secsock: publisher key: %w", err)
	}
	return NewPublisherKey(b)
}

// SigningKey is a publisher's Ed25519 private key. As SecretKey, no fmt
// verb and no logger prints it: they print "SigningKey(public=…)". The
// zero value is not a key: use GenerateSigningKey or NewSigningKey.
type SigningKey struct {
	priv   **ed25519.PrivateKey
	public PublisherKey
}

// GenerateSigningKey returns a new signing key from crypto/rand.
func GenerateSigningKey() (SigningKey, error) { return GenerateSigningKeyFrom(rand.Reader) }

// GenerateSigningKeyFrom returns the signing key whose 32-byte seed is
// read from r (for tests and vectors).
func GenerateSigningKeyFrom(r io.Reader) (SigningKey, error) {
	var seed [ed25519.SeedSize]byte
	defer clear(seed[:])
	if _, err := io.ReadFull(r, seed[:]); err != nil {
		return SigningKey{}, fmt.Errorf("secsock: reading randomness: %w", err)
	}
	return NewSigningKey(seed[:])
}

// NewSigningKey returns the signing key of a 32-byte Ed25519 seed (RFC
// 8032), which it copies.
func NewSigningKey(seed []byte) (SigningKey, error) {
	if len(seed) != ed25519.SeedSize {
		return SigningKey{}, fmt.Errorf("secsock: signing key seed is %d bytes, want %d: %w", len(seed), ed25519.SeedSize, ErrBadKey)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	p := &priv
	var k SigningKey
	k.priv = &p
	copy(k.public[:], priv.Public().(ed25519.PublicKey))
	return k, nil
}

// ParseSigningKey reads a seed from Z85, hex or base64 text.
func ParseSigningKey(s string) (SigningKey, error) {
	b, err := decodeKeyText(s)
	if err != nil {
		return SigningKey{}, fmt.Errorf("secsock: signing key: %w", err)
	}
	defer clear(b)
	return NewSigningKey(b)
}

// Reveal returns the Z85 text of the seed. Handle it as a secret.
func (k SigningKey) Reveal() string {
	if k.priv == nil {
		return ""
	}
	return z85Encode((**k.priv).Seed())
}

// Public returns the publisher key of k.
func (k SigningKey) Public() PublisherKey { return k.public }

// IsZero reports whether k is the zero value.
func (k SigningKey) IsZero() bool { return k.priv == nil }

func (k SigningKey) private() ed25519.PrivateKey { return **k.priv }

// String names the public key only.
func (k SigningKey) String() string {
	if k.IsZero() {
		return "SigningKey(none)"
	}
	return "SigningKey(public=" + k.public.String() + ")"
}

// GoString is String.
func (k SigningKey) GoString() string { return k.String() }

// Format prints String for every verb.
func (k SigningKey) Format(f fmt.State, verb rune) {
	s := k.String()
	if w, ok := f.Width(); ok && w > len(s) {
		if f.Flag('-') {
			s += strings.Repeat(" ", w-len(s))
		} else {
			s = strings.Repeat(" ", w-len(s)) + s
		}
	}
	io.WriteString(f, s)
}

// LogValue implements slog.LogValuer: loggers record String.
func (k SigningKey) LogValue() slog.Value { return slog.StringValue(k.String()) }

// bytes returns k as a slice (a copy).
func (k PublisherKey) bytes() []byte { return append([]byte(nil), k[:]...) }
