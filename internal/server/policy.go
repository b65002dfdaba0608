package server

import "github.com/secsock/secsock/internal/wire"

// KeyPair is one of the server's long-term keys. Private, when set, is
// Secret prepared for agreements at one scalar multiplication each.
type KeyPair struct {
	Secret, Public [wire.KeySize]byte
	Private        *wire.PrivateKey
}

// agree returns X25519(k, peer).
func (k *KeyPair) agree(peer *[wire.KeySize]byte) ([wire.KeySize]byte, error) {
	if k.Private == nil {
		return wire.X25519(&k.Secret, peer)
	}
	return k.Private.Agree(peer)
}

// Policy is everything the checks read that the application configures.
// It is replaced whole, never changed, so a reload never mixes versions.
type Policy struct {
	Keys []KeyPair // current first, then previous keys (at least one)
	// Authorized is the set of served client keys; with Authorizer nil
	// and Authorized nil there is no client policy.
	Authorized     map[[wire.KeySize]byte]struct{}
	Authorizer     func(client [wire.KeySize]byte) bool
	AllowAnonymous bool
	Window, Skew   uint64 // freshness window W and clock skew Z, ms
	// Epochs are the epoch keys accepted now (SPEC.md §14); nil: none.
	Epochs *Epochs
	// Hybrid is the hybrid mode (SPEC.md §16): off, on (each accepted
	// epoch key has its Hybrid part), or required for requests.
	Hybrid HybridMode
	// RefuseAfterOpen: the application may refuse delivered requests
	// (Server.Refuse), so each delivered request's NOT_AUTHORIZED refusal
	// is made while the request's prk0 and header are at hand.
	RefuseAfterOpen bool
	// MaxBody, when positive, is the longest request body delivered:
	// longer ones are refused TOO_LARGE once their box opened.
	MaxBody int
}

// HybridMode says whether a server serves the hybrid mode (SPEC.md §16).
type HybridMode uint8

// Hybrid modes.
const (
	HybridOff     HybridMode = iota
	HybridOn                 // serve hybrid requests and plain ones
	HybridRequire            // refuse requests (not pings) without a ciphertext or a ticket
)

// Epochs is the epoch state a policy carries: the keys accepted at the
// policy's time and the announcement for the current epoch.
type Epochs struct {
	Accepted []wire.EpochKey
	Announce []byte // REPLY_EXT elements: the EPOCH_KEYS element
	// KEM are the hybrid keys of the epochs this server can derive, and
	// Current the index of the announced epoch (SPEC.md §16.2); KEM is nil
	// without the hybrid mode.
	KEM     []*wire.HybridKey
	Current uint32
}

// kemKey returns the hybrid key of epoch index, nil if not derivable.
func (e *Epochs) kemKey(index uint32) *wire.HybridKey {
	for _, h := range e.KEM {
		if h.Index == index {
			return h
		}
	}
	return nil
}

func (e *Epochs) find(id []byte) *wire.EpochKey {
	if e == nil {
		return nil
	}
	for i := range e.Accepted {
		if string(e.Accepted[i].ID[:]) == string(id) {
			return &e.Accepted[i]
		}
	}
	return nil
}

// Restricted reports whether a client policy is set.
func (p *Policy) Restricted() bool { return p.Authorized != nil || p.Authorizer != nil }

func (p *Policy) keyIndex(pub *[wire.KeySize]byte) int {
	for i := range p.Keys {
		if p.Keys[i].Public == *pub {
			return i
		}
	}
	return -1
}

// Limits size the state; they take effect when the Server is made.
type Limits struct {
	Peers      int // peer cache entries (default 4096)
	Tombstones int // tombstones without a budget (default 65536); with one, budget·(W+Z)+budget
	ReplySlots int // replies kept (default 1024)
	ReplyBytes int // bytes of replies kept (default 8 MiB)
	MaxResends int // resends of one kept reply (default 4)
	MaxRoutes  int // duplicates of a pending request that get its reply (default 4)
	Budget     int // scalar multiplications per second for unknown keys; 0: unlimited (default 2048)
	VouchKeys  int // cached prkV (default 1024)
	// OneWay makes a PULL instance (SPEC.md §15): it opens PUSH messages
	// only, and drops instead of answering (default false: REP).
	OneWay bool
	// Shared: a replay store shared with other instances decides the fate
	// of duplicates this instance did not answer itself (Decision.Consult).
	Shared bool
}

// DefaultLimits are the Go implementation's defaults (SPEC.md §6).
func DefaultLimits() Limits {
	return Limits{Peers: 4096, Tombstones: 65536, ReplySlots: 1024, ReplyBytes: 8 << 20,
		MaxResends: 4, MaxRoutes: 4, Budget: 2048, VouchKeys: 1024}
}
