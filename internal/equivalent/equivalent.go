// Package equivalent computes, for tests, the byte strings that X25519
// treats as one public key (SPEC.md §4.1): u(P+T) for each of the 8
// points T of order dividing 8, each with bit 255 clear and set. It is
// computed on edwards25519, independently of the checks under test, and
// internal/server's tests check it against testdata/x25519-equivalent.
package equivalent

import (
	"encoding/hex"
	"errors"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
)

// order8 is the edwards25519 encoding of a point of order 8; its
// multiples are the 8 points of order dividing 8.
const order8 = "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"

// Encodings returns the 16 encodings of pub: pub itself first, then in
// pairs with bit 255 clear (even indices) and set (odd indices).
func Encodings(pub [32]byte) ([][32]byte, error) {
	var u, one, y field.Element
	if _, err := u.SetBytes(pub[:]); err != nil {
		return nil, err
	}
	one.One()
	y.Multiply(new(field.Element).Subtract(&u, &one), new(field.Element).Invert(new(field.Element).Add(&u, &one)))
	p, err := new(edwards25519.Point).SetBytes(y.Bytes())
	if err != nil {
		return nil, errors.New("equivalent: not a point of the curve")
	}
	tb, _ := hex.DecodeString(order8)
	t8, err := new(edwards25519.Point).SetBytes(tb)
	if err != nil {
		return nil, err
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
	return out, nil
}
