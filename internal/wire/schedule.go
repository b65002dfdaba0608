package wire

// The key schedule (SPEC.md §4.2, §4.3): HKDF-SHA-256 from crypto/hkdf's
// primitives, written as the two HMACs of SPEC §2 so that the C
// implementation's crypto_auth_hmacsha256 gives the same bytes.

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"sync"
)

func mac(key []byte, parts ...[]byte) [32]byte {
	m := hmac.New(sha256.New, key)
	return sum(m, parts...)
}

func sum(m hash.Hash, parts ...[]byte) [32]byte {
	for _, p := range parts {
		m.Write(p)
	}
	var out [32]byte
	m.Sum(out[:0])
	return out
}

// extract is HKDF-Extract(salt, ikm).
func extract(salt []byte, ikm ...[]byte) [32]byte { return mac(salt, ikm...) }

// expand is HKDF-Expand(prk, info) with a 32-byte output.
func expand(prk *[32]byte, info ...[]byte) [32]byte {
	return mac(prk[:], append(info, []byte{0x01})...)
}

// Secret is prk0 of one short-term key and server key: the root of the
// request, reply and refusal keys. Handle it as a secret.
type Secret [32]byte

// RequestSecret returns prk0 = Extract("secsock v2 request", dh1 ‖ C' ‖ S).
func RequestSecret(dh1, eph, server *[KeySize]byte) Secret {
	return Secret(extract(labelRequest, dh1[:], eph[:], server[:]))
}

// Keys are the request and reply keys of one session and suite.
type Keys struct {
	Suite  byte
	kq, kr [32]byte
	krx    [32]byte // REPLY_EXT
	oneWay bool     // PUSH keys (PushKeys): no reply key, kr and krx unset
	once   sync.Once
	gq, gr cipher.AEAD // AES-GCM of kq and kr, made on first use
}

// SessionKeys derives Kq and Kr for suite from the session secret prk
// (prk0 in version 2: no flags).
func SessionKeys(prk *Secret, suite byte) *Keys {
	p := (*[32]byte)(prk)
	return &Keys{
		Suite: suite,
		kq:    expand(p, labelC2S, []byte{suite}),
		kr:    expand(p, labelS2C, []byte{suite}),
		krx:   expand(p, labelS2CExt, []byte{suite}),
	}
}

// PushKeys derives the PUSH key Kp = Expand(prk, "secsock v2 push" ‖ a)
// for suite from the session secret prk (SPEC.md §15). It seals both
// boxes of a PUSH message in place of Kq; there is no reply key, so the
// returned Keys open and seal PUSH messages only.
func PushKeys(prk *Secret, suite byte) *Keys {
	return &Keys{Suite: suite, kq: expand((*[32]byte)(prk), labelPush, []byte{suite}), oneWay: true}
}

// mustAnswer panics when k are PUSH keys: their reply keys are unset, and
// a reply sealed under them would be sealed under a known key.
func (k *Keys) mustAnswer() {
	if k.oneWay {
		panic("wire: a reply sealed with PUSH keys (SPEC.md §15: PUSH messages have no answer)")
	}
}

func (k *Keys) gcm() (q, r cipher.AEAD) {
	k.once.Do(func() { k.gq, k.gr = newGCM(&k.kq), newGCM(&k.kr) })
	return k.gq, k.gr
}

func newGCM(key *[32]byte) cipher.AEAD {
	b, err := aes.NewCipher(key[:])
	if err != nil {
		panic(err) // 32-byte key: cannot happen
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		panic(err)
	}
	return a
}

// VouchSecret returns prkV = Extract("secsock v2 vouch key", dh2 ‖ C ‖ S).
func VouchSecret(dh2, client, server *[KeySize]byte) Secret {
	return Secret(extract(labelVouchKey, dh2[:], client[:], server[:]))
}

// Vouch returns V = HMAC(prkV, "secsock v2 vouch" ‖ C' ‖ C ‖ S ‖ u64(E)).
func Vouch(prkV *Secret, eph, client, server *[KeySize]byte, expiry uint64) [VouchSize]byte {
	return mac(prkV[:], labelVouch, eph[:], client[:], server[:], binary.BigEndian.AppendUint64(nil, expiry))
}

// PushVouch returns a pusher's V = HMAC(prkV, "secsock v2 push vouch" ‖
// C' ‖ C ‖ S ‖ u64(E)) (SPEC.md §15.1): a vouch for one pattern never
// verifies in the other.
func PushVouch(prkV *Secret, eph, client, server *[KeySize]byte, expiry uint64) [VouchSize]byte {
	return mac(prkV[:], labelPushV, eph[:], client[:], server[:], binary.BigEndian.AppendUint64(nil, expiry))
}

// CheckPushVouch is CheckVouch for a pusher's vouch.
func CheckPushVouch(prkV *Secret, eph, client, server *[KeySize]byte, expiry uint64, v []byte) bool {
	want := PushVouch(prkV, eph, client, server, expiry)
	return len(v) == VouchSize && hmac.Equal(want[:], v)
}

// CheckVouch compares v with the vouch for (eph, client, server, expiry)
// in constant time.
func CheckVouch(prkV *Secret, eph, client, server *[KeySize]byte, expiry uint64, v []byte) bool {
	want := Vouch(prkV, eph, client, server, expiry)
	return len(v) == VouchSize && hmac.Equal(want[:], v)
}
