package server

import (
	"github.com/secsock/secsock/internal/wire"
)

// epochChain is a seed chain as SPEC.md §14.1 defines it, for vectors.
type epochChain struct {
	seed           [32]byte // seed_index
	index          uint32
	origin, length uint64 // ms
}

func newEpochChain(seed0 [32]byte, index uint32, origin, length uint64) *epochChain {
	if length == 0 {
		length = 300000
	}
	c := &epochChain{seed: seed0, origin: origin, length: length}
	for ; c.index < index; c.index++ {
		c.seed = wire.Ratchet(&c.seed)
	}
	return c
}

// key returns epoch k's key (k at or after the chain's index).
func (c *epochChain) key(k uint32) wire.EpochKey {
	seed := c.seed
	for i := c.index; i < k; i++ {
		seed = wire.Ratchet(&seed)
	}
	return wire.DeriveEpoch(&seed, k)
}

// at returns the epochs accepted at now with clock skew z and the current
// epoch's announcement, or nil for no chain.
func (c *epochChain) at(now, z uint64) *Epochs {
	if c == nil {
		return nil
	}
	cur := uint32((now - c.origin) / c.length)
	e := &Epochs{}
	for k := c.index; k <= cur+1; k++ {
		switch {
		case k+1 < cur:
		case k == cur+1 && now < c.origin+uint64(cur+1)*c.length-z:
		default:
			e.Accepted = append(e.Accepted, c.key(k))
		}
	}
	a := wire.Announcement{Index: cur, Start: c.origin + uint64(cur)*c.length, Length: c.length,
		Current: c.key(cur).Public, Next: c.key(cur + 1).Public}
	e.Announce = a.Append(nil)
	return e
}
