package secsock

// The curve mechanism's crypto core: message layouts, nonces and the
// seal/open of each message kind. No I/O, no sockets, no clocks: callers
// pass times, counters and randomness in. SPEC.md describes the same bytes.

import (
	"encoding/binary"
	"fmt"
	"io"
	"sync"

	"golang.org/x/crypto/nacl/box"
)

// Protocol version, message kinds and cipher suites (SPEC.md §3).
const (
	version1 byte = 0x01

	kindRequest        byte = 0x01
	kindRequestVouched byte = 0x02
	kindPing           byte = 0x03
	kindPingVouched    byte = 0x04
	kindReply          byte = 0x11
	kindRefusal        byte = 0x12
	kindHint           byte = 0x13
	kindIdentity       byte = 0x21 // nonce label of the identity box in a vouched request
	kindVouch          byte = 0x22 // nonce label of the vouch box

	suiteBox    byte = 0x01 // XSalsa20-Poly1305: NaCl crypto_box_afternm
	suiteAESGCM byte = 0x02 // AES-256-GCM, keys derived from the crypto_box key
)

// Domain separation: every label the protocol uses, in one place.
var (
	nonceTag     = [5]byte{'s', 'e', 'c', 's', 'k'} // first 5 bytes of every 24-byte nonce
	labelGCMC2S  = []byte("secsock1 aes256gcm client to server")
	labelGCMS2C  = []byte("secsock1 aes256gcm server to client")
	zeroNonce16  [16]byte
	requestNonce = [4]byte{} // last 4 bytes of an AES-GCM request nonce
)

// Sizes (SPEC.md §4).
const (
	tagSize          = box.Overhead        // 16: Poly1305 or GCM tag
	requestHeaderLen = 3 + KeySize + 8 + 8 // version, kind, suite, C', N, T
	vouchLen         = KeySize + tagSize   // box(C') from C to S
	identityLen      = KeySize + vouchLen + tagSize
	hintLen          = 3
	refusalPlainLen  = 1
	replyHeaderBase  = 3 // version, kind, suite; then R
	maxSuiteRandLen  = 12
	replyRandLenBox  = 8
	replyRandLenGCM  = 12
	anonRequestOver  = requestHeaderLen + tagSize
	vouchRequestOver = anonRequestOver + identityLen
)

// Overheads in bytes that sealing adds to a body (SPEC.md §4).
const (
	// RequestOverhead is added to an anonymous request.
	RequestOverhead = anonRequestOver
	// VouchedRequestOverhead is added to a request from a client with a
	// long-term key.
	VouchedRequestOverhead = vouchRequestOver
	// ReplyOverhead is added to a reply with the default cipher suite
	// (CipherBox); CipherAESGCM adds 4 bytes more.
	ReplyOverhead = replyHeaderBase + replyRandLenBox + tagSize
)

// Refusal and hint reasons carried on the wire (SPEC.md §5).
const (
	refuseNotAuthorized byte = 0x01
	refuseStale         byte = 0x02
	refuseReplayed      byte = 0x03

	hintCannotOpen  byte = 0x01
	hintUnsupported byte = 0x02
)

func isRequestKind(k byte) bool { return k >= kindRequest && k <= kindPingVouched }
func isVouched(k byte) bool     { return k == kindRequestVouched || k == kindPingVouched }
func isPing(k byte) bool        { return k == kindPing || k == kindPingVouched }

func replyRandLen(suite byte) int {
	if suite == suiteAESGCM {
		return replyRandLenGCM
	}
	return replyRandLenBox
}

func suiteKnown(s byte) bool { return s == suiteBox || s == suiteAESGCM }

// gcmScratch holds AES-GCM nonces and additional data: slices passed to
// cipher.AEAD methods escape, so stack arrays would cost one heap
// allocation per message. The bytes are public.
var gcmScratch = sync.Pool{New: func() any { return new([32]byte) }}

// boxNonce is the 24-byte nonce "secsk" ‖ version ‖ kind ‖ suite ‖ a ‖ b.
func boxNonce(kind, suite byte, a, b []byte) [24]byte {
	var n [24]byte
	copy(n[:5], nonceTag[:])
	n[5], n[6], n[7] = version1, kind, suite
	copy(n[8:16], a)
	copy(n[16:24], b)
	return n
}

// request is a parsed request; the slices alias the input.
type request struct {
	kind, suite byte
	eph         PublicKey // C', the client's short-term key
	counter     uint64    // N
	timestamp   uint64    // T, milliseconds since the Unix epoch
	header      []byte    // the 51 header bytes (AES-GCM additional data)
	identity    []byte    // identityLen bytes, vouched kinds only
	sealed      []byte    // the body box
}

