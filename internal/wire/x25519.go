package wire

// Key agreement and key checks on curve25519 (SPEC.md §4.1). The only
// place where scalar multiplications happen, so that tests can count them.

import (
	"crypto/ecdh"
	"crypto/subtle"
	"sync/atomic"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
	"golang.org/x/crypto/curve25519"
)

// ScalarMults counts the X25519 agreements done by X25519 (key checks and
// key generation are not counted): tests and benchmarks read it to show
// that steady state does none.
var ScalarMults atomic.Uint64

// X25519 returns X25519(secret, peer). An all-zero output (peer of small
// order) is ErrWeakKey. It costs two scalar multiplications: for a secret
// used more than once, use a PrivateKey.
func X25519(secret, peer *[KeySize]byte) ([KeySize]byte, error) {
	ScalarMults.Add(1)
	var out [KeySize]byte
	dh, err := curve25519.X25519(secret[:], peer[:])
	if err != nil {
		return out, ErrWeakKey
	}
	copy(out[:], dh)
	clear(dh)
	return out, nil
}

// PrivateKey is an X25519 secret prepared for repeated agreements: each
// costs one scalar multiplication, where X25519 costs two (x/crypto's
// curve25519.X25519 derives the public key as well).
type PrivateKey struct{ k *ecdh.PrivateKey }

// NewPrivateKey prepares secret (one scalar multiplication, not counted).
func NewPrivateKey(secret *[KeySize]byte) (*PrivateKey, error) {
	k, err := ecdh.X25519().NewPrivateKey(secret[:])
	if err != nil {
		return nil, ErrWeakKey
	}
	return &PrivateKey{k: k}, nil
}

// Agree returns X25519(p, peer); an all-zero output is ErrWeakKey.
func (p *PrivateKey) Agree(peer *[KeySize]byte) ([KeySize]byte, error) {
	ScalarMults.Add(1)
	var out [KeySize]byte
	pub, err := ecdh.X25519().NewPublicKey(peer[:])
	if err != nil {
		return out, ErrWeakKey
	}
	dh, err := p.k.ECDH(pub)
	if err != nil {
		return out, ErrWeakKey // crypto/ecdh refuses an all-zero output
	}
	copy(out[:], dh)
	clear(dh)
	return out, nil
}

// Public returns the public key of a secret key, refusing all-zero
// secrets (an unset buffer).
func Public(secret *[KeySize]byte) ([KeySize]byte, error) {
	var pub [KeySize]byte
	var zero [KeySize]byte
	if subtle.ConstantTimeCompare(secret[:], zero[:]) == 1 {
		return pub, ErrZeroSecret
	}
	p, err := curve25519.X25519(secret[:], curve25519.Basepoint)
	if err != nil {
		return pub, ErrWeakKey
	}
	copy(pub[:], p)
	return pub, nil
}

// Canonical reports whether k, read as a little-endian integer, is below
// p = 2^255 - 19 (so bit 255 is clear).
func Canonical(k *[KeySize]byte) bool {
	switch {
	case k[31] > 0x7f:
		return false
	case k[31] < 0x7f:
		return true
	}
	for i := 30; i >= 1; i-- {
		if k[i] != 0xff {
			return true
		}
	}
	return k[0] < 0xed
}

// CheckLongTermKey reports whether k is a valid long-term public key
// (SPEC.md §4.1): canonical, and a point of the prime-order subgroup other
// than the identity. Every X25519(c, 9) passes; the other 15 encodings
// that agree with it in every key exchange fail, so one key has one byte
// string. It costs about one scalar multiplication (not counted in
// ScalarMults).
func CheckLongTermKey(k *[KeySize]byte) error {
	if !Canonical(k) {
		return ErrNonCanonical
	}
	var u, one, num, den, y field.Element
	if _, err := u.SetBytes(k[:]); err != nil {
		return ErrNonCanonical
	}
	one.One()
	num.Subtract(&u, &one)
	den.Add(&u, &one)
	if den.Equal(new(field.Element).Zero()) == 1 {
		return ErrInvalidKey // u = -1: no Edwards image
	}
	y.Multiply(&num, den.Invert(&den))
	p, err := new(edwards25519.Point).SetBytes(y.Bytes())
	if err != nil {
		return ErrInvalidKey // on the twist
	}
	id := edwards25519.NewIdentityPoint()
	if new(edwards25519.Point).MultByCofactor(p).Equal(id) == 1 {
		return ErrWeakKey
	}
	q := new(edwards25519.Point).VarTimeDoubleScalarBaseMult(orderMinusOne, p, edwards25519.NewScalar())
	if q.Add(q, p).Equal(id) != 1 {
		return ErrInvalidKey // has a torsion component
	}
	return nil
}

// orderMinusOne is ℓ - 1, so that [ℓ-1]P + P = [ℓ]P.
var orderMinusOne = func() *edwards25519.Scalar {
	b := [32]byte{0xec, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 31: 0x10}
	s, err := edwards25519.NewScalar().SetCanonicalBytes(b[:])
	if err != nil {
		panic(err)
	}
	return s
}()

// Public returns the public key of p.
func (p *PrivateKey) Public() [KeySize]byte {
	var pub [KeySize]byte
	copy(pub[:], p.k.PublicKey().Bytes())
	return pub
}
