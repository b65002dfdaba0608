package wire

// Sealed PUB/SUB (SPEC.md §18): message layouts, the per-instance key,
// the blinded topic tag, the signature input and the key bundle a key
// service answers with. Pure: no I/O, no clock, no randomness.

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"

	"filippo.io/edwards25519"
	"golang.org/x/crypto/chacha20poly1305"
)

// Sizes of sealed PUB/SUB (SPEC.md §18.2).
const (
	PubTagSize     = 16 // blinded topic tag
	PubInstance    = 8  // instance id
	PubSigSize     = ed25519.SignatureSize
	PubKeySize     = ed25519.PublicKeySize
	MaxTopic       = 255
	pubTrailer     = 8 + PubInstance + 8 + 8 // gen ‖ instance ‖ counter ‖ timestamp, after P
	PubBlindHeader = 2 + PubTagSize + 8 + PubKeySize + pubTrailer
)

// Errors of sealed PUB/SUB parsing and checks.
var (
	ErrPubMalformed   = errors.New("wire: malformed PUB message")
	ErrPubKeyBad      = errors.New("wire: publisher key not a canonical prime-order Ed25519 point")
	ErrPubSignature   = errors.New("wire: PUB signature does not verify")
	ErrTopicMismatch  = errors.New("wire: PUB topic does not match its tag")
	ErrBundleMismatch = errors.New("wire: key bundle malformed or for another publisher")
)

// CheckPublisherKey refuses an Ed25519 public key that is not the
// canonical encoding of a point of the prime-order subgroup (SPEC.md
// §18.1): small-order and mixed-order points, non-canonical y (y >= p)
// and the non-canonical sign of x = 0 are all refused, so each publisher
// has exactly one accepted encoding.
func CheckPublisherKey(k []byte) error {
	if len(k) != PubKeySize {
		return ErrPubKeyBad
	}
	p, err := new(edwards25519.Point).SetBytes(k)
	if err != nil || !bytes.Equal(p.Bytes(), k) {
		return ErrPubKeyBad
	}
	// Prime order: [L]P is the identity; this also refuses small order,
	// whose points P != identity have [L]P = P.
	if p.Equal(edwards25519.NewIdentityPoint()) == 1 {
		return ErrPubKeyBad
	}
	// [L]P computed as [L-1]P + P (L itself is not a canonical scalar).
	lm1, _ := new(edwards25519.Scalar).SetCanonicalBytes(lMinus1[:])
	q := new(edwards25519.Point).ScalarMult(lm1, p)
	q.Add(q, p)
	if q.Equal(edwards25519.NewIdentityPoint()) != 1 {
		return ErrPubKeyBad
	}
	return nil
}

// lMinus1 is L - 1 little-endian, L = 2^252 + 27742317777372353535851937790883648493.
var lMinus1 = [32]byte{
	0xec, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
}

// TopicTag is the blinded tag of topic under tag key k (SPEC.md §18.3).
func TopicTag(k *[KeySize]byte, topic []byte) [PubTagSize]byte {
	m := mac(k[:], labelTopicTag, topic)
	var t [PubTagSize]byte
	copy(t[:], m[:])
	return t
}

// InstanceKey is the AEAD key of one publisher instance under sender key
// k of generation gen (SPEC.md §18.2): distinct instances never share a
// (key, nonce) pair although they share k.
func InstanceKey(k *[KeySize]byte, pub []byte, gen uint64, instance *[PubInstance]byte) [KeySize]byte {
	return mac(k[:], labelPubKey, pub, be64(gen), instance[:])
}

// PubFields are the header fields of one sealed PUB message.
type PubFields struct {
	Blinded   bool
	Tag       [PubTagSize]byte // blinded only
	TagKey    uint64           // blinded only: id of the tag key
	Topic     []byte           // clear only: the topic, 1..255 bytes, no 0x00
	Publisher []byte           // 32-byte Ed25519 public key
	Gen       uint64
	Instance  [PubInstance]byte
	Counter   uint64
	Timestamp uint64 // ms since the Unix epoch
}

// SubscriptionPrefix is the SUB subscription for a blinded tag, or for a
// clear topic prefix (exact says: the whole topic, with its terminator).
func SubscriptionPrefix(blinded bool, tag *[PubTagSize]byte, topic []byte, exact bool) []byte {
	if blinded {
		return append([]byte{Version, KindPubBlind}, tag[:]...)
	}
	p := append([]byte{Version, KindPubClear}, topic...)
	if exact {
		p = append(p, 0)
	}
	return p
}

