package server

type slotState uint8

const (
	slotEmpty    slotState = iota
	slotPending            // delivered to the application, not answered yet
	slotAnswered           // answered; buf holds the sealed reply
	slotGone               // answered, but the reply is not kept
	// With a shared replay store (SPEC.md §17):
	slotElsewhere         // handled by another instance: the store knows its fate
	slotInDoubt           // may have run elsewhere: refused IN_DOUBT
	slotUnclaimed         // the store could not be asked: never delivered here
	slotReplayedElsewhere // handled elsewhere, resends spent: refused REPLAYED
	slotUnknownEpoch      // refused UNKNOWN_EPOCH by the fleet
)

type replySlot struct {
	key     ID
	state   slotState
	buf     []byte
	resends int // times buf was resent
	routes  int // duplicates given the pending flag
	// refused: buf is the application's NOT_AUTHORIZED refusal (Refuse),
	// resent to every copy while kept: 19 bytes, never larger than the
	// copy, so no bound is needed, and a bound would end in REPLAYED,
	// which a client could read as "it ran".
	refused bool
}

// replyCache keeps the sealed replies of the most recent requests so that
// a retry gets the same bytes (SPEC.md §6.3). It has a fixed number of
// slots in arrival order, reuses their buffers, and caps the bytes kept by
// dropping the oldest replies. Callers hold the server's lock.
type replyCache struct {
	slots    []replySlot
	next     int
	index    map[ID]int
	bytes    int
	maxBytes int
}

// maxCachedReply is the largest sealed reply kept.
const maxCachedReply = 64 << 10

func newReplyCache(slots, maxBytes int) *replyCache {
	slots = max(slots, 1)
	return &replyCache{slots: make([]replySlot, slots), index: make(map[ID]int, slots), maxBytes: maxBytes}
}

// begin marks k as being handled by the application.
func (c *replyCache) begin(k ID) {
	i := c.next
	c.next = (c.next + 1) % len(c.slots)
	s := &c.slots[i]
	if s.state != slotEmpty {
		delete(c.index, s.key)
	}
	c.bytes -= len(s.buf)
	*s = replySlot{key: k, state: slotPending, buf: s.buf[:0]}
	c.index[k] = i
}

// finish records the sealed reply to k, if k still has its slot.
func (c *replyCache) finish(k ID, sealed []byte) {
	i, ok := c.index[k]
	if !ok {
		return
	}
	s := &c.slots[i]
	if len(sealed) > maxCachedReply || len(sealed) > c.maxBytes {
		s.state = slotGone
		return
	}
	c.makeRoom(len(sealed), i)
	if cap(s.buf) < len(sealed) {
		s.buf = make([]byte, 0, len(sealed))
	}
	s.buf = append(s.buf[:0], sealed...)
	c.bytes += len(sealed)
	s.state = slotAnswered
}

// makeRoom drops the oldest kept replies (not slot keep) until n more
// bytes fit.
func (c *replyCache) makeRoom(n, keep int) {
	for j := 0; j < len(c.slots) && c.bytes+n > c.maxBytes; j++ {
		i := (c.next + j) % len(c.slots)
		s := &c.slots[i]
		if i == keep || s.state != slotAnswered {
			continue
		}
		c.bytes -= len(s.buf)
		s.buf, s.state = nil, slotGone
	}
}

func (c *replyCache) slot(k ID) *replySlot {
	i, ok := c.index[k]
	if !ok {
		return nil
	}
	return &c.slots[i]
}
