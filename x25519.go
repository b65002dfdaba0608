package secsock

// Key agreement and key generation on curve25519: the only place where
// scalar multiplications happen, so that tests can count them. No I/O.

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"io"
	"math/big"
	"sync"
	"sync/atomic"

	"golang.org/x/crypto/curve25519"
	"golang.org/x/crypto/salsa20/salsa"
)

// scalarMults counts curve25519 scalar multiplications done by precompute
// (and key checks are not counted): tests and benchmarks read it to show
// that steady state does none.
var scalarMults atomic.Uint64

// sharedKey is what a pair of keys agrees on: the crypto_box key
// (HSalsa20 of the X25519 output), and AES-GCM keys derived from it on
// first use.
type sharedKey struct {
	box      [32]byte
	gcmOnce  sync.Once
	c2s, s2c cipher.AEAD
}

// precompute computes crypto_box_beforenm(peer, secret). Peers of small
// order give an all-zero X25519 output and are refused, as libsodium does.
func precompute(peer PublicKey, secret *[KeySize]byte) (*sharedKey, error) {
	scalarMults.Add(1)
	shared, err := curve25519.X25519(secret[:], peer[:])
	if err != nil {
		return nil, ErrWeakKey
	}
	k := new(sharedKey)
	var s [32]byte
	copy(s[:], shared)
	clear(shared)
	salsa.HSalsa20(&k.box, &zeroNonce16, &s, &salsa.Sigma)
	clear(s[:])
	return k, nil
}

func (k *sharedKey) gcm() (c2s, s2c cipher.AEAD) {
	k.gcmOnce.Do(func() {
		k.c2s = newGCM(k.box[:], labelGCMC2S)
		k.s2c = newGCM(k.box[:], labelGCMS2C)
	})
	return k.c2s, k.s2c
}

func newGCM(key, label []byte) cipher.AEAD {
	m := hmac.New(sha256.New, key)
	m.Write(label)
	block, err := aes.NewCipher(m.Sum(nil))
	if err != nil {
		panic(err) // 32-byte key: cannot happen
	}
	a, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return a
}

// generateShortTermKey makes a client short-term key pair C', c'. It is
// GenerateKeyFrom with a faster public key: instead of the X25519 ladder
// on the base point, crypto/ed25519's fixed-base table computes c'·B on
// the Edwards curve (the secret is the clamped SHA-512 of 32 random
// bytes, exactly Ed25519's secret scalar), and the birational map gives
// the Montgomery u = (1 + y) / (1 - y) mod 2^255 - 19, the X25519 public
// key of c'. About a quarter of the time on amd64; it shortens the first
// request of every fresh socket. TestShortTermKeyMatchesX25519 checks it
// against curve25519.X25519(c', 9). The inversion is not constant time,
// but its input is the public key.
func generateShortTermKey(r io.Reader) (SecretKey, error) {
	var seed [32]byte
	if _, err := io.ReadFull(r, seed[:]); err != nil {
		return SecretKey{}, fmt.Errorf("secsock: reading randomness: %w", err)
	}
	h := sha512.Sum512(seed[:])
	k := newSecretKeyCell()
	copy(k.bytes()[:], h[:32])
	clear(h[:])
	k.bytes()[0] &= 248
	k.bytes()[31] &= 127
	k.bytes()[31] |= 64
	priv := ed25519.NewKeyFromSeed(seed[:])
	clear(seed[:])
	var be [32]byte // y, big-endian, without the sign bit of x
	for i := range be {
		be[i] = priv[63-i]
	}
	clear(priv)
	be[0] &= 0x7f
	y := new(big.Int).SetBytes(be[:])
	num := new(big.Int).Add(y, big1)
	num.Mod(num, p25519)
	den := new(big.Int).Sub(p25519, y)
	den.Add(den, big1)
	den.Mod(den, p25519)
	if den.Sign() == 0 || num.Sign() == 0 || den.ModInverse(den, p25519) == nil {
		// c'·B is the identity or of order 2: impossible for a scalar of
		// this form short of a 2^-250 chance; the ladder decides.
		return NewSecretKey(k.bytes()[:])
	}
	u := num.Mul(num, den)
	u.Mod(u, p25519)
	u.FillBytes(be[:])
	for i := range k.public {
		k.public[i] = be[31-i]
	}
	return k, nil
}

var (
	big1   = big.NewInt(1)
	p25519 = new(big.Int).Sub(new(big.Int).Lsh(big1, 255), big.NewInt(19))
)
