package wire

// Hybrid tickets (SPEC.md §16.4): the KEM shared secret of a client's
// first hybrid request, sealed under the epoch's ticket key so that its
// later requests carry 64 bytes instead of a 1,088-byte ciphertext and
// any worker with the same seed opens them without an ML-KEM operation.

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
)

// Ticket sizes: r ‖ gcm(Kt, 0^12, q, ad).
const (
	TicketRandSize = 16
	TicketSize     = TicketRandSize + KEMSharedSize + TagSize // 64
)

// ticketAD is C' ‖ S ‖ u32(k) ‖ id_k ‖ HybridID ‖ suite.
func ticketAD(eph, server *[KeySize]byte, index uint32, id *[EpochIDSize]byte, suite byte) []byte {
	ad := make([]byte, 0, 2*KeySize+4+EpochIDSize+2)
	ad = append(ad, eph[:]...)
	ad = append(ad, server[:]...)
	ad = binary.BigEndian.AppendUint32(ad, index)
	ad = append(ad, id[:]...)
	return append(ad, HybridID, suite)
}

// ticketAEAD is AES-256-GCM under Kt = HMAC(tk, "secsock v2 ticket" ‖ r):
// one key per ticket, so the all-zero nonce never repeats under a key.
func (h *HybridKey) ticketAEAD(r []byte) cipher.AEAD {
	kt := mac(h.ticket[:], labelTicket, r)
	defer clear(kt[:])
	b, err := aes.NewCipher(kt[:])
	if err != nil {
		panic(err)
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		panic(err)
	}
	return g
}

var zeroNonce [12]byte

// SealTicket seals q for the session (eph, server, epoch, suite) with the
// 16 fresh random bytes r.
func (h *HybridKey) SealTicket(r *[TicketRandSize]byte, q *[KEMSharedSize]byte, eph, server *[KeySize]byte, id *[EpochIDSize]byte, suite byte) []byte {
	t := append(make([]byte, 0, TicketSize), r[:]...)
	return h.ticketAEAD(r[:]).Seal(t, zeroNonce[:], q[:], ticketAD(eph, server, h.Index, id, suite))
}

// OpenTicket returns the secret in ticket t for the session (eph, server,
// epoch, suite): ErrMalformed for a wrong size, ErrOpen for one made for
// another session, epoch, service or suite, or not by a holder of the seed.
func (h *HybridKey) OpenTicket(t []byte, eph, server *[KeySize]byte, id *[EpochIDSize]byte, suite byte) ([KEMSharedSize]byte, error) {
	var q [KEMSharedSize]byte
	if len(t) != TicketSize {
		return q, ErrMalformed
	}
	out, err := h.ticketAEAD(t[:TicketRandSize]).Open(q[:0], zeroNonce[:], t[TicketRandSize:], ticketAD(eph, server, h.Index, id, suite))
	if err != nil || len(out) != KEMSharedSize {
		clear(q[:])
		return q, ErrOpen
	}
	return q, nil
}
