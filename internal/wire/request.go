package wire

import (
	"encoding/binary"
	"sync"
)

// Request is a parsed request (SPEC.md §5.1); the slices alias the input.
type Request struct {
	Kind, Suite, Flags byte
	Eph                [KeySize]byte // C'
	Counter            uint64        // N
	Timestamp          uint64        // T, ms since the Unix epoch
	Ext                []byte        // extension field (SPEC.md §10)
	Epoch              []byte        // the EPOCH element (11 bytes), nil without one (§14)
	WantEpoch          bool          // WANT_EPOCH present
	KEM                []byte        // the KEM ciphertext element (§16), nil without one
	Ticket             []byte        // the ticket element (§16), nil without one
	WantKEM            bool          // WANT_KEM present
	unknownExt         bool          // an element type this implementation lacks
	hybrid, hybridBad  bool          // hybrid elements present; malformed ones (§16.2)
	Header             []byte        // H: bytes 0 .. 54+X
	Identity           []byte        // IdentitySize bytes, vouched kinds only
	Sealed             []byte        // the body box
}

// ParseRequest runs the length and field checks of SPEC.md §6 steps 1
// and 2, before anything is opened: ErrVersion, ErrKind, ErrMalformed.
// Unknown suites and flags parse (step 4 refuses them).
func ParseRequest(b []byte) (Request, error) { return parseSealed(b, IsRequestKind) }

// ParsePush is ParseRequest for a PULL socket: only the PUSH kinds parse
// (SPEC.md §15), so a REQ request ends here as ErrKind, as a PUSH message
// does in ParseRequest.
func ParsePush(b []byte) (Request, error) { return parseSealed(b, IsPushKind) }

// parseSealed parses the request layout of SPEC.md §5.1 for the kinds
// that kindOK accepts.
func parseSealed(b []byte, kindOK func(byte) bool) (Request, error) {
	var r Request
	if len(b) < 2 {
		return r, ErrMalformed
	}
	if b[0] != Version {
		return r, ErrVersion
	}
	r.Kind = b[1]
	if !kindOK(r.Kind) {
		return r, ErrKind
	}
	if len(b) < HeaderSize {
		return r, ErrMalformed
	}
	r.Suite, r.Flags = b[2], b[3]
	copy(r.Eph[:], b[offEph:offCounter])
	r.Counter = binary.BigEndian.Uint64(b[offCounter:offTimestamp])
	r.Timestamp = binary.BigEndian.Uint64(b[offTimestamp:offExtLen])
	x := int(binary.BigEndian.Uint16(b[offExtLen:HeaderSize]))
	if !Canonical(&r.Eph) || r.Counter == 0 || r.Counter > MaxCounter {
		return r, ErrMalformed
	}
	if r.Flags == 0 && x != 0 {
		return r, ErrMalformed // no extension without a flag
	}
	min := HeaderSize + x + TagSize
	if IsVouched(r.Kind) {
		min += IdentitySize
	}
	if len(b) < min {
		return r, ErrMalformed
	}
	r.Header, r.Ext = b[:HeaderSize+x], b[HeaderSize:HeaderSize+x]
	ext, err := parseExtensions(r.Flags, r.Ext)
	if err != nil {
		return r, err
	}
	r.Epoch, r.WantEpoch, r.unknownExt = ext.epoch, ext.want, ext.unknown
	r.KEM, r.Ticket, r.WantKEM = ext.kem, ext.ticket, ext.wantKEM
	r.hybrid, r.hybridBad = ext.hybrid, ext.hybridBad
	rest := b[HeaderSize+x:]
	if IsVouched(r.Kind) {
		r.Identity, rest = rest[:IdentitySize], rest[IdentitySize:]
	}
	r.Sealed = rest
	if IsPing(r.Kind) && len(r.Sealed) != TagSize {
		return r, ErrMalformed // a ping has an empty body
	}
	return r, nil
}

// MinLooksLikeRequest is the shortest body of another version that a
// server takes for a secsock request (SPEC.md §9): a header and a tag.
const MinLooksLikeRequest = HeaderSize + TagSize

