package wire

// Protocol version, message kinds, suites, nonce parts and reasons
// (SPEC.md §3).
const (
	Version byte = 0x02

	KindRequest        byte = 0x01
	KindRequestVouched byte = 0x02
	KindPing           byte = 0x03
	KindPingVouched    byte = 0x04
	KindReply          byte = 0x11
	KindRefusal        byte = 0x12
	KindHint           byte = 0x13

	SuiteBox    byte = 0x01 // XSalsa20-Poly1305 (NaCl secretbox), the default
	SuiteAESGCM byte = 0x02 // AES-256-GCM

	partBody     byte = 0x01
	partIdentity byte = 0x02

	RefuseNotAuthorized      byte = 0x01
	RefuseStale              byte = 0x02
	RefuseReplayed           byte = 0x03
	RefuseUnsupportedFeature byte = 0x04

	HintCannotOpen         byte = 0x01
	HintUnsupportedVersion byte = 0x02
)

// Domain-separation labels: every label the protocol uses, in one place
// (SPEC.md §3). Each is used in exactly one derivation.
var (
	labelRequest  = []byte("secsock v2 request")   // salt of prk0
	labelVouchKey = []byte("secsock v2 vouch key") // salt of prkV
	labelVouch    = []byte("secsock v2 vouch")     // first field of V
	labelC2S      = []byte("c2s")                  // info prefix of Kq
	labelS2C      = []byte("s2c")                  // info prefix of Kr
	labelRefusal  = []byte("refusal")              // first field of a refusal tag
)

// Sizes in bytes (SPEC.md §5).
const (
	KeySize        = 32
	TagSize        = 16
	HeaderSize     = 54 // request header without extension field
	VouchSize      = 32
	IdentitySize   = KeySize + VouchSize + TagSize // 80
	ReplyRandSize  = 16
	ReplyHeader    = 3 + ReplyRandSize // version, kind, suite, R
	RefusalSize    = 3 + TagSize       // version, kind, reason, tag
	HintSize       = 3
	MaxCounter     = 1<<32 - 1
	AnonOverhead   = HeaderSize + TagSize                // 70
	VouchOverhead  = HeaderSize + IdentitySize + TagSize // 150
	ReplyOverhead  = ReplyHeader + TagSize               // 35
	offEph         = 4
	offCounter     = 36
	offTimestamp   = 44
	offExtLen      = 52
	vouchedMinimum = VouchOverhead
)

// IsRequestKind reports whether k is one of the four request kinds.
func IsRequestKind(k byte) bool { return k >= KindRequest && k <= KindPingVouched }

// IsVouched reports whether k carries an identity box.
func IsVouched(k byte) bool { return k == KindRequestVouched || k == KindPingVouched }

// IsPing reports whether k is a ping (empty body).
func IsPing(k byte) bool { return k == KindPing || k == KindPingVouched }

// SuiteKnown reports whether this implementation has suite s.
func SuiteKnown(s byte) bool { return s == SuiteBox || s == SuiteAESGCM }