// AppendPub appends the sealed PUB message to dst: header, AEAD of the
// plaintext (u8 len ‖ topic ‖ body when blinded, body when clear) under
// the instance key with the header as additional data, then the
// Ed25519 signature over label ‖ everything before it.
func AppendPub(dst []byte, f *PubFields, ik *[KeySize]byte, sign ed25519.PrivateKey, topic, body []byte) ([]byte, error) {
	if len(topic) == 0 || len(topic) > MaxTopic || len(f.Publisher) != PubKeySize {
		return nil, ErrPubMalformed
	}
	start := len(dst)
	if f.Blinded {
		dst = append(dst, Version, KindPubBlind)
		dst = append(dst, f.Tag[:]...)
		dst = binary.BigEndian.AppendUint64(dst, f.TagKey)
	} else {
		if bytes.IndexByte(topic, 0) >= 0 {
			return nil, ErrPubMalformed
		}
		dst = append(dst, Version, KindPubClear)
		dst = append(dst, topic...)
		dst = append(dst, 0)
	}
	dst = append(dst, f.Publisher...)
	dst = binary.BigEndian.AppendUint64(dst, f.Gen)
	dst = append(dst, f.Instance[:]...)
	dst = binary.BigEndian.AppendUint64(dst, f.Counter)
	dst = binary.BigEndian.AppendUint64(dst, f.Timestamp)
	head := len(dst)
	aead, _ := chacha20poly1305.New(ik[:])
	var plain []byte
	if f.Blinded {
		plain = make([]byte, 0, 1+len(topic)+len(body))
		plain = append(append(append(plain, byte(len(topic))), topic...), body...)
	} else {
		plain = body
	}
	nonce := pubNonce(f.Counter)
	dst = aead.Seal(dst, nonce[:], plain, dst[start:head])
	sig := ed25519.Sign(sign, signInput(dst[start:]))
	return append(dst, sig...), nil
}

func pubNonce(counter uint64) [chacha20poly1305.NonceSize]byte {
	var n [chacha20poly1305.NonceSize]byte
	binary.BigEndian.PutUint64(n[4:], counter)
	return n
}

// signInput is label ‖ SHA-256(m): the signature covers a digest, so a
// large message is hashed once (SHA-256) instead of twice (Ed25519's two
// SHA-512 passes over the message) and not copied.
func signInput(m []byte) []byte {
	d := sha256.Sum256(m)
	in := make([]byte, 0, len(labelPubSig)+len(d))
	return append(append(in, labelPubSig...), d[:]...)
}

// PubMessage is a parsed, not yet verified PUB message.
type PubMessage struct {
	PubFields
	head, ct, sig, signed []byte
}

// ParsePub checks the layout of b (version, kind, exact lengths) and
// returns its fields; nothing is verified yet.
func ParsePub(b []byte) (PubMessage, error) {
	var m PubMessage
	if len(b) < 2 || b[0] != Version {
		return m, ErrPubMalformed
	}
	off := 2
	switch b[1] {
	case KindPubBlind:
		if len(b) < PubBlindHeader+16+1+PubSigSize {
			return m, ErrPubMalformed
		}
		m.Blinded = true
		copy(m.Tag[:], b[2:18])
		m.TagKey = binary.BigEndian.Uint64(b[18:26])
		off = 26
	case KindPubClear:
		end := bytes.IndexByte(b[2:min(len(b), 2+MaxTopic+1)], 0)
		if end < 1 {
			return m, ErrPubMalformed
		}
		m.Topic = b[2 : 2+end]
		off = 2 + end + 1
	default:
		return m, ErrPubMalformed
	}
	if len(b) < off+PubKeySize+pubTrailer+16+PubSigSize {
		return m, ErrPubMalformed
	}
	m.Publisher = b[off : off+PubKeySize]
	off += PubKeySize
	m.Gen = binary.BigEndian.Uint64(b[off:])
	copy(m.Instance[:], b[off+8:])
	m.Counter = binary.BigEndian.Uint64(b[off+16:])
	m.Timestamp = binary.BigEndian.Uint64(b[off+24:])
	off += pubTrailer
	m.head = b[:off]
	m.ct = b[off : len(b)-PubSigSize]
	m.sig = b[len(b)-PubSigSize:]
	m.signed = b[:len(b)-PubSigSize]
	return m, nil
}

// Verify checks the signature with the publisher key in the message,
// which the caller has already found among the publishers it trusts.
func (m *PubMessage) Verify() error {
	if !ed25519.Verify(ed25519.PublicKey(m.Publisher), signInput(m.signed), m.sig) {
		return ErrPubSignature
	}
	return nil
}

