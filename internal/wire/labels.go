package wire

// Protocol version, message kinds, suites, nonce parts and reasons
// (SPEC.md §3).
const (
	Version byte = 0x02

	KindRequest        byte = 0x01
	KindRequestVouched byte = 0x02
	KindPing           byte = 0x03
	KindPingVouched    byte = 0x04
	KindPush           byte = 0x05 // one-way message, anonymous pusher (§15)
	KindPushVouched    byte = 0x06 // one-way message from a pusher with a long-term key
	KindReply          byte = 0x11
	KindRefusal        byte = 0x12
	KindHint           byte = 0x13
	KindReplyExt       byte = 0x14 // a reply with extension elements (§10, §14)
	KindPubBlind       byte = 0x21 // PUB message with a blinded topic tag (§18)
	KindPubClear       byte = 0x22 // PUB message with a clear topic prefix (§18)
	KindKeyRequest     byte = 0x23 // key service request: sender keys of a publisher, please (§18.4)
	KindKeyBundle      byte = 0x24 // key service answer: a key bundle (§18.4)
	KindKeyDenied      byte = 0x25 // key service answer: this subscriber is not authorized (§18.4)

	SuiteBox    byte = 0x01 // XSalsa20-Poly1305 (NaCl secretbox), the default
	SuiteAESGCM byte = 0x02 // AES-256-GCM

	partBody     byte = 0x01
	partIdentity byte = 0x02

	RefuseNotAuthorized      byte = 0x01
	RefuseStale              byte = 0x02
	RefuseReplayed           byte = 0x03
	RefuseUnsupportedFeature byte = 0x04
	RefuseInDoubt            byte = 0x05
	RefuseUnknownEpoch       byte = 0x06
	RefuseStoreUnavailable   byte = 0x07 // the shared replay store could not be asked (§17)
	RefuseUnknownTicket      byte = 0x08 // hybrid mode (§16): the ticket does not open here
	RefuseHybridRequired     byte = 0x09 // hybrid mode (§16): this server requires it
	RefuseTooLarge           byte = 0x0a // the body is over the server's limit (SPEC.md §6, the size check after step 7)

	HintCannotOpen         byte = 0x01
	HintUnsupportedVersion byte = 0x02
	HintBusy               byte = 0x03
)

// Domain-separation labels: every label the protocol uses, in one place
// (SPEC.md §3). Each is used in exactly one derivation.
var (
	labelRequest  = []byte("secsock v2 request")    // salt of prk0
	labelC2S      = []byte("secsock v2 c2s")        // info prefix of Kq
	labelS2C      = []byte("secsock v2 s2c")        // info prefix of Kr
	labelRefusal  = []byte("secsock v2 refusal")    // first field of a refusal tag
	labelVouchKey = []byte("secsock v2 vouch key")  // salt of prkV
	labelVouch    = []byte("secsock v2 vouch")      // first field of V
	labelS2CExt   = []byte("secsock v2 s2c ext")    // info prefix of the REPLY_EXT key
	labelExt      = []byte("secsock v2 ext")        // first field of an extension's Extract
	labelPush     = []byte("secsock v2 push")       // info prefix of Kp, the PUSH key (§15)
	labelPushV    = []byte("secsock v2 push vouch") // first field of a pusher's V (§15.1)
	labelRatchet  = []byte("secsock v2 epoch ratchet")
	labelEpochKey = []byte("secsock v2 epoch key")
	// Hybrid mode (SPEC.md §16).
	labelEpochKEM    = []byte("secsock v2 epoch kem")    // seed_e -> ML-KEM-768 seed (d, z)
	labelEpochTicket = []byte("secsock v2 epoch ticket") // seed_e -> the epoch's ticket key
	labelTicket      = []byte("secsock v2 ticket")       // ticket key -> one ticket's key
	labelResumption  = []byte("secsock v2 resumption")   // a ciphertext request's prk -> the ticket's secret q
	// Sealed PUB/SUB (SPEC.md §18).
	labelPubKey   = []byte("secsock v2 pub key")   // sender key -> one instance's AEAD key
	labelTopicTag = []byte("secsock v2 topic tag") // tag key -> a topic's blinded tag
	labelPubSig   = []byte("secsock v2 pub sig")   // prefix of the Ed25519-signed bytes
)

// Extension element types (SPEC.md §10, §14).
const (
	ElemEpoch     byte = 0 // request: id of the epoch key used; REPLY_EXT: epoch keys announced
	ElemWantEpoch byte = 5 // request: announce epoch keys, please
	// Hybrid mode (SPEC.md §16).
	ElemKEMCiphertext byte = 1 // request: ML-KEM-768 ciphertext; REPLY_EXT: KEM_KEY (an encapsulation key)
	ElemKEMTicket     byte = 2 // request and REPLY_EXT: a ticket
	ElemWantKEM       byte = 6 // request: announce the epoch's encapsulation key, please
)

// Sizes in bytes (SPEC.md §5).
const (
	KeySize       = 32
	TagSize       = 16
	HeaderSize    = 54 // request header without extension field
	VouchSize     = 32
	IdentityPlain = KeySize + VouchSize + 8 // C ‖ V ‖ u64(E)
	IdentitySize  = IdentityPlain + TagSize // 88
	ReplyRandSize = 16
	ReplyHeader   = 3 + ReplyRandSize // version, kind, suite, R
	RefusalSize   = 3 + TagSize       // version, kind, reason, tag
	HintSize      = 3
	MaxCounter    = 1<<32 - 1
	MaxVouchLife  = 86400000                            // E - T at most 24 hours, in ms
	AnonOverhead  = HeaderSize + TagSize                // 70
	VouchOverhead = HeaderSize + IdentitySize + TagSize // 158
	ReplyOverhead = ReplyHeader + TagSize               // 35
	offEph        = 4
	offCounter    = 36
	offTimestamp  = 44
	offExtLen     = 52
)

// IsRequestKind reports whether k is one of the four request kinds.
func IsRequestKind(k byte) bool { return k >= KindRequest && k <= KindPingVouched }

// IsPushKind reports whether k is one of the two PUSH kinds (§15).
func IsPushKind(k byte) bool { return k == KindPush || k == KindPushVouched }

// IsVouched reports whether k carries an identity box.
func IsVouched(k byte) bool {
	return k == KindRequestVouched || k == KindPingVouched || k == KindPushVouched
}

// IsPing reports whether k is a ping (empty body).
func IsPing(k byte) bool { return k == KindPing || k == KindPingVouched }

// SuiteKnown reports whether this implementation has suite s.
func SuiteKnown(s byte) bool { return s == SuiteBox || s == SuiteAESGCM }