// MaxVersion is the largest version byte secsock will ever use (SPEC.md
// §9): bytes above it never start a secsock message, so a plain SP body
// (text, JSON, protobuf, whose tags start at 0x08, msgpack, CBOR of any
// length) is not mistaken for a request of another version.
const MaxVersion = 0x07

// IsSecsock reports whether b is taken for a secsock message at all
// (SPEC.md §6 step 1, §9): byte 0 is this version, or b looks like a
// message of another version: byte 0 from 0x01 to MaxVersion, byte 1 a
// request or PUSH kind, and at least MinLooksLikeRequest bytes, which
// every version keeps. Everything else is
// not secsock: a plain SP body, never answered with a hint, and the only
// kind of body a permissive server delivers as plain.
func IsSecsock(b []byte) bool {
	if len(b) >= 1 && b[0] == Version {
		return true
	}
	return len(b) >= MinLooksLikeRequest && b[0] >= 0x01 && b[0] <= MaxVersion && (IsRequestKind(b[1]) || IsPushKind(b[1]))
}

// IsReflectedRequest reports whether an answer is a request of this
// version (a plain peer that echoed the client's request back): SPEC.md §7
// step 1 takes it for "not secsock".
func IsReflectedRequest(b []byte) bool {
	return len(b) >= 2 && b[0] == Version && IsRequestKind(b[1])
}

// Supported reports whether this implementation can open r's suite and
// extension elements (SPEC.md §6 step 4).
func (r *Request) Supported() bool { return SuiteKnown(r.Suite) && !r.unknownExt }

// Hybrid reports whether r carries an element of the hybrid mode (§16).
func (r *Request) Hybrid() bool { return r.hybrid }

// HybridMalformed reports whether r's hybrid elements have a wrong size
// or combination: malformed for a server with the mode on (§16.2).
func (r *Request) HybridMalformed() bool { return r.hybridBad }

// KEMValue returns the ciphertext of r's KEM element.
func (r *Request) KEMValue() []byte { return r.KEM[3:] }

// TicketValue returns the ticket of r's ticket element.
func (r *Request) TicketValue() []byte { return r.Ticket[3:] }

// RequestFields are what a client puts in a request header.
type RequestFields struct {
	Kind, Suite byte
	Eph         [KeySize]byte
	Counter     uint64
	Timestamp   uint64
	Epoch       []byte // the EPOCH element, or nil
	KEM         []byte // the KEM ciphertext element (§16), or nil
	Ticket      []byte // the ticket element (§16), or nil
	WantEpoch   bool
	WantKEM     bool
}

// extension returns the flags and the length of f's extension field
// (SPEC.md §10).
func (f *RequestFields) extension() (flags byte, x int) {
	add := func(t byte, n int, present bool) {
		if present {
			flags |= 1 << t
			x += n
		}
	}
	add(ElemEpoch, len(f.Epoch), f.Epoch != nil)
	add(ElemKEMCiphertext, len(f.KEM), f.KEM != nil)
	add(ElemKEMTicket, len(f.Ticket), f.Ticket != nil)
	add(ElemWantEpoch, 3, f.WantEpoch)
	add(ElemWantKEM, 3, f.WantKEM)
	return flags, x
}

// appendExtension appends f's elements in type order.
func (f *RequestFields) appendExtension(dst []byte) []byte {
	dst = append(append(append(dst, f.Epoch...), f.KEM...), f.Ticket...)
	if f.WantEpoch {
		dst = append(dst, ElemWantEpoch, 0, 0)
	}
	if f.WantKEM {
		dst = append(dst, ElemWantKEM, 0, 0)
	}
	return dst
}

// Identity is what a vouched request carries in its identity box.
type Identity struct {
	Client [KeySize]byte   // C
	Vouch  [VouchSize]byte // V
	Expiry uint64          // E, ms since the Unix epoch
}

// identityScratch holds identity box plaintexts (C, V and E: public
// values), which would escape through the AEAD and cost an allocation
// per request.
var identityScratch = sync.Pool{New: func() any { return new([IdentityPlain]byte) }}