// Open decrypts the message under instance key ik and returns topic and
// body. For a blinded message the caller checks the tag (CheckTag).
func (m *PubMessage) Open(ik *[KeySize]byte) (topic, body []byte, err error) {
	aead, _ := chacha20poly1305.New(ik[:])
	nonce := pubNonce(m.Counter)
	plain, err := aead.Open(nil, nonce[:], m.ct, m.head)
	if err != nil {
		return nil, nil, ErrOpen
	}
	if !m.Blinded {
		return m.Topic, plain, nil
	}
	if len(plain) < 1 || int(plain[0]) < 1 || len(plain) < 1+int(plain[0]) {
		return nil, nil, ErrPubMalformed
	}
	n := int(plain[0])
	return plain[1 : 1+n], plain[1+n:], nil
}

// CheckTag reports whether topic has the message's tag under tag key k.
func (m *PubMessage) CheckTag(k *[KeySize]byte, topic []byte) error {
	t := TopicTag(k, topic)
	if !hmacEqual(t[:], m.Tag[:]) {
		return ErrTopicMismatch
	}
	return nil
}

func hmacEqual(a, b []byte) bool { return bytes.Equal(a, b) } // tags are public

// PubOverhead is the size a sealed PUB message adds to a body of a
// topic of n bytes: header, AEAD tag, signature, and for blinded the
// topic's length byte and the topic inside the ciphertext.
func PubOverhead(blinded bool, n int) int {
	if blinded {
		return PubBlindHeader + 1 + n + 16 + PubSigSize
	}
	return 2 + n + 1 + PubKeySize + pubTrailer + 16 + PubSigSize
}

// BundleKey is one key of a key bundle: a sender key (generation) or a
// tag key. ActiveFrom is when publishers may start using it; RetireAt,
// when subscribers drop it (0 while it is not superseded). Times in ms.
type BundleKey struct {
	ID         uint64
	ActiveFrom uint64
	RetireAt   uint64
	Key        [KeySize]byte
}

// Bundle is the key service's answer (SPEC.md §18.4).
type Bundle struct {
	Publisher []byte
	Senders   []BundleKey
	Tags      []BundleKey
}

// MaxBundleKeys bounds each list of a bundle.
const MaxBundleKeys = 64

// AppendKeyRequest is the body of a key request for publisher pub.
func AppendKeyRequest(dst, pub []byte) []byte {
	return append(append(dst, Version, KindKeyRequest), pub...)
}

// ParseKeyRequest returns the publisher key a key request names.
func ParseKeyRequest(b []byte) ([]byte, error) {
	if len(b) != 2+PubKeySize || b[0] != Version || b[1] != KindKeyRequest {
		return nil, ErrBundleMismatch
	}
	return b[2:], nil
}

// AppendBundle appends the bundle's encoding: version ‖ kind ‖ P ‖
// u8 n ‖ n sender keys ‖ u8 m ‖ m tag keys, each u64 id ‖ u64 active
// from ‖ u64 retire at ‖ key.
func AppendBundle(dst []byte, b *Bundle) []byte {
	dst = append(append(dst, Version, KindKeyBundle), b.Publisher...)
	for _, list := range [][]BundleKey{b.Senders, b.Tags} {
		dst = append(dst, byte(len(list)))
		for i := range list {
			k := &list[i]
			dst = binary.BigEndian.AppendUint64(dst, k.ID)
			dst = binary.BigEndian.AppendUint64(dst, k.ActiveFrom)
			dst = binary.BigEndian.AppendUint64(dst, k.RetireAt)
			dst = append(dst, k.Key[:]...)
		}
	}
	return dst
}

// ParseBundle parses an answer for publisher pub, with exact lengths.
func ParseBundle(b, pub []byte) (Bundle, error) {
	var out Bundle
	if len(b) < 2+PubKeySize+2 || b[0] != Version || b[1] != KindKeyBundle || !bytes.Equal(b[2:2+PubKeySize], pub) {
		return out, ErrBundleMismatch
	}
	out.Publisher = b[2 : 2+PubKeySize]
	off := 2 + PubKeySize
	for i := 0; i < 2; i++ {
		if off >= len(b) {
			return Bundle{}, ErrBundleMismatch
		}
		n := int(b[off])
		off++
		if n > MaxBundleKeys || len(b)-off < n*bundleKeySize {
			return Bundle{}, ErrBundleMismatch
		}
		list := make([]BundleKey, n)
		for j := range list {
			k := &list[j]
			k.ID = binary.BigEndian.Uint64(b[off:])
			k.ActiveFrom = binary.BigEndian.Uint64(b[off+8:])
			k.RetireAt = binary.BigEndian.Uint64(b[off+16:])
			copy(k.Key[:], b[off+24:])
			off += bundleKeySize
		}
		if i == 0 {
			out.Senders = list
		} else {
			out.Tags = list
		}
	}
	if off != len(b) {
		return Bundle{}, ErrBundleMismatch
	}
	return out, nil
}

const bundleKeySize = 8 + 8 + 8 + KeySize

func be64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
