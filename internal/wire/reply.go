package wire

import (
	"crypto/hmac"
	"encoding/binary"
)

// AppendReply seals a reply to the request with counter n (SPEC.md §5.2)
// and appends it to dst. r is the 16 fresh random bytes R.
func AppendReply(dst []byte, k *Keys, n uint64, r *[ReplyRandSize]byte, body []byte) []byte {
	k.mustAnswer()
	start := len(dst)
	dst = append(dst, Version, KindReply, k.Suite)
	dst = append(dst, r[:]...)
	if k.Suite == SuiteAESGCM {
		_, g := k.gcm()
		sc := scratch.Get().(*[64]byte)
		ad := replyAD(sc, dst[start:], n)
		dst = g.Seal(dst, r[:12], body, ad)
		scratch.Put(sc)
		return dst
	}
	nonce := replyNonce24(r, n)
	return sealBox(dst, &k.kr, &nonce, body)
}

// AppendReplyExt seals a REPLY_EXT carrying elements before body (SPEC.md
// §10) under its own key, and appends it to dst.
func AppendReplyExt(dst []byte, k *Keys, n uint64, r *[ReplyRandSize]byte, elements, body []byte) []byte {
	k.mustAnswer()
	plain := make([]byte, 0, 2+len(elements)+len(body))
	plain = binary.BigEndian.AppendUint16(plain, uint16(len(elements)))
	plain = append(append(plain, elements...), body...)
	dst = append(dst, Version, KindReplyExt, k.Suite)
	dst = append(dst, r[:]...)
	if k.Suite == SuiteAESGCM {
		g := newGCM(&k.krx)
		ad := replyAD(new([64]byte), dst[len(dst)-ReplyHeader:], n)
		return g.Seal(dst, r[:12], plain, ad)
	}
	nonce := replyNonce24(r, n)
	return sealBox(dst, &k.krx, &nonce, plain)
}

// OpenReplyExt opens a REPLY_EXT to the request with counter n and
// returns its elements and its body (appended to dst).
func OpenReplyExt(dst []byte, k *Keys, n uint64, b []byte) (elements, body []byte, err error) {
	if k.oneWay || len(b) < ReplyOverhead+2 || b[1] != KindReplyExt || b[2] != k.Suite {
		return nil, nil, ErrMalformed
	}
	var r [ReplyRandSize]byte
	copy(r[:], b[3:ReplyHeader])
	var plain []byte
	if k.Suite == SuiteAESGCM {
		g := newGCM(&k.krx)
		ad := replyAD(new([64]byte), b[:ReplyHeader], n)
		plain, err = g.Open(nil, b[3:15], b[ReplyHeader:], ad)
	} else {
		nonce := replyNonce24(&r, n)
		plain, err = openBox(nil, &k.krx, &nonce, b[ReplyHeader:])
	}
	if err != nil {
		return nil, nil, ErrOpen
	}
	if len(plain) < 2 {
		return nil, nil, ErrMalformed
	}
	el := int(binary.BigEndian.Uint16(plain))
	if len(plain) < 2+el {
		return nil, nil, ErrMalformed
	}
	return plain[2 : 2+el], append(dst, plain[2+el:]...), nil
}

// OpenReply opens a REPLY (kind already checked by Classify) to the
// request with counter n and appends the body to dst.
func OpenReply(dst []byte, k *Keys, n uint64, b []byte) ([]byte, error) {
	if k.oneWay || len(b) < ReplyOverhead || b[1] != KindReply || b[2] != k.Suite {
		return nil, ErrMalformed
	}
	var r [ReplyRandSize]byte
	copy(r[:], b[3:ReplyHeader])
	c := b[ReplyHeader:]
	if k.Suite == SuiteAESGCM {
		_, g := k.gcm()
		sc := scratch.Get().(*[64]byte)
		ad := replyAD(sc, b[:ReplyHeader], n)
		out, err := g.Open(dst, b[3:15], c, ad)
		scratch.Put(sc)
		if err != nil {
			return nil, ErrOpen
		}
		return out, nil
	}
	nonce := replyNonce24(&r, n)
	return openBox(dst, &k.kr, &nonce, c)
}

// replyNonce24 is R ‖ u64(N_req).
func replyNonce24(r *[ReplyRandSize]byte, n uint64) [24]byte {
	var nonce [24]byte
	copy(nonce[:16], r[:])
	binary.BigEndian.PutUint64(nonce[16:], n)
	return nonce
}

// replyAD is reply[0..19] ‖ u64(N_req), in sc.
func replyAD(sc *[64]byte, head []byte, n uint64) []byte {
	ad := sc[:ReplyHeader+8]
	copy(ad, head[:ReplyHeader])
	binary.BigEndian.PutUint64(ad[ReplyHeader:], n)
	return ad
}

// refusalTag is HMAC(prk0, "refusal" ‖ H ‖ reason)[0..16].
func refusalTag(prk0 *Secret, header []byte, reason byte) [32]byte {
	return mac(prk0[:], labelRefusal, header, []byte{reason})
}

// AppendRefusal appends the refusal of the request with header h for
// reason (SPEC.md §5.3). Its bytes depend only on prk0, h and reason.
func AppendRefusal(dst []byte, prk0 *Secret, h []byte, reason byte) []byte {
	t := refusalTag(prk0, h, reason)
	dst = append(dst, Version, KindRefusal, reason)
	return append(dst, t[:TagSize]...)
}

// CheckRefusal verifies a REFUSAL to the request with header h and
// returns its reason.
func CheckRefusal(prk0 *Secret, h, b []byte) (byte, error) {
	if len(b) != RefusalSize {
		return 0, ErrMalformed
	}
	t := refusalTag(prk0, h, b[2])
	if !hmac.Equal(t[:TagSize], b[3:]) {
		return 0, ErrOpen
	}
	return b[2], nil
}

// AppendHint appends an unauthenticated hint (SPEC.md §5.4).
func AppendHint(dst []byte, reason byte) []byte { return append(dst, Version, KindHint, reason) }

// Classify checks an answer's version and kind (SPEC.md §7 steps 1, 2
// and 5) and returns its kind. A hint's reason is returned as well. A
// 3-byte hint of another version counts as HintUnsupportedVersion.
func Classify(b []byte) (kind, hint byte, err error) {
	if len(b) == HintSize && b[1] == KindHint && b[0] != Version {
		return KindHint, HintUnsupportedVersion, nil
	}
	if len(b) < 2 || b[0] != Version {
		return 0, 0, ErrVersion
	}
	switch b[1] {
	case KindHint:
		if len(b) != HintSize {
			return KindHint, 0, ErrMalformed
		}
		return KindHint, b[2], nil
	case KindReply, KindReplyExt, KindRefusal:
		return b[1], 0, nil
	}
	return b[1], 0, ErrKind
}