// parseRequest checks the version, kind, suite and exact minimum length
// before anything is opened.
func parseRequest(b []byte) (request, error) {
	var r request
	if len(b) < 1 {
		return r, ErrMalformed
	}
	if b[0] != version1 {
		return r, ErrUnknownVersion
	}
	if len(b) < 3 {
		return r, ErrMalformed
	}
	r.kind, r.suite = b[1], b[2]
	if !isRequestKind(r.kind) {
		return r, ErrUnknownKind
	}
	if !suiteKnown(r.suite) {
		return r, ErrUnsupported
	}
	min := anonRequestOver
	if isVouched(r.kind) {
		min = vouchRequestOver
	}
	if len(b) < min {
		return r, ErrMalformed
	}
	copy(r.eph[:], b[3:35])
	r.counter = binary.BigEndian.Uint64(b[35:43])
	r.timestamp = binary.BigEndian.Uint64(b[43:51])
	r.header = b[:requestHeaderLen]
	rest := b[requestHeaderLen:]
	if isVouched(r.kind) {
		r.identity, rest = rest[:identityLen], rest[identityLen:]
	}
	r.sealed = rest
	if isPing(r.kind) && len(r.sealed) != tagSize {
		return r, ErrMalformed // a ping has an empty body
	}
	return r, nil
}

// identity is what a vouched request proves: the client's long-term key
// and a vouch box from it over the short-term key.
type identity struct {
	client PublicKey
	vouch  [vouchLen]byte
}

// makeVouch seals C' from the client's long-term key to the server's key.
// Its nonce is derived from C', which is fresh for every vouch.
func makeVouch(k *sharedKey, eph PublicKey) [vouchLen]byte {
	var v [vouchLen]byte
	n := boxNonce(kindVouch, suiteBox, eph[0:8], eph[8:16])
	box.SealAfterPrecomputation(v[:0], eph[:], &n, &k.box)
	return v
}

// checkVouch reports whether vouch is a box of eph under k (client C to
// server S).
func checkVouch(k *sharedKey, eph PublicKey, vouch []byte) bool {
	var out [KeySize]byte
	n := boxNonce(kindVouch, suiteBox, eph[0:8], eph[8:16])
	got, ok := box.OpenAfterPrecomputation(out[:0], vouch, &n, &k.box)
	return ok && len(got) == KeySize && PublicKey(out) == eph
}

// appendRequest seals body as a request and appends it to dst. id is nil
// for anonymous requests. k is the client's short-term key agreed with
// the server.
func appendRequest(dst []byte, kind, suite byte, eph PublicKey, counter, timestamp uint64, k *sharedKey, id *identity, body []byte) []byte {
	start := len(dst)
	dst = append(dst, version1, kind, suite)
	dst = append(dst, eph[:]...)
	dst = binary.BigEndian.AppendUint64(dst, counter)
	dst = binary.BigEndian.AppendUint64(dst, timestamp)
	nb := dst[start+35 : start+51]
	if id != nil {
		var plain [KeySize + vouchLen]byte
		copy(plain[:KeySize], id.client[:])
		copy(plain[KeySize:], id.vouch[:])
		n := boxNonce(kindIdentity, suiteBox, nb[:8], nb[8:])
		dst = box.SealAfterPrecomputation(dst, plain[:], &n, &k.box)
	}
	switch suite {
	case suiteAESGCM:
		c2s, _ := k.gcm()
		sc := gcmScratch.Get().(*[32]byte)
		n := sc[:12]
		copy(n[:8], nb[:8])
		copy(n[8:], requestNonce[:])
		dst = c2s.Seal(dst, n, body, dst[start:start+requestHeaderLen])
		gcmScratch.Put(sc)
		return dst
	default:
		n := boxNonce(kind, suite, nb[:8], nb[8:])
		return box.SealAfterPrecomputation(dst, body, &n, &k.box)
	}
}

// openIdentity opens the identity box of a vouched request.
func openIdentity(r *request, k *sharedKey) (identity, error) {
	var id identity
	var plain [KeySize + vouchLen]byte
	nb := r.header[35:51]
	n := boxNonce(kindIdentity, suiteBox, nb[:8], nb[8:])
	if _, ok := box.OpenAfterPrecomputation(plain[:0], r.identity, &n, &k.box); !ok {
		return id, ErrAuthFailed
	}
	copy(id.client[:], plain[:KeySize])
	copy(id.vouch[:], plain[KeySize:])
	return id, nil
}

