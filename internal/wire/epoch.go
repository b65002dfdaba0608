package wire

import (
	"crypto/sha256"
	"encoding/binary"
)

// Epoch keys (SPEC.md §14).

// EpochKey is one epoch's key pair and id. Secret is a secret.
type EpochKey struct {
	Index  uint32
	Secret [KeySize]byte // esk
	Public [KeySize]byte // E
	ID     [EpochIDSize]byte
	// Hybrid is the epoch's ML-KEM key and ticket key (SPEC.md §16), nil
	// when the hybrid mode is off.
	Hybrid *HybridKey
	priv   *PrivateKey
}

// Agree returns X25519(esk, peer) with one scalar multiplication.
func (k *EpochKey) Agree(peer *[KeySize]byte) ([KeySize]byte, error) {
	if k.priv == nil {
		return X25519(&k.Secret, peer)
	}
	return k.priv.Agree(peer)
}

// Ratchet returns seed_{e+1} from seed_e.
func Ratchet(seed *[32]byte) [32]byte { return mac(seed[:], labelRatchet) }

// DeriveEpoch returns the key of epoch index from its seed.
func DeriveEpoch(seed *[32]byte, index uint32) EpochKey {
	k := EpochKey{Index: index, Secret: mac(seed[:], labelEpochKey)}
	priv, err := NewPrivateKey(&k.Secret)
	if err != nil {
		panic(err) // an HMAC output that clamps to a weak scalar: impossible
	}
	k.priv = priv
	copy(k.Public[:], priv.k.PublicKey().Bytes())
	h := sha256.Sum256(k.Public[:])
	copy(k.ID[:], h[:EpochIDSize])
	return k
}

// EpochElement is the request element naming epoch key id.
func EpochElement(id [EpochIDSize]byte) []byte { return AppendElement(nil, ElemEpoch, id[:]) }

// EpochSecret chains an epoch agreement into the session secret:
// Extract(prk0, "secsock v2 ext" ‖ 0x00 ‖ dhE ‖ E ‖ element).
func EpochSecret(prk0 *Secret, dhE, epochPublic *[KeySize]byte, element []byte) Secret {
	return Secret(mac(prk0[:], labelExt, []byte{ElemEpoch}, dhE[:], epochPublic[:], element))
}

// Announcement is an EPOCH_KEYS value of REPLY_EXT (SPEC.md §14.2).
type Announcement struct {
	Index         uint32
	Start, Length uint64 // ms
	Current, Next [KeySize]byte
}

// AnnouncementSize is the size of an EPOCH_KEYS value.
const AnnouncementSize = 4 + 8 + 4 + 2*KeySize

// Append appends the announcement as a REPLY_EXT element.
func (a *Announcement) Append(dst []byte) []byte {
	v := make([]byte, 0, AnnouncementSize)
	v = binary.BigEndian.AppendUint32(v, a.Index)
	v = binary.BigEndian.AppendUint64(v, a.Start)
	v = binary.BigEndian.AppendUint32(v, uint32(a.Length))
	v = append(v, a.Current[:]...)
	v = append(v, a.Next[:]...)
	return AppendElement(dst, ElemEpoch, v)
}

// ParseAnnouncement reads an EPOCH_KEYS value, refusing invalid keys.
func ParseAnnouncement(v []byte) (Announcement, error) {
	var a Announcement
	if len(v) != AnnouncementSize {
		return a, ErrMalformed
	}
	a.Index = binary.BigEndian.Uint32(v[0:4])
	a.Start = binary.BigEndian.Uint64(v[4:12])
	a.Length = uint64(binary.BigEndian.Uint32(v[12:16]))
	copy(a.Current[:], v[16:48])
	copy(a.Next[:], v[48:80])
	if a.Length == 0 || CheckLongTermKey(&a.Current) != nil || CheckLongTermKey(&a.Next) != nil {
		return a, ErrMalformed
	}
	return a, nil
}

// ID returns the id of an epoch public key.
func EpochID(pub *[KeySize]byte) [EpochIDSize]byte {
	var id [EpochIDSize]byte
	h := sha256.Sum256(pub[:])
	copy(id[:], h[:EpochIDSize])
	return id
}
