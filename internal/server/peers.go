package server

import (
	"container/list"
	"hash/maphash"

	"github.com/secsock/secsock/internal/wire"
	"github.com/secsock/secsock/replay"
)

// peer is what an instance remembers about one short-term key C'.
type peer struct {
	eph      [wire.KeySize]byte
	serverPK [wire.KeySize]byte
	prk0     wire.Secret
	keys     [3]*wire.Keys // by suite byte, long-term key only
	epochs   []peerEpoch   // keys with an epoch agreement mixed in (§14.3)
	hybrids  []peerHybrid  // keys with a hybrid element mixed in as well (§16)
	client   [wire.KeySize]byte
	vouch    [wire.VouchSize]byte // the verified V
	expiry   uint64               // and its E
	vouched  bool                 // client was verified by a vouch
	filter   replay.Filter
	maxT     uint64 // highest accepted T
	maxN     uint64 // highest accepted N
	accepted uint64
	elem     *list.Element
	seg      *list.List // which segment holds elem
	oneWay   bool       // a pusher's: its keys are PUSH keys (SPEC.md §15)
}

// derive returns the keys of p's session secret prk for suite: request
// and reply keys, or a pusher's PUSH key.
func (p *peer) derive(prk *wire.Secret, suite byte) *wire.Keys {
	if p.oneWay {
		return wire.PushKeys(prk, suite)
	}
	return wire.SessionKeys(prk, suite)
}

// peerEpoch is what a peer agreed with one epoch key.
type peerEpoch struct {
	id   [wire.EpochIDSize]byte
	prk  wire.Secret
	keys [3]*wire.Keys
}

// epochKeys returns p's keys for the epoch id and suite, if p has agreed
// with that epoch; the server's lock is held.
func (p *peer) epochKeys(id []byte, suite byte) *wire.Keys {
	for i := range p.epochs {
		e := &p.epochs[i]
		if string(e.id[:]) == string(id) {
			if e.keys[suite] == nil {
				e.keys[suite] = p.derive(&e.prk, suite)
			}
			return e.keys[suite]
		}
	}
	return nil
}

// addEpoch records an agreement of p with an epoch; the lock is held.
func (p *peer) addEpoch(id [wire.EpochIDSize]byte, prk *wire.Secret, suite byte, k *wire.Keys) {
	if p.epochKeys(id[:], suite) != nil {
		return
	}
	e := peerEpoch{id: id, prk: *prk}
	e.keys[suite] = k
	p.epochs = append(p.epochs, e)
}

// retainEpochs forgets p's agreements with epochs that keep refuses: their
// secrets are cleared here, and their keys become unreachable (a request
// of that epoch still in flight keeps its own reference until it is
// answered, so they are dropped rather than overwritten under it).
func (p *peer) retainEpochs(keep func(id [wire.EpochIDSize]byte) bool) {
	kept := p.epochs[:0]
	for i := range p.epochs {
		if keep(p.epochs[i].id) {
			kept = append(kept, p.epochs[i])
		}
	}
	clear(p.epochs[len(kept):]) // the slots of the dropped (and moved) ones
	p.epochs = kept
	p.retainHybrids(keep)
}

// peerCache is a segmented LRU of peers (SPEC.md §6.2): new peers enter
// probation and move to the protected segment on their second accepted
// request; eviction takes probation first, so a flood of one-shot keys
// evicts other one-shot keys, not established clients. An evicted peer
// leaves a tombstone. Callers hold the server's lock.
type peerCache struct {
	max, maxProtected int
	byKey             map[[wire.KeySize]byte]*peer
	probation         list.List // front: most recent
	protected         list.List
	tombs             tombstones
}

func newPeerCache(max int) *peerCache {
	c := &peerCache{max: max, maxProtected: max * 3 / 4, byKey: make(map[[wire.KeySize]byte]*peer)}
	c.tombs.init()
	return c
}

func (c *peerCache) get(eph *[wire.KeySize]byte) *peer { return c.byKey[*eph] }

// touch records an accepted request of p and updates its place.
func (c *peerCache) touch(p *peer) {
	p.accepted++
	if p.seg == &c.probation && p.accepted >= 2 {
		c.probation.Remove(p.elem)
		for c.protected.Len() >= c.maxProtected && c.protected.Len() > 0 {
			// The oldest protected peer goes back to probation.
			old := c.protected.Back().Value.(*peer)
			c.protected.Remove(old.elem)
			old.elem, old.seg = c.probation.PushFront(old), &c.probation
		}
		p.elem, p.seg = c.protected.PushFront(p), &c.protected
		return
	}
	p.seg.MoveToFront(p.elem)
}