// openRequestBody opens the body box of r and appends the body to dst.
func openRequestBody(dst []byte, r *request, k *sharedKey) ([]byte, error) {
	nb := r.header[35:51]
	var ok bool
	switch r.suite {
	case suiteAESGCM:
		c2s, _ := k.gcm()
		sc := gcmScratch.Get().(*[32]byte)
		n := sc[:12]
		copy(n[:8], nb[:8])
		copy(n[8:], requestNonce[:])
		var err error
		dst, err = c2s.Open(dst, n, r.sealed, r.header)
		gcmScratch.Put(sc)
		ok = err == nil
	default:
		n := boxNonce(r.kind, r.suite, nb[:8], nb[8:])
		dst, ok = box.OpenAfterPrecomputation(dst, r.sealed, &n, &k.box)
	}
	if !ok {
		return nil, ErrAuthFailed
	}
	return dst, nil
}

// appendReply seals a reply (kindReply, body) or a refusal (kindRefusal,
// one reason byte) to the request with counter reqCounter, and appends it
// to dst. rnd supplies the per-reply random value R that keeps nonces
// unique when several servers answer the same request.
func appendReply(dst []byte, kind, suite byte, k *sharedKey, reqCounter uint64, rnd io.Reader, body []byte) ([]byte, error) {
	start := len(dst)
	dst = append(dst, version1, kind, suite)
	rl := replyRandLen(suite)
	// R is read straight into dst: a local array would escape through
	// the io.Reader and cost an allocation per reply.
	var zero [maxSuiteRandLen]byte
	dst = append(dst, zero[:rl]...)
	r := dst[len(dst)-rl:]
	if _, err := io.ReadFull(rnd, r); err != nil {
		return nil, fmt.Errorf("secsock: reading randomness: %w", err)
	}
	var nc [8]byte
	binary.BigEndian.PutUint64(nc[:], reqCounter)
	switch suite {
	case suiteAESGCM:
		_, s2c := k.gcm()
		sc := gcmScratch.Get().(*[32]byte)
		ad := sc[:replyHeaderBase+replyRandLenGCM+8]
		copy(ad, dst[start:])
		copy(ad[replyHeaderBase+replyRandLenGCM:], nc[:])
		dst = s2c.Seal(dst, r, body, ad)
		gcmScratch.Put(sc)
		return dst, nil
	default:
		n := boxNonce(kind, suite, nc[:], r[:rl])
		return box.SealAfterPrecomputation(dst, body, &n, &k.box), nil
	}
}

// openReply parses and opens a reply, refusal or hint to the request with
// counter reqCounter sent with suite. It returns the kind and, for a reply,
// appends the body to dst; for a refusal or hint it returns the reason
// byte as the one-byte body.
func openReply(dst []byte, suite byte, k *sharedKey, reqCounter uint64, b []byte) (byte, []byte, error) {
	if len(b) < 1 {
		return 0, nil, ErrMalformed
	}
	if b[0] != version1 {
		return 0, nil, ErrUnknownVersion
	}
	if len(b) < 2 {
		return 0, nil, ErrMalformed
	}
	kind := b[1]
	switch kind {
	case kindHint:
		if len(b) != hintLen {
			return kind, nil, ErrMalformed
		}
		return kind, b[2:3], nil
	case kindReply, kindRefusal:
	default:
		return kind, nil, ErrUnknownKind
	}
	if len(b) < 3 || b[2] != suite {
		return kind, nil, ErrMalformed
	}
	rl := replyRandLen(suite)
	hl := replyHeaderBase + rl
	if len(b) < hl+tagSize || (kind == kindRefusal && len(b) != hl+tagSize+refusalPlainLen) {
		return kind, nil, ErrMalformed
	}
	var nc [8]byte
	binary.BigEndian.PutUint64(nc[:], reqCounter)
	r, sealed := b[replyHeaderBase:hl], b[hl:]
	var ok bool
	switch suite {
	case suiteAESGCM:
		_, s2c := k.gcm()
		sc := gcmScratch.Get().(*[32]byte)
		ad := sc[:replyHeaderBase+replyRandLenGCM+8]
		copy(ad, b[:hl])
		copy(ad[hl:], nc[:])
		var err error
		dst, err = s2c.Open(dst, r, sealed, ad)
		gcmScratch.Put(sc)
		ok = err == nil
	default:
		n := boxNonce(kind, suite, nc[:], r)
		dst, ok = box.OpenAfterPrecomputation(dst, sealed, &n, &k.box)
	}
	if !ok {
		return kind, nil, ErrAuthFailed
	}
	return kind, dst, nil
}

// appendHint appends an unauthenticated hint (SPEC.md §5.4).
func appendHint(dst []byte, reason byte) []byte {
	return append(dst, version1, kindHint, reason)
}
