package secsock

import (
	"testing"

	"filippo.io/edwards25519"
)

// addOrder2 returns the encoding of P + T2, T2 = (0, -1) of order 2: a
// point of mixed order whose prime-order part is P.
func addOrder2(t *testing.T, p []byte) []byte {
	t.Helper()
	pt, err := new(edwards25519.Point).SetBytes(p)
	if err != nil {
		t.Fatal(err)
	}
	t2b := make([]byte, 32)
	t2b[0] = 0xec
	for i := 1; i < 31; i++ {
		t2b[i] = 0xff
	}
	t2b[31] = 0x7f
	t2, err := new(edwards25519.Point).SetBytes(t2b)
	if err != nil {
		t.Fatal(err)
	}
	return new(edwards25519.Point).Add(pt, t2).Bytes()
}
