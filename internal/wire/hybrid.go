package wire

// Hybrid mode (SPEC.md §16): an ML-KEM-768 shared secret chained into the
// session secret after the epoch agreement, so that a request and its
// reply stay confidential unless both X25519 and ML-KEM-768 are broken.

import (
	"crypto/mlkem"
	"crypto/sha256"
	"encoding/binary"
	"sync/atomic"
)

// Hybrid sizes (SPEC.md §16.2).
const (
	KEMCiphertextSize = mlkem.CiphertextSize768           // 1088
	KEMKeySize        = mlkem.EncapsulationKeySize768     // 1184
	KEMSharedSize     = mlkem.SharedKeySize               // 32
	KEMKeyValueSize   = 4 + EpochIDSize + KEMKeySize      // KEM_KEY: u32(k) ‖ id_k ‖ ek
	KEMElementSize    = 3 + KEMCiphertextSize             // 1091
	TicketElementSize = 3 + TicketSize                    // 67
	HybridID          = 0x01                              // X25519 + ML-KEM-768, bound into tickets
	kemSeedSize       = mlkem.SeedSize                    // 64: d ‖ z
	_                 = uint(kemSeedSize - 2*sha256.Size) // two HMAC blocks make the seed
)

// Decapsulations counts ML-KEM decapsulations, as ScalarMults counts
// X25519: tests and benchmarks read it to show that steady state does none.
var Decapsulations atomic.Uint64

// HybridKey is one epoch's ML-KEM-768 key pair and ticket key, derived from
// the epoch's seed. Everything but Public is secret.
type HybridKey struct {
	Index  uint32
	ID     [EpochIDSize]byte // id_e of the epoch's X25519 key, bound into KEM_KEY
	Public []byte            // ek, KEMKeySize bytes
	dk     *mlkem.DecapsulationKey768
	ticket [32]byte // tk_e
}

// DeriveHybrid returns epoch index's hybrid keys from its seed:
// d ‖ z = HMAC(seed, "secsock v2 epoch kem" ‖ 0x01) ‖ HMAC(seed, … ‖ 0x02),
// dk = ML-KEM-768.KeyGen_internal(d, z), and
// tk = HMAC(seed, "secsock v2 epoch ticket").
func DeriveHybrid(seed *[32]byte, index uint32) *HybridKey {
	var ds [kemSeedSize]byte
	d := mac(seed[:], labelEpochKEM, []byte{0x01})
	z := mac(seed[:], labelEpochKEM, []byte{0x02})
	copy(ds[:32], d[:])
	copy(ds[32:], z[:])
	clear(d[:])
	clear(z[:])
	dk, err := mlkem.NewDecapsulationKey768(ds[:])
	clear(ds[:])
	if err != nil {
		panic(err) // a 64-byte seed: cannot fail
	}
	ep := DeriveEpoch(seed, index)
	clear(ep.Secret[:])
	return &HybridKey{Index: index, ID: ep.ID, Public: dk.EncapsulationKey().Bytes(), dk: dk, ticket: mac(seed[:], labelEpochTicket)}
}

// Decapsulate returns the shared secret of an ML-KEM-768 ciphertext. A
// ciphertext of the right size never fails (FIPS 203 implicit rejection:
// a wrong one gives a pseudo-random secret that opens nothing).
func (h *HybridKey) Decapsulate(ct []byte) ([KEMSharedSize]byte, error) {
	Decapsulations.Add(1)
	var ss [KEMSharedSize]byte
	out, err := h.dk.Decapsulate(ct)
	if err != nil {
		return ss, ErrMalformed
	}
	copy(ss[:], out)
	clear(out)
	return ss, nil
}

// KEMElement is the request element carrying ciphertext ct.
func KEMElement(ct []byte) []byte { return AppendElement(nil, ElemKEMCiphertext, ct) }

// TicketElement is the request element carrying ticket t.
func TicketElement(t []byte) []byte { return AppendElement(nil, ElemKEMTicket, t) }

// HybridSecret chains a KEM shared secret into the epoch session secret
// (SPEC.md §16.3):
// Extract(prkE, "secsock v2 ext" ‖ 0x01 ‖ ss ‖ ek ‖ element).
func HybridSecret(prkE *Secret, ss *[KEMSharedSize]byte, ek, element []byte) Secret {
	return Secret(mac(prkE[:], labelExt, []byte{ElemKEMCiphertext}, ss[:], ek, element))
}

// TicketSecret chains a ticket's secret into the epoch session secret:
// Extract(prkE, "secsock v2 ext" ‖ 0x02 ‖ q ‖ element).
func TicketSecret(prkE *Secret, q *[KEMSharedSize]byte, element []byte) Secret {
	return Secret(mac(prkE[:], labelExt, []byte{ElemKEMTicket}, q[:], element))
}

// KEMKeyValue is h's KEM_KEY value of REPLY_EXT: u32(k) ‖ id_k ‖ ek, so
// that a client pairs ek only with the epoch key whose id it names.
func (h *HybridKey) KEMKeyValue() []byte {
	v := binary.BigEndian.AppendUint32(make([]byte, 0, KEMKeyValueSize), h.Index)
	return append(append(v, h.ID[:]...), h.Public...)
}

// ParseKEMKey reads a KEM_KEY value, refusing an encapsulation key that
// FIPS 203's modulus check refuses.
func ParseKEMKey(v []byte) (index uint32, id [EpochIDSize]byte, ek *mlkem.EncapsulationKey768, err error) {
	if len(v) != KEMKeyValueSize {
		return 0, id, nil, ErrMalformed
	}
	if ek, err = mlkem.NewEncapsulationKey768(v[4+EpochIDSize:]); err != nil {
		return 0, id, nil, ErrMalformed
	}
	copy(id[:], v[4:])
	return binary.BigEndian.Uint32(v[:4]), id, ek, nil
}

// ResumptionSecret is the secret a ticket holds for the session of a
// request with a ciphertext: q = Expand(prk, "secsock v2 resumption"),
// with prk that request's hybrid secret (so a ticket binds C', S, E_k,
// ek_k, the ciphertext and its shared secret).
func ResumptionSecret(prk *Secret) [KEMSharedSize]byte {
	return expand((*[32]byte)(prk), labelResumption)
}
