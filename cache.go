package secsock

import (
	"container/list"
	"hash/maphash"

	"github.com/secsock/secsock/replay"
)

// peer is what a server instance remembers about one client short-term
// key C': the agreed key, the verified long-term key, and the counters
// already accepted.
type peer struct {
	eph     PublicKey
	server  PublicKey // which of the server's keys C' was sealed to
	key     *sharedKey
	client  PublicKey // long-term key proven by a vouch (zero: none yet)
	vouched bool
	filter  replay.Filter
	maxT    uint64 // highest accepted timestamp, for the low-water mark
	elem    *list.Element
}

// peerCache is a bounded LRU of peers. Evicting a peer forgets its replay
// window, so the cache raises a low-water mark to the peer's highest
// timestamp: requests at or below it are refused as stale, which keeps
// replay protection sound at the price of refusing old requests under
// memory pressure. There is one mark per bucket of short-term keys, chosen
// by a hash keyed at random per cache, so that a client cannot aim its
// eviction at everyone else's requests. Callers hold the server's lock.
type peerCache struct {
	max      int
	byKey    map[PublicKey]*peer
	lru      list.List // front: most recent
	seed     maphash.Seed
	lowWater [lowWaterBuckets]uint64
}

// lowWaterBuckets is the number of low-water marks (32 KiB).
const lowWaterBuckets = 4096

func newPeerCache(max int) *peerCache {
	return &peerCache{max: max, byKey: make(map[PublicKey]*peer), seed: maphash.MakeSeed()}
}

// mark returns the low-water mark that applies to eph.
func (c *peerCache) mark(eph PublicKey) *uint64 {
	return &c.lowWater[maphash.Comparable(c.seed, eph)%lowWaterBuckets]
}

func (c *peerCache) get(eph PublicKey) *peer {
	p := c.byKey[eph]
	if p != nil {
		c.lru.MoveToFront(p.elem)
	}
	return p
}

// add inserts p, evicting the least recently used peers beyond max, and
// returns the cached peer for p's key (an earlier one if two goroutines
// raced to add the same key).
func (c *peerCache) add(p *peer) *peer {
	if old := c.byKey[p.eph]; old != nil {
		c.lru.MoveToFront(old.elem)
		return old
	}
	for len(c.byKey) >= c.max && c.lru.Len() > 0 {
		c.evict(c.lru.Back().Value.(*peer))
	}
	p.elem = c.lru.PushFront(p)
	c.byKey[p.eph] = p
	return p
}

// evict forgets p and raises the low-water mark to its newest request.
func (c *peerCache) evict(p *peer) {
	c.lru.Remove(p.elem)
	delete(c.byKey, p.eph)
	if m := c.mark(p.eph); p.maxT > *m {
		*m = p.maxT
	}
}

func (c *peerCache) len() int { return len(c.byKey) }

// replyKey names one request: its short-term key and counter.
type replyKey struct {
	eph     PublicKey
	counter uint64
}

type slotState uint8

const (
	slotEmpty    slotState = iota
	slotPending            // delivered to the application, not answered yet
	slotAnswered           // answered; buf holds the sealed reply
	slotUncached           // answered, but the reply was too large to keep
)

type replySlot struct {
	key   replyKey
	state slotState
	buf   []byte
}

// replyCache remembers the sealed replies of the most recent requests so
// that a retry (mangos REQ resends identical bytes) gets the same answer
// without the application seeing the request twice. It holds a fixed
// number of slots, reuses their buffers, and caps the bytes it keeps.
// Callers hold the server's lock.
type replyCache struct {
	slots    []replySlot
	next     int
	index    map[replyKey]int
	bytes    int
	maxBytes int
}

// maxCachedReply is the largest sealed reply kept: larger replies are not
// copied, and a retry of their request is refused with ErrReplayed.
const maxCachedReply = 64 << 10

func newReplyCache(slots, maxBytes int) *replyCache {
	if slots < 1 {
		slots = 1
	}
	return &replyCache{slots: make([]replySlot, slots), index: make(map[replyKey]int, slots), maxBytes: maxBytes}
}

// begin marks k as being handled by the application.
func (c *replyCache) begin(k replyKey) {
	i := c.next
	c.next = (c.next + 1) % len(c.slots)
	s := &c.slots[i]
	if s.state != slotEmpty {
		delete(c.index, s.key)
	}
	s.key, s.state, s.buf = k, slotPending, s.buf[:0]
	c.index[k] = i
}

// finish records the sealed reply to k, if k still has its slot.
func (c *replyCache) finish(k replyKey, sealed []byte) {
	i, ok := c.index[k]
	if !ok {
		return
	}
	s := &c.slots[i]
	if len(sealed) > maxCachedReply {
		s.state = slotUncached
		return
	}
	if cap(s.buf) < len(sealed) {
		if c.bytes-cap(s.buf)+len(sealed) > c.maxBytes {
			s.state = slotUncached
			return
		}
		c.bytes += len(sealed) - cap(s.buf)
		s.buf = make([]byte, 0, len(sealed))
	}
	s.buf = append(s.buf[:0], sealed...)
	s.state = slotAnswered
}

// lookup returns the state of k and, when answered, its sealed reply
// (valid until the cache is next changed).
func (c *replyCache) lookup(k replyKey) (slotState, []byte) {
	i, ok := c.index[k]
	if !ok {
		return slotEmpty, nil
	}
	s := &c.slots[i]
	return s.state, s.buf
}
