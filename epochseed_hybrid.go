package secsock

// The hybrid mode's per-epoch keys (SPEC.md §16.1): an ML-KEM-768 key and
// a ticket key for each epoch a worker can derive, from the same seed
// chain as the epoch keys, so that every worker has them alone.

import (
	servercore "github.com/secsock/secsock/internal/server"
	"github.com/secsock/secsock/internal/wire"
)

// hybridKeysAt returns the hybrid keys of the epochs derivable at ms: from
// the stored seed's epoch (at least c-1) to c+1. Three ML-KEM key
// generations per epoch change, never per message.
func (s *EpochSeed) hybridKeysAt(ms int64) []*wire.HybridKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.epochAt(ms)
	seed := **s.seed
	defer clear(seed[:])
	var keys []*wire.HybridKey
	for i := s.index; i <= c+1; i++ {
		if i+1 >= c {
			keys = append(keys, wire.DeriveHybrid(&seed, i))
		}
		r := wire.Ratchet(&seed)
		seed = r
	}
	return keys
}

// attachHybrid gives e the hybrid keys: every accepted epoch key its
// ML-KEM key, and the derivable ones for KEM_KEY announcements.
func attachHybrid(e *servercore.Epochs, keys []*wire.HybridKey, current uint32) {
	e.KEM, e.Current = keys, current
	for i := range e.Accepted {
		for _, h := range keys {
			if h.Index == e.Accepted[i].Index {
				e.Accepted[i].Hybrid = h
			}
		}
	}
}