// AppendRequest seals body as a request and appends it to dst. id is nil
// for anonymous kinds.
func AppendRequest(dst []byte, f *RequestFields, k *Keys, id *Identity, body []byte) []byte {
	start := len(dst)
	flags, x := f.extension()
	dst = append(dst, Version, f.Kind, f.Suite, flags)
	dst = append(dst, f.Eph[:]...)
	dst = binary.BigEndian.AppendUint64(dst, f.Counter)
	dst = binary.BigEndian.AppendUint64(dst, f.Timestamp)
	dst = binary.BigEndian.AppendUint16(dst, uint16(x))
	dst = f.appendExtension(dst)
	hl := len(dst) - start
	if id != nil {
		plain := identityScratch.Get().(*[IdentityPlain]byte)
		copy(plain[:KeySize], id.Client[:])
		copy(plain[KeySize:], id.Vouch[:])
		binary.BigEndian.PutUint64(plain[KeySize+VouchSize:], id.Expiry)
		dst = sealRequestPart(dst, dst[start:start+hl], k, partIdentity, plain[:])
		identityScratch.Put(plain)
	}
	return sealRequestPart(dst, dst[start:start+hl], k, partBody, body)
}

// sealRequestPart seals one box of a request whose header is h.
func sealRequestPart(dst, h []byte, k *Keys, part byte, m []byte) []byte {
	if k.Suite == SuiteAESGCM {
		q, _ := k.gcm()
		sc := scratch.Get().(*[64]byte)
		n := requestNonce12(sc, part, h)
		dst = q.Seal(dst, n, m, h)
		scratch.Put(sc)
		return dst
	}
	n := requestNonce24(part, h)
	return sealBox(dst, &k.kq, &n, m)
}

func openRequestPart(dst []byte, h []byte, k *Keys, part byte, c []byte) ([]byte, error) {
	if k.Suite == SuiteAESGCM {
		q, _ := k.gcm()
		sc := scratch.Get().(*[64]byte)
		n := requestNonce12(sc, part, h)
		out, err := q.Open(dst, n, c, h)
		scratch.Put(sc)
		if err != nil {
			return nil, ErrOpen
		}
		return out, nil
	}
	n := requestNonce24(part, h)
	return openBox(dst, &k.kq, &n, c)
}

// requestNonce24 is p ‖ kind ‖ flags ‖ 0^5 ‖ u64(N) ‖ u64(T).
func requestNonce24(part byte, h []byte) [24]byte {
	var n [24]byte
	n[0], n[1], n[2] = part, h[1], h[3]
	copy(n[8:24], h[offCounter:offExtLen])
	return n
}

// requestNonce12 is p ‖ kind ‖ flags ‖ 0x00 ‖ u32(N) ‖ u32(T mod 2^32),
// in sc (N < 2^32, so its low half is all of it).
func requestNonce12(sc *[64]byte, part byte, h []byte) []byte {
	n := sc[:12]
	n[0], n[1], n[2], n[3] = part, h[1], h[3], 0
	copy(n[4:8], h[offCounter+4:offTimestamp])
	copy(n[8:12], h[offTimestamp+4:offExtLen])
	return n
}

// OpenBody opens r's body box and appends the body to dst.
func OpenBody(dst []byte, r *Request, k *Keys) ([]byte, error) {
	return openRequestPart(dst, r.Header, k, partBody, r.Sealed)
}

// OpenIdentity opens r's identity box.
func OpenIdentity(r *Request, k *Keys) (Identity, error) {
	var id Identity
	buf := identityScratch.Get().(*[IdentityPlain]byte)
	defer identityScratch.Put(buf)
	plain, err := openRequestPart(buf[:0], r.Header, k, partIdentity, r.Identity)
	if err != nil || len(plain) != len(buf) {
		return id, ErrOpen
	}
	copy(id.Client[:], plain[:KeySize])
	copy(id.Vouch[:], plain[KeySize:KeySize+VouchSize])
	id.Expiry = binary.BigEndian.Uint64(plain[KeySize+VouchSize:])
	return id, nil
}
