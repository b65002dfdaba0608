package wire

import "encoding/binary"

// Extension elements (SPEC.md §10): type (1) ‖ u16(len) ‖ value, in
// increasing type order, flags bit i set exactly when type i is present.

// EpochIDSize is the size of an epoch key id (SPEC.md §14.1).
const EpochIDSize = 8

// extensions is what a request's extension field says.
type extensions struct {
	epoch   []byte // the whole EPOCH element (11 bytes), nil without one
	want    bool   // WANT_EPOCH present
	kem     []byte // the whole KEM ciphertext element (§16), nil without one
	ticket  []byte // the whole ticket element (§16), nil without one
	wantKEM bool   // WANT_KEM present
	// hybrid: an element of type 1, 2 or 6 is present; hybridBad: one of
	// them has a wrong size, or they are combined wrongly (§16.2). A
	// server without the mode refuses them, one with it drops them.
	hybrid, hybridBad bool
	unknown           bool // a type this implementation does not have
}

// parseExtensions checks the framing of ext against flags.
func parseExtensions(flags byte, ext []byte) (extensions, error) {
	var x extensions
	var seen byte
	last := -1
	for len(ext) > 0 {
		if len(ext) < 3 {
			return x, ErrMalformed
		}
		t, n := ext[0], int(binary.BigEndian.Uint16(ext[1:3]))
		if int(t) <= last || t > 7 || len(ext) < 3+n {
			return x, ErrMalformed
		}
		last = int(t)
		seen |= 1 << t
		switch t {
		case ElemEpoch:
			if n != EpochIDSize {
				return x, ErrMalformed
			}
			x.epoch = ext[:3+n]
		case ElemWantEpoch:
			if n != 0 {
				return x, ErrMalformed
			}
			x.want = true
		case ElemKEMCiphertext, ElemKEMTicket, ElemWantKEM:
			x.hybridElement(t, n, ext[:3+n])
		default:
			x.unknown = true
		}
		ext = ext[3+n:]
	}
	if seen != flags {
		return x, ErrMalformed
	}
	// A ciphertext or a ticket names its epoch's key (§16.2), and a
	// request carries at most one of them.
	if (x.kem != nil || x.ticket != nil) && (x.epoch == nil || (x.kem != nil && x.ticket != nil)) {
		x.hybridBad = true
	}
	return x, nil
}

// hybridElement records one of the hybrid mode's elements, checking its
// size (SPEC.md §16.2).
func (x *extensions) hybridElement(t byte, n int, elem []byte) {
	x.hybrid = true
	switch {
	case t == ElemKEMCiphertext && n == KEMCiphertextSize:
		x.kem = elem
	case t == ElemKEMTicket && n == TicketSize:
		x.ticket = elem
	case t == ElemWantKEM && n == 0:
		x.wantKEM = true
	default:
		x.hybridBad = true
	}
}

// AppendElement appends one element.
func AppendElement(dst []byte, t byte, value []byte) []byte {
	dst = append(dst, t)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(value)))
	return append(dst, value...)
}

// Elements parses a REPLY_EXT's elements into a map by type, checking
// the framing; unknown types are kept (the caller ignores them).
func Elements(b []byte) (map[byte][]byte, error) {
	m := map[byte][]byte{}
	last := -1
	for len(b) > 0 {
		if len(b) < 3 {
			return nil, ErrMalformed
		}
		t, n := b[0], int(binary.BigEndian.Uint16(b[1:3]))
		if int(t) <= last || len(b) < 3+n {
			return nil, ErrMalformed
		}
		last = int(t)
		m[t] = b[3 : 3+n]
		b = b[3+n:]
	}
	return m, nil
}