// add inserts a new peer, evicting as needed, and returns the cached
// peer for its key (an earlier one if two goroutines raced).
func (c *peerCache) add(p *peer, now uint64, k keep) *peer {
	if old := c.byKey[p.eph]; old != nil {
		return old
	}
	for len(c.byKey) >= c.max {
		victim := c.probation.Back()
		if victim == nil {
			victim = c.protected.Back()
		}
		if victim == nil {
			break
		}
		c.evict(victim.Value.(*peer), now, k)
	}
	p.elem, p.seg = c.probation.PushFront(p), &c.probation
	c.byKey[p.eph] = p
	return p
}

// keep is how long and how many tombstones are kept.
type keep struct {
	window   uint64 // W, ms
	capacity int
}

// evict forgets p and leaves its tombstone.
func (c *peerCache) evict(p *peer, now uint64, k keep) {
	p.seg.Remove(p.elem)
	delete(c.byKey, p.eph)
	if p.accepted > 0 {
		c.tombs.add(&p.eph, p.maxT, p.maxN, now, k.window, k.capacity)
	}
}

// inDoubt reports whether a request (t, n) from eph may have been
// accepted before an eviction: at or below the global floor, or at or
// below both the timestamp and the counter of eph's tombstone (SPEC.md
// §6.2). A request above either was never accepted.
func (c *peerCache) inDoubt(eph *[wire.KeySize]byte, t, n uint64) bool {
	if t <= c.tombs.floor {
		return true
	}
	tb, ok := c.tombs.get(eph)
	return ok && t <= tb.t && n <= tb.n
}

func (c *peerCache) len() int { return len(c.byKey) }

// tombstones remember, for evicted peers, the highest accepted timestamp,
// keyed by a hash of C' keyed at random per instance, in arrival order
// (SPEC.md §6.2). A tombstone lasts until it is older than the window;
// when more would be kept than capacity, the oldest is dropped and, if it
// could still matter, raises the global floor.
type tombstones struct {
	seed  maphash.Seed
	ts    map[uint64]tomb
	queue []tomb // arrival order; queue[head:] are live
	head  int
	floor uint64
}

// tomb is an evicted peer's highest accepted timestamp and counter.
type tomb struct{ h, t, n uint64 }

func (t *tombstones) init() {
	t.seed = maphash.MakeSeed()
	t.ts = make(map[uint64]tomb)
}

func (t *tombstones) hash(eph *[wire.KeySize]byte) uint64 { return maphash.Comparable(t.seed, *eph) }

func (t *tombstones) get(eph *[wire.KeySize]byte) (tomb, bool) {
	tb, ok := t.ts[t.hash(eph)]
	return tb, ok
}

// add leaves a tombstone for eph at (maxT, maxN), keeping at most
// capacity; a second eviction keeps the larger values.
func (t *tombstones) add(eph *[wire.KeySize]byte, maxT, maxN, now, window uint64, capacity int) {
	h := t.hash(eph)
	tb := tomb{h: h, t: maxT, n: maxN}
	if old, ok := t.ts[h]; ok {
		if old.t >= maxT && old.n >= maxN {
			return
		}
		tb.t, tb.n = max(old.t, maxT), max(old.n, maxN)
	}
	t.ts[h] = tb
	t.queue = append(t.queue, tb)
	for len(t.queue)-t.head > max(capacity, 1) || t.expired(now, window) {
		t.pop(now, window)
	}
	if t.head > len(t.queue)/2 {
		t.queue = append(t.queue[:0], t.queue[t.head:]...)
		t.head = 0
	}
}

// expired reports whether the oldest tombstone is older than the window.
func (t *tombstones) expired(now, window uint64) bool {
	return t.head < len(t.queue) && t.queue[t.head].t+window < now
}

func (t *tombstones) pop(now, window uint64) {
	old := t.queue[t.head]
	t.head++
	if cur, ok := t.ts[old.h]; !ok || cur != old {
		return // superseded by a later tombstone of the same key
	}
	delete(t.ts, old.h)
	if old.t+window >= now && old.t > t.floor {
		t.floor = old.t // it could still stop a replay: keep it in the floor
	}
}

func (t *tombstones) len() int { return len(t.ts) }
