package secsock

import (
	"crypto/sha256"
	"encoding/hex"
)

// FingerprintSize is the length of a Fingerprint in characters.
const FingerprintSize = 16

// Fingerprint returns a short, fixed-length name of k for logs, metric
// labels and comparing keys by eye: the first 8 bytes of SHA-256 over the
// 32 key bytes, in lower-case hex (16 characters). It is not a
// replacement for the key: 64 bits distinguish keys an operator has, but
// anyone can make a different key with a chosen fingerprint with about
// 2^64 work, so check the full key (String) where an attacker may choose
// keys. The zero key's fingerprint is "" (no key).
func (k PublicKey) Fingerprint() string {
	if k.IsZero() {
		return ""
	}
	sum := sha256.Sum256(k[:])
	return hex.EncodeToString(sum[:FingerprintSize/2])
}
