package wire

// seal and open per suite (SPEC.md §2): secretbox under a 24-byte nonce
// that carries every header field, or AES-256-GCM under a 12-byte nonce
// with the header as additional data.

import (
	"sync"

	"golang.org/x/crypto/nacl/secretbox"
)

// scratch holds GCM nonces and additional data: slices passed to
// cipher.AEAD methods escape, so stack arrays would cost an allocation
// per message. The bytes are public.
var scratch = sync.Pool{New: func() any { return new([64]byte) }}

func sealBox(dst []byte, key *[32]byte, n *[24]byte, m []byte) []byte {
	return secretbox.Seal(dst, m, n, key)
}

func openBox(dst []byte, key *[32]byte, n *[24]byte, c []byte) ([]byte, error) {
	out, ok := secretbox.Open(dst, c, n, key)
	if !ok {
		return nil, ErrOpen
	}
	return out, nil
}
